-- Up Migration

-- Issue 9 §1–2: one permission model for the API and the policies.
--
-- * app_public.permissions is the catalogue: every permission string `resource:action`, tenant or platform scope.
-- * A role is a set of patterns: a catalogue string, or a wildcard `*:*`, `sites:*`, `*:read` (within one scope).
-- * A member holds one built-in role (memberships.role: OWNER, ADMIN, MEMBER, VIEWER, with exactly the behaviour the
--   four ranks had) plus any number of the tenant's custom roles (member_roles); effective permissions are the union.
-- * app.permitted_tenant_ids(permission) answers "in which visible tenants may the current user (or API key) do
--   this": policies call it as an init-plan, `tenant_id = any ((select app.permitted_tenant_ids('x:y'))::uuid[])`;
--   app.has_permission(tenant, permission) is the same decision for one tenant (the API's checks, SQL functions).
-- * A tenant that is not ACTIVE (suspended) keeps its read permissions and tenants:export, nothing else.
-- * Platform staff hold platform permissions (platform.*) from their platform role, and — only in the tenant they
--   name with X-Tenant, each such request recorded in that tenant's audit log — the tenant permissions of their
--   role's support set (a superadmin reads, an operator operates sites).

create table app_public.permissions (
  id          text primary key check (id ~ '^[a-z][a-z_.]*[a-z]:[a-z][a-z_]*[a-z]$'),
  scope       text not null check (scope in ('tenant', 'platform')),
  description text not null,
  check ((scope = 'platform') = (id like 'platform.%'))
);
comment on table app_public.permissions is 'The permission catalogue: every string a role, an API key or a mutation may name (docs/permissions.md).';
insert into app_public.permissions (id, scope, description) values
  ('tenants:write', 'tenant', 'Rename the tenant.'),
  ('tenants:delete', 'tenant', 'Delete the tenant and, after retention, all of its data.'),
  ('tenants:export', 'tenant', 'Export every row of the tenant to an archive.'),
  ('members:write', 'tenant', 'Change the roles of members and viewers, remove them, assign and unassign custom roles.'),
  ('members:admin', 'tenant', 'Manage ADMIN and OWNER memberships and invitations (with members:write or invitations:write).'),
  ('invitations:read', 'tenant', 'List pending invitations.'),
  ('invitations:write', 'tenant', 'Invite people and withdraw invitations.'),
  ('roles:read', 'tenant', 'Read the tenant''s custom roles and who holds them.'),
  ('roles:write', 'tenant', 'Create, change and delete custom roles (never with more than you hold).'),
  ('documents:read', 'tenant', 'Read documents and download their files.'),
  ('documents:write', 'tenant', 'Upload documents; rename and delete your own.'),
  ('documents:manage', 'tenant', 'Rename and delete anyone''s documents.'),
  ('chats:read', 'tenant', 'Read your own chat sessions.'),
  ('chats:write', 'tenant', 'Start chat sessions and post messages in your own.'),
  ('social_links:read', 'tenant', 'Read the tenant''s social links.'),
  ('social_links:write', 'tenant', 'Add and remove social links.'),
  ('sites:read', 'tenant', 'Read sites, their schemas and usage.'),
  ('sites:write', 'tenant', 'Create, configure and delete sites.'),
  ('sites:operate', 'tenant', 'Retry provisioning, suspend, resume and restore sites.'),
  ('backups:read', 'tenant', 'Read backups.'),
  ('backups:write', 'tenant', 'Back sites up and delete expired backups.'),
  ('jobs:read', 'tenant', 'Read jobs, their progress and logs.'),
  ('jobs:write', 'tenant', 'Cancel the jobs you started.'),
  ('jobs:manage', 'tenant', 'Cancel anyone''s jobs.'),
  ('audit:read', 'tenant', 'Read the tenant''s audit log.'),
  ('api_keys:read', 'tenant', 'List the tenant''s API keys (never their secrets).'),
  ('api_keys:write', 'tenant', 'Create and revoke API keys (never with more than you hold).'),
  ('platform.tenants:read', 'platform', 'List every tenant and its members.'),
  ('platform.tenants:write', 'platform', 'Suspend and reactivate tenants.'),
  ('platform.users:read', 'platform', 'Read every user.'),
  ('platform.users:write', 'platform', 'Deactivate and reactivate users.'),
  ('platform.audit:read', 'platform', 'Read every tenant''s audit log.'),
  ('platform.support:read', 'platform', 'Name a tenant with X-Tenant to use the role''s support permissions there (audited).');
alter table app_public.permissions enable row level security;
alter table app_public.permissions force row level security;
create policy permissions_select on app_public.permissions for select to tenantplane_app using (true);
grant select on app_public.permissions to tenantplane_app;

-- The four patterns that match a concrete permission: the string itself, its resource's and its action's wildcards, *:*.
create function app.permission_patterns(p_permission text) returns text[]
  language sql immutable parallel safe
  as $$ select array['*:*', p_permission, split_part(p_permission, ':', 1) || ':*', '*:' || split_part(p_permission, ':', 2)] $$;

-- Raises TPIN0 naming every pattern that is neither a catalogue string of the scope nor a wildcard over it.
create function app.check_permission_patterns(p_patterns text[], p_scope text) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_unknown text[];
begin
  select array_agg(p order by p) into v_unknown
    from unnest(coalesce(p_patterns, '{}')) p
   where not exists (select 1 from app_public.permissions c
                      where c.scope = p_scope and p = any (app.permission_patterns(c.id)));
  if v_unknown is not null then
    raise exception 'unknown permission%: %', case when cardinality(v_unknown) > 1 then 's' else '' end, array_to_string(v_unknown, ', ')
      using errcode = 'TPIN0';
  end if;
  return (select coalesce(array_agg(distinct p order by p), '{}') from unnest(coalesce(p_patterns, '{}')) p);
end
$$;

-- The catalogue strings a set of patterns grants.
create function app.expand_permissions(p_patterns text[], p_scope text) returns text[]
  language sql stable
  as $$
    select coalesce(array_agg(c.id order by c.id), '{}') from app_public.permissions c
     where c.scope = p_scope and app.permission_patterns(c.id) && p_patterns
  $$;

create table app_public.builtin_roles (
  role        app_public.tenant_role primary key,
  description text not null,
  permissions text[] not null
);
comment on table app_public.builtin_roles is 'The permission sets of the four built-in tenant roles (memberships.role).';
insert into app_public.builtin_roles (role, description, permissions) values
  ('OWNER', 'Full control, including deleting the tenant and managing owners and admins.', '{*:*}'),
  ('ADMIN', 'Everything but deleting the tenant and managing owners and admins.',
   '{tenants:write,tenants:export,members:write,invitations:*,roles:*,documents:*,chats:*,social_links:*,sites:*,backups:*,jobs:*,audit:read,api_keys:*}'),
  ('MEMBER', 'Works with documents and chats, cancels their own jobs, reads sites and backups.',
   '{roles:read,documents:read,documents:write,chats:*,social_links:read,sites:read,backups:read,jobs:read,jobs:write}'),
  ('VIEWER', 'Reads documents, sites, backups and jobs.',
   '{roles:read,documents:read,chats:read,social_links:read,sites:read,backups:read,jobs:read}');
alter table app_public.builtin_roles enable row level security;
alter table app_public.builtin_roles force row level security;
create policy builtin_roles_select on app_public.builtin_roles for select to tenantplane_app using (true);
grant select on app_public.builtin_roles to tenantplane_app;

-- Seed 004's default roles, offered as starting points for custom roles (createRole(template:)).
create table app_public.role_templates (
  name        text primary key,
  description text not null,
  permissions text[] not null
);
insert into app_public.role_templates (name, description, permissions) values
  ('admin', 'Seed 004''s admin: every permission (only an owner can create it).', '{*:*}'),
  ('operator', 'Seed 004''s operator: runs sites, backups and jobs.', '{sites:*,backups:*,jobs:*,documents:read}'),
  ('viewer', 'Seed 004''s viewer: reads everything a viewer may read, the audit log included.', '{*:read}');
alter table app_public.role_templates enable row level security;
alter table app_public.role_templates force row level security;
create policy role_templates_select on app_public.role_templates for select to tenantplane_app using (true);
grant select on app_public.role_templates to tenantplane_app;

create table app_public.platform_roles (
  role                 app_public.platform_role primary key,
  description          text not null,
  permissions          text[] not null,
  support_permissions  text[] not null
);
comment on table app_public.platform_roles is 'Platform roles as permission sets: platform permissions, and the tenant permissions staff hold in a tenant they name with X-Tenant.';
insert into app_public.platform_roles (role, description, permissions, support_permissions) values
  ('NONE', 'Not staff.', '{}', '{}'),
  ('VIEWER', 'Sees tenants, users and audit logs.', '{platform.tenants:read,platform.users:read,platform.audit:read}', '{}'),
  ('OPERATOR', 'Sees the platform and operates tenants'' sites.',
   '{platform.tenants:read,platform.users:read,platform.audit:read,platform.support:read}', '{sites:read,sites:operate,jobs:read,backups:read}'),
  ('SUPERADMIN', 'Every platform permission; reads any tenant''s data for support.', '{*:*}', '{*:read}');
alter table app_public.platform_roles enable row level security;
alter table app_public.platform_roles force row level security;
create policy platform_roles_select on app_public.platform_roles for select to tenantplane_app using (true);
grant select on app_public.platform_roles to tenantplane_app;

create table app_public.roles (
  tenant_id   uuid not null references app_public.tenants (id) on delete cascade,
  id          uuid not null default gen_random_uuid(),
  name        text not null check (name ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
  description text not null default '' check (length(description) <= 500),
  permissions text[] not null check (cardinality(permissions) between 1 and 64),
  created_by  uuid references app_public.users (id) on delete set null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, name)
);
comment on table app_public.roles is 'A tenant''s custom roles: named permission sets its members may hold besides their built-in role.';

create table app_public.member_roles (
  tenant_id   uuid not null,
  user_id     uuid not null,
  role_id     uuid not null,
  assigned_by uuid references app_public.users (id) on delete set null,
  assigned_at timestamptz not null default now(),
  primary key (tenant_id, user_id, role_id),
  foreign key (tenant_id, user_id) references app_public.memberships (tenant_id, user_id) on delete cascade,
  foreign key (tenant_id, role_id) references app_public.roles (tenant_id, id) on delete cascade
);
comment on table app_public.member_roles is 'Custom roles held by members (seed 004''s user_roles, with assignedBy and assignedAt).';
create index member_roles_role on app_public.member_roles (tenant_id, role_id);

-- Catalogue strings are checked (and wildcards normalised) whoever writes a role.
create function app.roles_check_permissions() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
begin
  new.permissions := app.check_permission_patterns(new.permissions, 'tenant');
  return new;
end
$$;
create trigger roles_check_permissions before insert or update of permissions on app_public.roles
  for each row execute function app.roles_check_permissions();

-- The visible tenants: the user's memberships (or the API key's tenant), narrowed to X-Tenant — and, for platform
-- staff whose role has support permissions, the tenant X-Tenant names even without a membership.
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
    return coalesce((select array_agg(m.tenant_id) from app_public.memberships m where m.user_id = v_user_id), '{}');
  end if;
  select array_agg(t.id) into v_ids
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
   where m.user_id = v_user_id
     and (t.id::text = lower(v_filter) or t.slug = v_filter);
  if v_ids is null and app.current_api_key_permissions() is null then
    select array_agg(t.id) into v_ids
      from app_public.tenants t
     where (t.id::text = lower(v_filter) or t.slug = v_filter)
       and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id and cardinality(r.support_permissions) > 0
                      and r.permissions && app.permission_patterns('platform.support:read'));
  end if;
  return coalesce(v_ids, '{}');
