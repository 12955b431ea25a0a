-- Up Migration

-- Module jobs (issue 11 §4, seed 004 Job): an enabled app's `jobs` (SQL run inside the site on a cron schedule) run
-- as tracked jobs of queue `site-module-job` that carry their module's name, a priority and when they were due, with
-- the result and the error as JSON. They are asked for by the scheduler (`site-module-jobs`, every minute, acting
-- for the site's admin) or by a member (runModuleJob), through one definer function, never by a plain insert.
alter table app_public.jobs
  add column module       text check (module ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*/[a-z][a-z0-9]*(-[a-z0-9]+)*$'),
  add column priority     integer not null default 0 check (priority between -100 and 100),
  add column scheduled_at timestamptz,
  add column error_detail jsonb check (error_detail is null or jsonb_typeof(error_detail) = 'object');
comment on column app_public.jobs.module is 'A module job: <app>/<job name> of the site''s app (seed 004 Job.module).';
create index jobs_site_module on app_public.jobs (tenant_id, site_id, module, created_at desc) where module is not null;

insert into app_private.tenant_job_queues (name, permissions) values ('site-module-job', '{sites:operate,sites:write}');

-- One module job of a site's app: the tracked row (module, priority, scheduled_at) and the pg-boss job with that
-- priority, starting at scheduled_at. The caller is the acting member (app.user_id), who needs sites:operate or
-- sites:write; the app must be ENABLED on a HEALTHY site and declare that job in its installed manifest.
create function app.enqueue_module_job(p_tenant_id uuid, p_site_id uuid, p_app text, p_job text, p_scheduled_at timestamptz) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_job jsonb;
  v_status text;
  v_site_status text;
  v_retry_limit int;
  v_job_id uuid := gen_random_uuid();
  v_priority int;
  v_args jsonb;
begin
  if v_user_id is null then
    raise exception 'authentication required' using errcode = 'TPUA0';
  end if;
  if not (app.has_permission(p_tenant_id, 'sites:operate') or app.has_permission(p_tenant_id, 'sites:write')) then
    raise exception 'site not found' using errcode = 'TPNF0';
  end if;
  select a.status::text, s.status::text, (select j from jsonb_array_elements(a.manifest -> 'jobs') j where j ->> 'name' = p_job)
    into v_status, v_site_status, v_job
    from app_public.site_apps a join app_public.sites s on s.tenant_id = a.tenant_id and s.id = a.site_id
   where a.tenant_id = p_tenant_id and a.site_id = p_site_id and a.name = p_app;
  if not found then
    raise exception 'the site has no app %', p_app using errcode = 'TPNF0';
  end if;
  if v_job is null then
    raise exception 'the app % has no job %', p_app, p_job using errcode = 'TPIN0', column = 'job';
  end if;
  if v_status <> 'ENABLED' or v_site_status <> 'HEALTHY' then
    raise exception 'module jobs run for an ENABLED app of a HEALTHY site (the app is %, the site %)', v_status, v_site_status using errcode = 'TPIN0', column = 'app';
  end if;
  v_priority := coalesce((v_job ->> 'priority')::int, 0);
  select retry_limit into v_retry_limit from pgboss.queue where name = 'site-module-job';
  if not found then
    raise exception 'job queue "site-module-job" does not exist (the workers create their queues at start-up)';
  end if;
  v_args := jsonb_build_object('siteId', p_site_id, 'app', p_app, 'job', p_job);
  insert into app_public.jobs (tenant_id, id, type, site_id, requested_by, max_attempts, args, module, priority, scheduled_at)
  values (p_tenant_id, v_job_id, 'site-module-job', p_site_id, v_user_id, v_retry_limit + 1, v_args, p_app || '/' || p_job, v_priority, coalesce(p_scheduled_at, now()));
  insert into pgboss.job (id, name, data, priority, start_after, created_on, expire_seconds, deletion_seconds, keep_until,
                          retry_limit, retry_delay, retry_backoff, retry_delay_max, policy, dead_letter, heartbeat_seconds)
  select gen_random_uuid(), q.name,
         v_args || jsonb_build_object('tenantId', p_tenant_id, 'userId', v_user_id, 'jobId', v_job_id,
                                      'requestId', coalesce(nullif(current_setting('app.request_id', true), ''), 'none')),
         -- pg-boss fetches higher priorities first.
         v_priority, greatest(pgboss.job_now(), coalesce(p_scheduled_at, now())), pgboss.job_now(), q.expire_seconds, q.deletion_seconds,
         pgboss.job_now() + q.retention_seconds * interval '1s',
         q.retry_limit, q.retry_delay, q.retry_backoff, q.retry_delay_max, q.policy, q.dead_letter, q.heartbeat_seconds
    from pgboss.queue q where q.name = 'site-module-job';
  return v_job_id;
end
$$;
revoke all on function app.enqueue_module_job(uuid, uuid, text, text, timestamptz) from public;
grant execute on function app.enqueue_module_job(uuid, uuid, text, text, timestamptz) to tenantplane_app;

-- When the scheduler last asked for each module job: a job is due once its previous cron occurrence is later than
-- that (or than the app's install, for a job never run). Owner-only.
create table app_private.site_module_job_runs (
  tenant_id         uuid not null,
  site_id           uuid not null,
  app               text not null,
  job               text not null,
  last_scheduled_at timestamptz not null,
  primary key (tenant_id, site_id, app, job),
  foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade
);
alter table app_private.site_module_job_runs enable row level security;
alter table app_private.site_module_job_runs force row level security;

-- Down Migration
drop table app_private.site_module_job_runs;
drop function app.enqueue_module_job(uuid, uuid, text, text, timestamptz);
delete from app_private.tenant_job_queues where name = 'site-module-job';
drop index app_public.jobs_site_module;
alter table app_public.jobs drop column error_detail, drop column scheduled_at, drop column priority, drop column module;
