-- Up Migration

create table app_public.plans (
  id                text primary key check (id ~ '^[a-z][a-z0-9-]{1,30}$'),
  name              text not null,
  max_members       integer not null check (max_members > 0),
  max_storage_bytes bigint not null check (max_storage_bytes > 0),
  max_sites         integer not null check (max_sites >= 0),
  created_at        timestamptz not null default now()
);
comment on table app_public.plans is 'Subscription plans and their quotas; readable by everyone, changed by operators only.';
insert into app_public.plans (id, name, max_members, max_storage_bytes, max_sites) values
  ('free', 'Free', 5, 1073741824, 2),
  ('pro', 'Pro', 50, 107374182400, 25),
  ('enterprise', 'Enterprise', 1000, 10995116277760, 500);
alter table app_public.plans enable row level security;
alter table app_public.plans force row level security;
create policy plans_select on app_public.plans for select to tenantplane_app using (true);
grant select on app_public.plans to tenantplane_app;

create table app_public.tenants (
  id         uuid primary key default gen_random_uuid(),
  slug       text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'),
  name       text not null check (length(btrim(name)) between 1 and 100),
  status     app_public.tenant_status not null default 'ACTIVE',
  plan_id    text not null default 'free' references app_public.plans (id) on delete restrict,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app_public.tenants is 'Organisations. Every tenant-owned row carries its tenant_id.';
create index on app_public.tenants (plan_id);

create table app_public.memberships (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  user_id    uuid not null references app_public.users (id) on delete cascade,
  role       app_public.tenant_role not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, user_id)
);
create index on app_public.memberships (user_id, tenant_id);
create index memberships_tenant_created on app_public.memberships (tenant_id, created_at, id);

-- Visibility helpers. plpgsql + security definer: read memberships without recursing into their policy,
-- and keep a cached plan per session. Policies call them as (select …) so they run once per statement.
create function app.visible_tenant_ids() returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_filter text := app.current_tenant_filter();
begin
  if v_user_id is null then
    return '{}';
  end if;
  return coalesce((
    select array_agg(m.tenant_id)
      from app_public.memberships m
      join app_public.tenants t on t.id = m.tenant_id
     where m.user_id = v_user_id
       and (v_filter is null or t.id::text = v_filter or t.slug = v_filter)
  ), '{}');
end
$$;
comment on function app.visible_tenant_ids() is 'Tenants the current user belongs to, narrowed to app.tenant_id when set.';

create function app.tenant_role(p_tenant_id uuid) returns app_public.tenant_role
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not (p_tenant_id = any (app.visible_tenant_ids())) then
    return null;
  end if;
  return (select m.role from app_public.memberships m where m.tenant_id = p_tenant_id and m.user_id = app.current_user_id());
end
$$;
comment on function app.tenant_role(uuid) is 'The current user''s role in a visible tenant, or NULL.';

create function app.has_tenant_role(p_tenant_id uuid, p_min_role app_public.tenant_role) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return coalesce(app.tenant_role(p_tenant_id) >= p_min_role, false);
end
$$;

-- Owners manage every role; admins manage members and viewers; nobody else manages anyone.
create function app.can_manage_role(p_tenant_id uuid, p_role app_public.tenant_role) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_actor app_public.tenant_role := app.tenant_role(p_tenant_id);
begin
  return case
    when v_actor = 'OWNER' then true
    when v_actor = 'ADMIN' then p_role <= 'MEMBER'
    else false
  end;
end
$$;

grant execute on function app.visible_tenant_ids(), app.tenant_role(uuid), app.has_tenant_role(uuid, app_public.tenant_role),
  app.can_manage_role(uuid, app_public.tenant_role) to tenantplane_app;

alter table app_public.tenants enable row level security;
alter table app_public.tenants force row level security;
create policy tenants_select on app_public.tenants for select to tenantplane_app
  using (id = any ((select app.visible_tenant_ids())::uuid[]) or (select app.is_platform_staff()));
create policy tenants_update on app_public.tenants for update to tenantplane_app
  using (app.has_tenant_role(id, 'ADMIN'))
  with check (app.has_tenant_role(id, 'ADMIN'));
grant select on app_public.tenants to tenantplane_app;
grant update (name, updated_at) on app_public.tenants to tenantplane_app;

alter table app_public.memberships enable row level security;
alter table app_public.memberships force row level security;
create policy memberships_select on app_public.memberships for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) or (select app.is_platform_staff()));
create policy memberships_update on app_public.memberships for update to tenantplane_app
  using (app.can_manage_role(tenant_id, role))
  with check (app.can_manage_role(tenant_id, role));
create policy memberships_delete on app_public.memberships for delete to tenantplane_app
  using (app.can_manage_role(tenant_id, role) or (user_id = app.current_user_id() and tenant_id = any ((select app.visible_tenant_ids())::uuid[])));
grant select, delete on app_public.memberships to tenantplane_app;
grant update (role, updated_at) on app_public.memberships to tenantplane_app;