end
$$;

-- Until API keys land (sql/0021) no request carries one.
create function app.current_api_key_permissions() returns text[]
  language sql stable
  as $$ select null::text[] $$;
comment on function app.current_api_key_permissions() is 'The permissions of the API key of this request (NULL without one, {} for an unusable key).';

create function app.permitted_tenant_ids(p_permission text) returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_patterns text[] := app.permission_patterns(p_permission);
  v_visible uuid[];
  v_key text[];
  v_ids uuid[];
  v_writes boolean := p_permission not like '%:read' and p_permission <> 'tenants:export';
begin
  if not exists (select 1 from app_public.permissions c where c.id = p_permission and c.scope = 'tenant') then
    raise exception 'unknown permission: %', p_permission using errcode = 'TPIN0';
  end if;
  if v_user_id is null then
    return '{}';
  end if;
  v_key := app.current_api_key_permissions();
  if v_key is not null and not (v_key && v_patterns) then
    return '{}';
  end if;
  v_visible := app.visible_tenant_ids();
  if cardinality(v_visible) = 0 then
    return '{}';
  end if;
  select array_agg(m.tenant_id) into v_ids
    from app_public.memberships m
    join app_public.builtin_roles b on b.role = m.role
   where m.user_id = v_user_id
     and m.tenant_id = any (v_visible)
     and (b.permissions && v_patterns
          or exists (select 1 from app_public.member_roles mr
                       join app_public.roles r on r.tenant_id = mr.tenant_id and r.id = mr.role_id
                      where mr.tenant_id = m.tenant_id and mr.user_id = m.user_id and r.permissions && v_patterns));
  -- Support access: the one tenant X-Tenant named, without a membership (app.visible_tenant_ids decided it is one).
  if v_ids is null and v_key is null and app.current_tenant_filter() is not null
     and not exists (select 1 from app_public.memberships m where m.user_id = v_user_id and m.tenant_id = any (v_visible))
     and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                  where u.id = v_user_id and r.support_permissions && v_patterns) then
    v_ids := v_visible;
  end if;
  if v_ids is not null and v_writes then
    select array_agg(t.id) into v_ids from app_public.tenants t where t.id = any (v_ids) and t.status = 'ACTIVE';
  end if;
  return coalesce(v_ids, '{}');
