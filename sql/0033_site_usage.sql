-- Up Migration

-- Sites measured against their plan (issue 10 §2). The site-measure job (src/modules/sites/usage.ts) writes what it
-- found: the bytes of the site's schema (or its own database) and of its files; the flag it sets when the sum is over
-- the plan's storage limit takes the site's login out of its owner role (read and delete only) until it is back under.
alter table app_public.sites
  add column database_bytes bigint check (database_bytes >= 0),
  add column file_bytes bigint check (file_bytes >= 0);
comment on column app_public.sites.over_storage_limit is 'Measured over its plan''s storage limit: its login may read, delete and truncate, not write, until a measure finds it back under.';

-- A request creates a site unmeasured, as before.
drop policy sites_insert on app_public.sites;
create policy sites_insert on app_public.sites for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id())
              and database_server_id is null and database_name is null and login_role is null and not over_storage_limit
              and isolation = 'SCHEMA' and measured_at is null and database_bytes is null and file_bytes is null);

-- measureSite (a member asks for a fresh measure) and changeSitePlan's job (applies the new plan's limits).
insert into app_private.tenant_job_queues (name, permissions) values
  ('site-measure', '{sites:operate}'),
  ('site-apply-plan', '{sites:write}');

-- Down Migration
