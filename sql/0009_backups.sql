-- Up Migration

create type app_public.backup_status as enum ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED');
create type app_public.backup_type as enum ('FULL', 'INCREMENTAL');

-- A portable archive of one site in S3 (manifest + one gzip COPY stream per table + the site's files).
create table app_public.backups (
  tenant_id    uuid not null references app_public.tenants (id) on delete cascade,
  id           uuid not null default gen_random_uuid(),
  site_id      uuid not null,
  type         app_public.backup_type not null default 'FULL',
  status       app_public.backup_status not null default 'PENDING',
  size_bytes   bigint,
  object_key   text not null,
  checksum     text,
  manifest     jsonb,
  error        text,
  requested_by uuid references app_public.users (id) on delete set null,
  scheduled    boolean not null default false,
  created_at   timestamptz not null default now(),
  completed_at timestamptz,
  expires_at   timestamptz not null,
  primary key (tenant_id, id),
  foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade,
  check (object_key like 'tenants/' || tenant_id::text || '/backups/%')
);
comment on table app_public.backups is 'Site backups; SUCCESS only once every part is verified in S3. Kept until expires_at, never deleted before.';
create index backups_site_recent on app_public.backups (tenant_id, site_id, created_at desc, id desc);
create index backups_expiry on app_public.backups (expires_at);
alter table app_public.backups enable row level security;
alter table app_public.backups force row level security;
create policy backups_select on app_public.backups for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
create policy backups_insert on app_public.backups for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'ADMIN') and requested_by = app.current_user_id());
create policy backups_update on app_public.backups for update to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN'))
  with check (app.has_tenant_role(tenant_id, 'ADMIN'));
-- Retention is a database rule: no row (and so no archive) goes before its expiry, whoever asks.
create policy backups_delete on app_public.backups for delete to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN') and expires_at <= now());
grant select, insert, delete on app_public.backups to tenantplane_app;
grant update (status, size_bytes, checksum, manifest, error, completed_at) on app_public.backups to tenantplane_app;

-- Down Migration