end
$$;
comment on function app.permitted_tenant_ids(text) is 'The visible tenants in which the current user (or API key) holds a tenant permission; policies call it as an init-plan.';

create or replace function app.has_permission(p_tenant_id uuid, p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return coalesce(p_tenant_id = any (app.permitted_tenant_ids(p_permission)), false);
end
$$;

create or replace function app.has_platform_permission(p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not exists (select 1 from app_public.permissions c where c.id = p_permission and c.scope = 'platform') then
    raise exception 'unknown permission: %', p_permission using errcode = 'TPIN0';
  end if;
  -- An API key acts for a tenant, never with its creator's platform role.
  if app.current_api_key_permissions() is not null then
    return false;
  end if;
  return coalesce((select r.permissions && app.permission_patterns(p_permission)
                     from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = app.current_user_id()), false);
end
$$;

-- Every catalogue string of a tenant the current user holds (expanded): what the API shows as "your permissions".
create function app.my_permissions(p_tenant_id uuid) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return (select coalesce(array_agg(c.id order by c.id), '{}') from app_public.permissions c
           where c.scope = 'tenant' and app.has_permission(p_tenant_id, c.id));
end
$$;

-- Whether the current user holds every permission a set of patterns grants in a tenant (nobody grants more than
-- they hold): returns the missing catalogue strings, empty when none.
create function app.missing_permissions(p_tenant_id uuid, p_patterns text[]) returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return (select coalesce(array_agg(p order by p), '{}')
            from unnest(app.expand_permissions(p_patterns, 'tenant')) p
           where not app.has_permission(p_tenant_id, p));
end
$$;

-- Managing a membership or an invitation of built-in role R: members of lower rank with members:write (or
-- invitations:write), ADMIN and OWNER with members:admin as well, and never a role with more than you hold.
create or replace function app.can_manage_role(p_tenant_id uuid, p_role app_public.tenant_role) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return (p_role <= 'MEMBER' or app.has_permission(p_tenant_id, 'members:admin'))
     and cardinality(app.missing_permissions(p_tenant_id, (select b.permissions from app_public.builtin_roles b where b.role = p_role))) = 0;
end
$$;

-- A support request of platform staff (X-Tenant naming a tenant they are not a member of) is written to that
-- tenant's audit log. Called by the API once per request that carries X-Tenant; a member's request writes nothing.
create function app.record_support_access() returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_tenant uuid;
begin
  if v_user_id is null or app.current_tenant_filter() is null or app.current_api_key_permissions() is not null then
    return;
  end if;
  select t.id into v_tenant from app_public.tenants t where t.id = any (app.visible_tenant_ids());
  if v_tenant is null or exists (select 1 from app_public.memberships m where m.tenant_id = v_tenant and m.user_id = v_user_id) then
    return;
  end if;
  insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details)
  values (v_tenant, v_user_id, 'supportAccess', 'Tenant', v_tenant::text, 'SUCCESS',
          jsonb_build_object('platformRole', (select u.platform_role from app_public.users u where u.id = v_user_id),
                             -- Staff are no members: the tenant's admins could not read their user row to see who it was.
                             'staff', (select u.email from app_public.users u where u.id = v_user_id),
                             'requestId', nullif(current_setting('app.request_id', true), '')));
end
$$;

grant execute on function app.permission_patterns(text), app.check_permission_patterns(text[], text), app.expand_permissions(text[], text),
  app.permitted_tenant_ids(text), app.current_api_key_permissions(), app.my_permissions(uuid), app.missing_permissions(uuid, text[]),
  app.record_support_access() to tenantplane_app;

-- Staff visibility of the directory (tenants, memberships, users) becomes a platform permission.
create or replace function app.is_platform_staff() returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return app.has_platform_permission('platform.tenants:read');
end
$$;

-- Custom roles and their assignments.
alter table app_public.roles enable row level security;
alter table app_public.roles force row level security;
create policy roles_select on app_public.roles for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('roles:read'))::uuid[]));
create policy roles_insert on app_public.roles for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('roles:write'))::uuid[])
              and created_by = (select app.current_user_id())
              and cardinality(app.missing_permissions(tenant_id, permissions)) = 0);
