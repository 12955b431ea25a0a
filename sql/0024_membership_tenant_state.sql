-- Up Migration

-- The tenant's state, kept on each of its memberships (bench/README.md, issue 9): every policy asks
-- app.visible_tenant_ids / app.permitted_tenant_ids, and any probe of tenants inside them (0020's deleted-tenant
-- anti-join, 0023's status join) cost 80–170 µs per call at the top of a statement. With the state beside the role
-- both read one index-only scan of memberships (user_id, tenant_id) including role and state, and touch tenants
-- only for X-Tenant. The copy follows tenants.status by trigger, whoever changes it; the request role cannot write it.
-- ('DELETED' appears only in plpgsql bodies: 0020 added it to the enum, possibly in this same migration run.)
alter table app_public.memberships add column tenant_state app_public.tenant_status not null default 'ACTIVE';
comment on column app_public.memberships.tenant_state is 'A copy of tenants.status (trigger-maintained) for the permission functions.';
update app_public.memberships m set tenant_state = t.status from app_public.tenants t where t.id = m.tenant_id and m.tenant_state <> t.status;
create index memberships_user_tenant_state on app_public.memberships (user_id, tenant_id) include (role, tenant_state);
create index member_roles_user on app_public.member_roles (user_id);

create function app.memberships_copy_tenant_state() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if tg_table_name = 'tenants' then
    update app_public.memberships set tenant_state = new.status where tenant_id = new.id and tenant_state is distinct from new.status;
    return null;
  end if;
  new.tenant_state := coalesce((select t.status from app_public.tenants t where t.id = new.tenant_id), new.tenant_state);
  return new;
end
$$;
create trigger tenants_copy_state after update of status on app_public.tenants
  for each row when (old.status is distinct from new.status) execute function app.memberships_copy_tenant_state();
create trigger memberships_copy_tenant_state before insert on app_public.memberships
  for each row execute function app.memberships_copy_tenant_state();

create or replace function app.visible_tenant_ids() returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_filter text := app.current_tenant_filter();
  v_ids uuid[];
begin
  if v_user_id is null then
    return '{}';
  end if;
  if v_filter is null then
    return coalesce((select array_agg(m.tenant_id) from app_public.memberships m
                      where m.user_id = v_user_id and m.tenant_state <> 'DELETED'), '{}');
  end if;
  select array_agg(t.id) into v_ids
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
   where m.user_id = v_user_id
     and m.tenant_state <> 'DELETED'
     and (t.id::text = lower(v_filter) or t.slug = v_filter);
  if v_ids is null and app.current_api_key_permissions() is null then
    select array_agg(t.id) into v_ids
      from app_public.tenants t
     where (t.id::text = lower(v_filter) or t.slug = v_filter)
       and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id and cardinality(r.support_permissions) > 0
                      and r.permissions && array['*:*', 'platform.support:read', 'platform.support:*', '*:read']);
  end if;
  return coalesce(v_ids, '{}');
end
$$;

create or replace function app.permitted_tenant_ids(p_permission text) returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_patterns text[];
  v_key text[];
  v_filter text;
  v_filter_id uuid;
  v_writes boolean;
  v_roles app_public.tenant_role[];
  v_ids uuid[];
begin
  if v_user_id is null then
    return '{}';
  end if;
  v_patterns := array['*:*', p_permission, split_part(p_permission, ':', 1) || ':*', '*:' || split_part(p_permission, ':', 2)];
  v_key := app.current_api_key_permissions();
  if v_key is not null and not (v_key && v_patterns) then
    return '{}';
  end if;
  v_filter := app.current_tenant_filter();
  v_writes := p_permission not like '%:read' and p_permission <> 'tenants:export';
  if v_filter is not null then
    select t.id into v_filter_id from app_public.tenants t where t.id::text = lower(v_filter) or t.slug = v_filter;
    if v_filter_id is null then
      return '{}';
    end if;
  end if;
  -- The built-in roles granting it (four rows, read once); custom roles only for a user who holds any (an index
  -- probe) — the correlated custom-role test cost ~200 µs a call even with no custom role anywhere.
  v_roles := array(select b.role from app_public.builtin_roles b where b.permissions && v_patterns);
  if exists (select 1 from app_public.member_roles mr where mr.user_id = v_user_id) then
    select array_agg(m.tenant_id) into v_ids
      from app_public.memberships m
     where m.user_id = v_user_id
       and (v_filter_id is null or m.tenant_id = v_filter_id)
       and m.tenant_state <> 'DELETED'
       and (not v_writes or m.tenant_state = 'ACTIVE')
       and (m.role = any (v_roles)
            or exists (select 1 from app_public.member_roles mr
                         join app_public.roles r on r.tenant_id = mr.tenant_id and r.id = mr.role_id
                        where mr.tenant_id = m.tenant_id and mr.user_id = m.user_id and r.permissions && v_patterns));
  else
    select array_agg(m.tenant_id) into v_ids
      from app_public.memberships m
     where m.user_id = v_user_id
       and (v_filter_id is null or m.tenant_id = v_filter_id)
       and m.tenant_state <> 'DELETED'
       and (not v_writes or m.tenant_state = 'ACTIVE')
       and m.role = any (v_roles);
  end if;
  -- Support access: the one tenant X-Tenant names, for staff who are not its members (rare: only with X-Tenant).
  if v_ids is null and v_filter_id is not null and v_key is null then
    select array_agg(t.id) into v_ids
      from app_public.tenants t
     where t.id = v_filter_id
       and (not v_writes or t.status = 'ACTIVE')
       and not exists (select 1 from app_public.memberships m where m.tenant_id = t.id and m.user_id = v_user_id)
       and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id and r.support_permissions && v_patterns
                      and r.permissions && array['*:*', 'platform.support:read', 'platform.support:*', '*:read']);
  end if;
  return coalesce(v_ids, '{}');
end
$$;

-- Platform checks in the users, tenants, memberships and audit policies: most users are not staff, so their
-- platform role is read first (one primary-key probe) and the role's set only for staff.
create or replace function app.has_platform_permission(p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_role app_public.platform_role;
begin
  if v_user_id is null or app.current_api_key_permissions() is not null then
    return false;
  end if;
  select u.platform_role into v_role from app_public.users u where u.id = v_user_id;
  if v_role is null or v_role = 'NONE' then
    return false;
  end if;
  return coalesce((select r.permissions && array['*:*', p_permission, split_part(p_permission, ':', 1) || ':*', '*:' || split_part(p_permission, ':', 2)]
                     from app_public.platform_roles r where r.role = v_role), false);
end
$$;

create or replace function app.is_platform_staff() returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return app.has_platform_permission('platform.tenants:read');
end
$$;

-- Down Migration
