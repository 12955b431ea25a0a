-- Up Migration

-- app.permitted_tenant_ids runs as an init-plan in every policy of every statement (twice in a documents page:
-- documents and files), so its cost is paid on every request. The 0018 body ran six statements per call (the
-- catalogue check, app.visible_tenant_ids, the memberships and roles, the tenant status); as one statement over
-- memberships ⋈ tenants ⋈ builtin_roles (plus the custom roles when the built-in role does not grant it) it costs
-- about what app.visible_tenant_ids does. The catalogue check moves to app.has_permission — what the API and the SQL
-- functions call with strings that come from code — while the strings the policies name are checked by
-- test/permissions.test.ts against the catalogue. Same decision as 0018 + 0020: live (not deleted) tenants, narrowed
-- to X-Tenant, writes only in ACTIVE tenants, an API key's patterns intersected, support access for staff.
create or replace function app.permitted_tenant_ids(p_permission text) returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_patterns text[];
  v_key text[];
  v_filter text;
  v_writes boolean;
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
  select array_agg(m.tenant_id) into v_ids
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    join app_public.builtin_roles b on b.role = m.role
   where m.user_id = v_user_id
     and t.deleted_at is null
     and (v_filter is null or t.id::text = lower(v_filter) or t.slug = v_filter)
     and (not v_writes or t.status = 'ACTIVE')
     and (b.permissions && v_patterns
          or exists (select 1 from app_public.member_roles mr
                       join app_public.roles r on r.tenant_id = mr.tenant_id and r.id = mr.role_id
                      where mr.tenant_id = m.tenant_id and mr.user_id = m.user_id and r.permissions && v_patterns));
  -- Support access: the one tenant X-Tenant names, for staff who are not its members (rare: only with X-Tenant).
  if v_ids is null and v_filter is not null and v_key is null then
    select array_agg(t.id) into v_ids
      from app_public.tenants t
     where (t.id::text = lower(v_filter) or t.slug = v_filter)
       and (not v_writes or t.status = 'ACTIVE')
       and not exists (select 1 from app_public.memberships m where m.tenant_id = t.id and m.user_id = v_user_id)
       and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id and r.support_permissions && v_patterns
                      and r.permissions && array['*:*', 'platform.support:read', 'platform.support:*', '*:read']);
  end if;
  return coalesce(v_ids, '{}');
end
$$;

create or replace function app.has_permission(p_tenant_id uuid, p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not exists (select 1 from app_public.permissions c where c.id = p_permission and c.scope = 'tenant') then
    raise exception 'unknown permission: %', p_permission using errcode = 'TPIN0';
  end if;
  return coalesce(p_tenant_id = any (app.permitted_tenant_ids(p_permission)), false);
end
$$;

-- Called in the users, tenants, memberships and audit policies: one statement, no catalogue check (the TypeScript
-- side names platform permissions by a typed union; the policies' strings are checked by the test).
create or replace function app.has_platform_permission(p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
begin
  -- An API key acts for a tenant, never with its creator's platform role.
  if v_user_id is null or app.current_api_key_permissions() is not null then
    return false;
  end if;
  return coalesce((select r.permissions && array['*:*', p_permission, split_part(p_permission, ':', 1) || ':*', '*:' || split_part(p_permission, ':', 2)]
                     from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id), false);
end
$$;

-- The directory policies (tenants, memberships, users) ask this: the same lookup, not a nested definer call.
create or replace function app.is_platform_staff() returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
begin
  if v_user_id is null or app.current_api_key_permissions() is not null then
    return false;
  end if;
  return coalesce((select r.permissions && array['*:*', 'platform.tenants:read', 'platform.tenants:*', '*:read']
                     from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id), false);
end
$$;

-- Down Migration