create policy roles_update on app_public.roles for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('roles:write'))::uuid[])
         and cardinality(app.missing_permissions(tenant_id, permissions)) = 0)
  with check (tenant_id = any ((select app.permitted_tenant_ids('roles:write'))::uuid[])
              and cardinality(app.missing_permissions(tenant_id, permissions)) = 0);
create policy roles_delete on app_public.roles for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('roles:write'))::uuid[])
         and cardinality(app.missing_permissions(tenant_id, permissions)) = 0);
grant select, insert, delete on app_public.roles to tenantplane_app;
grant update (name, description, permissions, updated_at) on app_public.roles to tenantplane_app;

alter table app_public.member_roles enable row level security;
alter table app_public.member_roles force row level security;
create policy member_roles_select on app_public.member_roles for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('roles:read'))::uuid[]) or user_id = (select app.current_user_id()));
create policy member_roles_insert on app_public.member_roles for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('members:write'))::uuid[])
              and assigned_by = (select app.current_user_id())
              and cardinality(app.missing_permissions(tenant_id, (select r.permissions from app_public.roles r
                                                                  where r.tenant_id = member_roles.tenant_id and r.id = member_roles.role_id))) = 0);
create policy member_roles_delete on app_public.member_roles for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('members:write'))::uuid[])
         and cardinality(app.missing_permissions(tenant_id, (select r.permissions from app_public.roles r
                                                             where r.tenant_id = member_roles.tenant_id and r.id = member_roles.role_id))) = 0);