-- A tenant always keeps at least one owner (checked after each statement that demotes or removes one).
create function app.ensure_tenant_keeps_owner() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if old.role = 'OWNER'
     and exists (select 1 from app_public.tenants t where t.id = old.tenant_id)
     and not exists (select 1 from app_public.memberships m where m.tenant_id = old.tenant_id and m.role = 'OWNER') then
    raise exception 'a tenant must keep at least one owner: make another member OWNER first'
      using errcode = 'TPCF0';
  end if;
  return null;
end
$$;
create trigger memberships_keep_owner after update of role or delete on app_public.memberships
  for each row execute function app.ensure_tenant_keeps_owner();

-- Creates a tenant on the free plan with the current user as its OWNER.
create function app.create_tenant(p_name text, p_slug text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_tenant_id uuid;
begin
  if v_user_id is null then
    raise exception 'sign in to create a tenant' using errcode = 'TPUA0';
  end if;
  insert into app_public.tenants (name, slug) values (btrim(p_name), p_slug) returning id into v_tenant_id;
  insert into app_public.memberships (tenant_id, user_id, role) values (v_tenant_id, v_user_id, 'OWNER');
  return v_tenant_id;
end
$$;
grant execute on function app.create_tenant(text, text) to tenantplane_app;

create table app_public.invitations (
  tenant_id   uuid not null references app_public.tenants (id) on delete cascade,
  id          uuid not null default gen_random_uuid(),
  email       text not null check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  role        app_public.tenant_role not null,
  token_hash  bytea not null unique,
  invited_by  uuid references app_public.users (id) on delete set null,
  expires_at  timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid references app_public.users (id) on delete set null,
  created_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.invitations is 'One-time invitations; the token itself is returned once and only its sha256 is kept.';
create unique index invitations_one_pending on app_public.invitations (tenant_id, email) where accepted_at is null;
alter table app_public.invitations enable row level security;
alter table app_public.invitations force row level security;
create policy invitations_select on app_public.invitations for select to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN'));
create policy invitations_insert on app_public.invitations for insert to tenantplane_app
  with check (app.can_manage_role(tenant_id, role) and invited_by = app.current_user_id());
create policy invitations_delete on app_public.invitations for delete to tenantplane_app
  using (app.can_manage_role(tenant_id, role));
grant select, insert, delete on app_public.invitations to tenantplane_app;

-- Accepts an invitation addressed to the current user's email. Errors carry TP* codes the API maps.
create function app.accept_invitation(p_token_hash bytea) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_email text;
  v_inv app_public.invitations;
  v_max integer;
  v_count integer;
  v_membership_id uuid;
begin
  if v_user_id is null then
    raise exception 'sign in to accept an invitation' using errcode = 'TPUA0';
  end if;
  select * into v_inv from app_public.invitations where token_hash = p_token_hash for update;
  if not found then
    raise exception 'invitation not found for your email address' using errcode = 'TPNF0';
  end if;
  select u.email into v_email from app_public.users u where u.id = v_user_id;
  -- A token addressed to someone else answers like an unknown one.
  if v_email is distinct from v_inv.email then
    raise exception 'invitation not found for your email address' using errcode = 'TPNF0';
  end if;
  if v_inv.accepted_at is not null then
    raise exception 'this invitation has already been used' using errcode = 'TPIN0';
  end if;
  if v_inv.expires_at <= now() then
    raise exception 'this invitation has expired: ask for a new one' using errcode = 'TPIN0';
  end if;
  if exists (select 1 from app_public.memberships m where m.tenant_id = v_inv.tenant_id and m.user_id = v_user_id) then
    raise exception 'you are already a member of this tenant' using errcode = 'TPCF0';
  end if;
  select p.max_members into v_max from app_public.tenants t join app_public.plans p on p.id = t.plan_id where t.id = v_inv.tenant_id for update of t;
  select count(*) into v_count from app_public.memberships m where m.tenant_id = v_inv.tenant_id;
  if v_count >= v_max then
    raise exception 'the tenant''s plan allows % members', v_max using errcode = 'TPQU0';
  end if;
  insert into app_public.memberships (tenant_id, user_id, role) values (v_inv.tenant_id, v_user_id, v_inv.role)
  returning id into v_membership_id;
  update app_public.invitations set accepted_at = now(), accepted_by = v_user_id
   where tenant_id = v_inv.tenant_id and id = v_inv.id;
  return v_membership_id;
end
$$;
grant execute on function app.accept_invitation(bytea) to tenantplane_app;

-- Users are visible to themselves, to the members of tenants they share, and to platform staff.
create policy users_select on app_public.users for select to tenantplane_app
  using (
    id = app.current_user_id()
    or (select app.is_platform_staff())
    or exists (select 1 from app_public.memberships m
                where m.user_id = users.id and m.tenant_id = any ((select app.visible_tenant_ids())::uuid[]))
  );
create policy users_update_self on app_public.users for update to tenantplane_app
  using (id = app.current_user_id())
  with check (id = app.current_user_id());

-- Down Migration
