-- Up Migration

create type app_public.site_status as enum
  ('PENDING', 'PROVISIONING', 'RUNNING', 'HEALTHY', 'FAILED', 'SUSPENDED', 'SOFT_DELETED', 'DELETED', 'RESTORING');

-- A hosted site: its data lives in its own Postgres schema, owned by its own role (see tenant_schemas).
create table app_public.sites (
  tenant_id       uuid not null references app_public.tenants (id) on delete cascade,
  id              uuid not null default gen_random_uuid(),
  name            text not null unique check (name ~ '^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$' and name !~ '--'),
  display_name    text not null check (length(btrim(display_name)) between 1 and 100),
  domain          text not null unique,
  status          app_public.site_status not null default 'PENDING',
  apps            text[] not null default '{}',
  config          jsonb not null default '{}' check (jsonb_typeof(config) = 'object'),
  schema_name     text unique check (schema_name ~ '^site_[0-9a-f]{32}$'),
  created_by      uuid references app_public.users (id) on delete set null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  deleted_at      timestamptz,
  retention_until timestamptz,
  primary key (tenant_id, id)
);
comment on table app_public.sites is 'Sites of a tenant; the name is DNS-safe and unique in the deployment.';
create index sites_tenant_recent on app_public.sites (tenant_id, created_at desc, id desc);
alter table app_public.sites enable row level security;
alter table app_public.sites force row level security;
create policy sites_select on app_public.sites for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
create policy sites_insert on app_public.sites for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'ADMIN') and created_by = app.current_user_id());
-- Lifecycle changes come from admins (mutations) or from jobs running in the requesting admin's context.
create policy sites_update on app_public.sites for update to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN'))
  with check (app.has_tenant_role(tenant_id, 'ADMIN'));
grant select, insert on app_public.sites to tenantplane_app;
grant update (display_name, status, config, schema_name, updated_at, deleted_at, retention_until) on app_public.sites to tenantplane_app;

alter table app_public.jobs add foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade;

-- Low-level record of a site's schema: name, owner role, size, last backup.
create table app_public.tenant_schemas (
  tenant_id      uuid not null references app_public.tenants (id) on delete cascade,
  schema_name    text not null unique check (schema_name ~ '^site_[0-9a-f]{32}$'),
  site_id        uuid not null,
  owner_role     text not null unique,
  size_bytes     bigint not null default 0,
  last_backup_at timestamptz,
  created_at     timestamptz not null default now(),
  primary key (tenant_id, schema_name),
  foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade
);
create index tenant_schemas_site on app_public.tenant_schemas (tenant_id, site_id);
alter table app_public.tenant_schemas enable row level security;
alter table app_public.tenant_schemas force row level security;
create policy tenant_schemas_select on app_public.tenant_schemas for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
grant select on app_public.tenant_schemas to tenantplane_app;

-- Down Migration