grant select, insert, delete on app_public.member_roles to tenantplane_app;

-- Every earlier policy, rewritten on permissions. Rules that are not about permissions stay beside them: a user's
-- own chats and uploads, a job's requester updating it (the worker runs in their context), retention of backups.
drop policy tenants_update on app_public.tenants;
create policy tenants_update on app_public.tenants for update to tenantplane_app
  using (id = any ((select app.permitted_tenant_ids('tenants:write'))::uuid[]))
  with check (id = any ((select app.permitted_tenant_ids('tenants:write'))::uuid[]));

drop policy memberships_update on app_public.memberships;
create policy memberships_update on app_public.memberships for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('members:write'))::uuid[]) and app.can_manage_role(tenant_id, role))
  with check (tenant_id = any ((select app.permitted_tenant_ids('members:write'))::uuid[]) and app.can_manage_role(tenant_id, role));
drop policy memberships_delete on app_public.memberships;
create policy memberships_delete on app_public.memberships for delete to tenantplane_app
  using ((tenant_id = any ((select app.permitted_tenant_ids('members:write'))::uuid[]) and app.can_manage_role(tenant_id, role))
         or (user_id = (select app.current_user_id()) and tenant_id = any ((select app.visible_tenant_ids())::uuid[])));

drop policy invitations_select on app_public.invitations;
create policy invitations_select on app_public.invitations for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('invitations:read'))::uuid[]));
drop policy invitations_insert on app_public.invitations;
create policy invitations_insert on app_public.invitations for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('invitations:write'))::uuid[]) and app.can_manage_role(tenant_id, role)
              and invited_by = (select app.current_user_id()));
