-- Up Migration

create type app_public.job_status as enum ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- The tenant-visible face of a pg-boss job: status, progress and log, updated by its handler, watched live.
create table app_public.jobs (
  tenant_id           uuid not null references app_public.tenants (id) on delete cascade,
  id                  uuid not null default gen_random_uuid(),
  type                text not null check (type ~ '^[a-z]+(-[a-z]+)*$'),
  status              app_public.job_status not null default 'PENDING',
  progress            integer not null default 0 check (progress between 0 and 100),
  step                text,
  logs                text[] not null default '{}',
  attempts            integer not null default 0 check (attempts >= 0),
  max_attempts        integer not null check (max_attempts >= 1),
  site_id             uuid,
  requested_by        uuid references app_public.users (id) on delete set null,
  cancel_requested_at timestamptz,
  result              jsonb,
  error               text,
  created_at          timestamptz not null default now(),
  started_at          timestamptz,
  completed_at        timestamptz,
  updated_at          timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.jobs is 'Background work of a tenant (provisioning, backups…), one row per request, updated by the worker.';
create index jobs_tenant_recent on app_public.jobs (tenant_id, created_at desc, id desc);
create index jobs_site on app_public.jobs (tenant_id, site_id, created_at desc);
alter table app_public.jobs enable row level security;
alter table app_public.jobs force row level security;
create policy jobs_select on app_public.jobs for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
create policy jobs_insert on app_public.jobs for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'MEMBER') and requested_by = app.current_user_id());
-- The requester (whose context the worker runs in) and the tenant's admins update a job: progress, cancel.
create policy jobs_update on app_public.jobs for update to tenantplane_app
  using (requested_by = app.current_user_id() or app.has_tenant_role(tenant_id, 'ADMIN'))
  with check (requested_by = app.current_user_id() or app.has_tenant_role(tenant_id, 'ADMIN'));
grant select, insert on app_public.jobs to tenantplane_app;
grant update (status, progress, step, logs, attempts, cancel_requested_at, result, error, started_at, completed_at, updated_at)
  on app_public.jobs to tenantplane_app;

create function app.notify_job_change() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform pg_notify('tenantplane_events',
    json_build_object('kind', 'job', 'tenantId', new.tenant_id, 'id', new.id::text)::text);
  return null;
end
$$;
create trigger jobs_notify after insert or update on app_public.jobs
  for each row execute function app.notify_job_change();

-- Down Migration