drop policy invitations_delete on app_public.invitations;
create policy invitations_delete on app_public.invitations for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('invitations:write'))::uuid[]) and app.can_manage_role(tenant_id, role));

drop policy audit_events_select on app_public.audit_events;
create policy audit_events_select on app_public.audit_events for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('audit:read'))::uuid[]) or (select app.has_platform_permission('platform.audit:read')));

drop policy files_select on app_public.files;
create policy files_select on app_public.files for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('documents:read'))::uuid[]));
drop policy files_insert on app_public.files;
create policy files_insert on app_public.files for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]));
drop policy files_delete on app_public.files;
create policy files_delete on app_public.files for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]));

drop policy uploads_own on app_public.uploads;
create policy uploads_own on app_public.uploads for all to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('documents:read'))::uuid[]) and uploader_id = (select app.current_user_id()))
  with check (tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]) and uploader_id = (select app.current_user_id()));

drop policy documents_select on app_public.documents;
create policy documents_select on app_public.documents for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('documents:read'))::uuid[]));
drop policy documents_insert on app_public.documents;
create policy documents_insert on app_public.documents for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]) and uploader_id = (select app.current_user_id()));
drop policy documents_update on app_public.documents;
create policy documents_update on app_public.documents for update to tenantplane_app
  using ((uploader_id = (select app.current_user_id()) and tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]))
         or tenant_id = any ((select app.permitted_tenant_ids('documents:manage'))::uuid[]))
  with check ((uploader_id = (select app.current_user_id()) and tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]))
              or tenant_id = any ((select app.permitted_tenant_ids('documents:manage'))::uuid[]));
drop policy documents_delete on app_public.documents;
create policy documents_delete on app_public.documents for delete to tenantplane_app
  using ((uploader_id = (select app.current_user_id()) and tenant_id = any ((select app.permitted_tenant_ids('documents:write'))::uuid[]))
         or tenant_id = any ((select app.permitted_tenant_ids('documents:manage'))::uuid[]));

drop policy chat_sessions_select on app_public.chat_sessions;
create policy chat_sessions_select on app_public.chat_sessions for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('chats:read'))::uuid[]) and user_id = (select app.current_user_id()));
drop policy chat_sessions_insert on app_public.chat_sessions;
create policy chat_sessions_insert on app_public.chat_sessions for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('chats:write'))::uuid[]) and user_id = (select app.current_user_id()));
drop policy chat_sessions_update on app_public.chat_sessions;
create policy chat_sessions_update on app_public.chat_sessions for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('chats:write'))::uuid[]) and user_id = (select app.current_user_id()))
  with check (tenant_id = any ((select app.permitted_tenant_ids('chats:write'))::uuid[]) and user_id = (select app.current_user_id()));

drop policy chat_messages_select on app_public.chat_messages;
create policy chat_messages_select on app_public.chat_messages for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('chats:read'))::uuid[])
         and exists (select 1 from app_public.chat_sessions s
                      where s.tenant_id = chat_messages.tenant_id and s.id = chat_messages.session_id
                        and s.user_id = (select app.current_user_id())));
drop policy chat_messages_insert on app_public.chat_messages;
create policy chat_messages_insert on app_public.chat_messages for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('chats:write'))::uuid[])
              and exists (select 1 from app_public.chat_sessions s
                           where s.tenant_id = chat_messages.tenant_id and s.id = chat_messages.session_id
                             and s.user_id = (select app.current_user_id())));

drop policy social_links_select on app_public.social_links;
create policy social_links_select on app_public.social_links for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('social_links:read'))::uuid[]));
drop policy social_links_insert on app_public.social_links;
create policy social_links_insert on app_public.social_links for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('social_links:write'))::uuid[]) and created_by = (select app.current_user_id()));
drop policy social_links_delete on app_public.social_links;
create policy social_links_delete on app_public.social_links for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('social_links:write'))::uuid[]));

drop policy jobs_select on app_public.jobs;
create policy jobs_select on app_public.jobs for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('jobs:read'))::uuid[]));
drop policy jobs_update on app_public.jobs;
create policy jobs_update on app_public.jobs for update to tenantplane_app
  using ((requested_by = (select app.current_user_id()) and tenant_id = any ((select app.visible_tenant_ids())::uuid[]))
         or tenant_id = any ((select app.permitted_tenant_ids('jobs:manage'))::uuid[]))
  with check ((requested_by = (select app.current_user_id()) and tenant_id = any ((select app.visible_tenant_ids())::uuid[]))
              or tenant_id = any ((select app.permitted_tenant_ids('jobs:manage'))::uuid[]));

drop policy sites_select on app_public.sites;
create policy sites_select on app_public.sites for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]));
drop policy sites_insert on app_public.sites;
create policy sites_insert on app_public.sites for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id()));
drop policy sites_update on app_public.sites;
create policy sites_update on app_public.sites for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]));

drop policy tenant_schemas_select on app_public.tenant_schemas;
create policy tenant_schemas_select on app_public.tenant_schemas for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]));

drop policy backups_select on app_public.backups;
create policy backups_select on app_public.backups for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('backups:read'))::uuid[]));
drop policy backups_insert on app_public.backups;
create policy backups_insert on app_public.backups for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('backups:write'))::uuid[]) and requested_by = (select app.current_user_id()));
drop policy backups_update on app_public.backups;
create policy backups_update on app_public.backups for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('backups:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('backups:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]));
drop policy backups_delete on app_public.backups;
create policy backups_delete on app_public.backups for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('backups:write'))::uuid[]) and expires_at <= now());

-- Tenant job queues name the permissions that may ask for them (any one of them) instead of a rank: a site is
-- provisioned when it is created (sites:write) or retried (sites:operate).
alter table app_private.tenant_job_queues add column permissions text[];
update app_private.tenant_job_queues set permissions = case name
  when 'document-process' then '{documents:write}'::text[]
  when 'site-provision' then '{sites:write,sites:operate}'
  when 'site-backup' then '{backups:write}'
  when 'site-restore' then '{sites:operate}'
  when 'tenant-export' then '{tenants:export}'
end;
alter table app_private.tenant_job_queues alter column permissions set not null;
alter table app_private.tenant_job_queues add check (cardinality(permissions) > 0);
alter table app_private.tenant_job_queues drop column min_role;
comment on table app_private.tenant_job_queues is 'Queues a tenant member may ask for through app.enqueue_job, with the permissions that may (any one).';

create or replace function app.enqueue_job(p_queue text, p_tenant_id uuid, p_site_id uuid, p_args jsonb) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_permissions text[];
  v_retry_limit int;
  v_job_id uuid := gen_random_uuid();
  v_args jsonb := coalesce(p_args, '{}');
begin
  if v_user_id is null then
    raise exception 'authentication required' using errcode = 'TPUA0';
  end if;
  select permissions into v_permissions from app_private.tenant_job_queues where name = p_queue;
  if not found then
    raise exception 'no such job type: %', p_queue using errcode = 'TPIN0';
  end if;
  if p_tenant_id is null or not exists (select 1 from unnest(v_permissions) p where app.has_permission(p_tenant_id, p)) then
    -- Another tenant's id, or a missing permission: answered like a missing tenant (the API checks permissions first).
    raise exception 'tenant not found' using errcode = 'TPNF0';
  end if;
  if jsonb_typeof(v_args) <> 'object' or exists (select 1 from jsonb_each(v_args) e where jsonb_typeof(e.value) <> 'string') then
    raise exception 'job arguments must be an object of strings' using errcode = 'TPIN0';
  end if;
  select retry_limit into v_retry_limit from pgboss.queue where name = p_queue;
  if not found then
    raise exception 'job queue "%" does not exist (the workers create their queues at start-up)', p_queue;
  end if;
  insert into app_public.jobs (tenant_id, id, type, site_id, requested_by, max_attempts, args)
  values (p_tenant_id, v_job_id, p_queue, p_site_id, v_user_id, v_retry_limit + 1, v_args);
  perform app_private.insert_boss_job(p_queue, v_args || jsonb_build_object(
    'tenantId', p_tenant_id, 'userId', v_user_id, 'jobId', v_job_id,
    'requestId', coalesce(nullif(current_setting('app.request_id', true), ''), 'none')));
  return v_job_id;
end
$$;

drop policy users_select on app_public.users;
create policy users_select on app_public.users for select to tenantplane_app
  using (
    id = app.current_user_id()
    or (select app.has_platform_permission('platform.users:read'))
    or id in (select m.user_id from app_public.memberships m where m.tenant_id = any ((select app.visible_tenant_ids())::uuid[]))
  );

-- Down Migration
