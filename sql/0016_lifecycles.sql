-- Up Migration

-- 1. Lifecycles (issue 14 §5): every legal move of a status, in one table; a trigger on each table refuses any other
-- move whoever issues it — a request, a job, the owner role of maintenance code — with SQLSTATE TPIN0 ("cannot move a
-- site from X to Y"). The API checks the same moves first to answer BAD_USER_INPUT naming the current state; the
-- site table here and TRANSITIONS in src/modules/sites/lifecycle.ts are compared by test/lifecycles.test.ts.
-- A row with from_status NULL is a state a row may be created in. Staying in the same state is always allowed.
create table app.lifecycle_transitions (
  entity      text not null check (entity in ('site', 'backup', 'job', 'document', 'upload')),
  from_status text,
  to_status   text not null,
  -- 'maintenance': only a privileged role (the owner pool of maintenance jobs) makes this move.
  made_by     text not null default 'any' check (made_by in ('any', 'maintenance')),
  unique nulls not distinct (entity, from_status, to_status)
);
comment on table app.lifecycle_transitions is 'The legal status moves of each lifecycle (from_status NULL: the states a row starts in); enforced by app.enforce_lifecycle().';
alter table app.lifecycle_transitions enable row level security;
alter table app.lifecycle_transitions force row level security;
create policy lifecycle_transitions_select on app.lifecycle_transitions for select using (true);
grant select on app.lifecycle_transitions to tenantplane_app;

insert into app.lifecycle_transitions (entity, from_status, to_status) values
  -- Sites (src/modules/sites/lifecycle.ts): createSite; provisioning PENDING → PROVISIONING → RUNNING → HEALTHY or
  -- FAILED; retrySiteProvisioning FAILED → PENDING; suspend/resume/delete; restore from SOFT_DELETED or HEALTHY through
  -- RESTORING (back to the previous state when it fails); the purge SOFT_DELETED → DELETED.
  ('site', null, 'PENDING'),
  ('site', 'PENDING', 'PROVISIONING'), ('site', 'PENDING', 'FAILED'), ('site', 'PENDING', 'SOFT_DELETED'),
  ('site', 'PROVISIONING', 'RUNNING'), ('site', 'PROVISIONING', 'FAILED'),
  ('site', 'RUNNING', 'HEALTHY'), ('site', 'RUNNING', 'FAILED'), ('site', 'RUNNING', 'SUSPENDED'),
  ('site', 'RUNNING', 'SOFT_DELETED'), ('site', 'RUNNING', 'RESTORING'),
  ('site', 'HEALTHY', 'RUNNING'), ('site', 'HEALTHY', 'SUSPENDED'), ('site', 'HEALTHY', 'SOFT_DELETED'), ('site', 'HEALTHY', 'RESTORING'),
  ('site', 'FAILED', 'PENDING'), ('site', 'FAILED', 'SOFT_DELETED'),
  ('site', 'SUSPENDED', 'HEALTHY'), ('site', 'SUSPENDED', 'SOFT_DELETED'),
  ('site', 'SOFT_DELETED', 'RESTORING'),
  ('site', 'RESTORING', 'RUNNING'), ('site', 'RESTORING', 'FAILED'), ('site', 'RESTORING', 'HEALTHY'), ('site', 'RESTORING', 'SOFT_DELETED'),
  -- Backups (src/modules/backups/jobs.ts): the job makes it RUNNING, then SUCCESS or FAILED (FAILED straight from
  -- PENDING when it fails or is cancelled before starting). A retry of a job whose attempt committed SUCCESS but did
  -- not finish redoes the archive (SUCCESS → RUNNING), and its last failing attempt marks it FAILED.
  ('backup', null, 'PENDING'),
  ('backup', 'PENDING', 'RUNNING'), ('backup', 'PENDING', 'FAILED'),
  ('backup', 'RUNNING', 'SUCCESS'), ('backup', 'RUNNING', 'FAILED'),
  ('backup', 'SUCCESS', 'RUNNING'), ('backup', 'SUCCESS', 'FAILED'),
  -- Jobs (src/modules/jobs/run.ts): an attempt starts (RUNNING), fails back to PENDING for a retry, or finishes;
  -- a job whose requester can no longer act for the tenant fails without starting. Finished jobs stay finished.
  ('job', null, 'PENDING'),
  ('job', 'PENDING', 'RUNNING'), ('job', 'PENDING', 'FAILED'),
  ('job', 'RUNNING', 'PENDING'), ('job', 'RUNNING', 'COMPLETED'), ('job', 'RUNNING', 'FAILED'), ('job', 'RUNNING', 'CANCELLED'),
  -- Documents (src/modules/documents/processing.ts): processing, back to UPLOADED for a retry, ERROR after the last.
  ('document', null, 'UPLOADED'),
  ('document', 'UPLOADED', 'PROCESSING'), ('document', 'UPLOADED', 'ERROR'),
  ('document', 'PROCESSING', 'PROCESSED'), ('document', 'PROCESSING', 'ERROR'), ('document', 'PROCESSING', 'UPLOADED'),
  -- Uploads (no status column: PENDING while completed_at is NULL, then COMPLETED, once).
  ('upload', null, 'PENDING'),
  ('upload', 'PENDING', 'COMPLETED');
-- Only the purge (src/modules/sites/purge.ts, owner role) makes a site DELETED, once its schema, role and files are
-- gone: a DELETED site no longer counts against plans.max_sites, so the request role making it would free quota
-- while the schema stays.
insert into app.lifecycle_transitions (entity, from_status, to_status, made_by) values ('site', 'SOFT_DELETED', 'DELETED', 'maintenance');

-- Not SECURITY DEFINER: current_user is whoever writes. A row is created in a starting state unless the writer is
-- privileged (superuser or BYPASSRLS: migrations, seeds, the owner role), who could bypass any rule anyway; every
-- change of state, by anyone, must be a listed move.
create function app.enforce_lifecycle() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_entity text := tg_argv[0];
  v_new jsonb := to_jsonb(new);
  v_old jsonb;
  v_from text;
  v_to text;
begin
  v_to := case when v_entity = 'upload' then case when v_new ->> 'completed_at' is null then 'PENDING' else 'COMPLETED' end
               else v_new ->> 'status' end;
  -- An upload created or completed onto stored bytes names a file of its tenant with its own sha256 (or the bytes it
  -- brings would be counted nowhere).
  if v_entity = 'upload' and v_new ->> 'file_id' is not null
     and (tg_op = 'INSERT' or (to_jsonb(old) ->> 'completed_at' is null and v_new ->> 'file_id' is distinct from to_jsonb(old) ->> 'file_id'))
     and not exists (select 1 from app_public.files f
                      where f.tenant_id = (v_new ->> 'tenant_id')::uuid and f.id = (v_new ->> 'file_id')::uuid and f.sha256 = v_new ->> 'sha256') then
    raise exception 'an upload can only be completed onto a stored file with its own sha256' using errcode = 'TPIN0';
  end if;
  if tg_op = 'INSERT' then
    if exists (select 1 from app.lifecycle_transitions l where l.entity = v_entity and l.from_status is null and l.to_status = v_to)
       or exists (select 1 from pg_roles r where r.rolname = current_user and (r.rolsuper or r.rolbypassrls)) then
      return new;
    end if;
    raise exception 'a new % starts %, not %', v_entity,
      (select string_agg(l.to_status, ' or ' order by l.to_status) from app.lifecycle_transitions l where l.entity = v_entity and l.from_status is null), v_to
      using errcode = 'TPIN0';
  end if;
  v_old := to_jsonb(old);
  if v_entity = 'upload' then
    if v_old ->> 'completed_at' is not null then
      if v_new ->> 'completed_at' is distinct from v_old ->> 'completed_at' then
        raise exception 'cannot move an upload from COMPLETED to %: an upload completes once', v_to using errcode = 'TPIN0';
      end if;
      -- Its file may go (ON DELETE SET NULL), never be swapped for another.
      if v_new ->> 'file_id' is not null and v_new ->> 'file_id' is distinct from v_old ->> 'file_id' then
        raise exception 'the file of a completed upload cannot change' using errcode = 'TPIN0';
      end if;
      return new;
    end if;
    -- Pending, its file is set when it completes (its reserved bytes are released only then).
    if v_to = 'PENDING' and v_new ->> 'file_id' is not null and v_new ->> 'file_id' is distinct from v_old ->> 'file_id' then
      raise exception 'the file of an upload is set when it completes' using errcode = 'TPIN0';
    end if;
    v_from := 'PENDING';
  else
    v_from := v_old ->> 'status';
  end if;
  if v_from = v_to
     or exists (select 1 from app.lifecycle_transitions l where l.entity = v_entity and l.from_status = v_from and l.to_status = v_to and l.made_by = 'any') then
    return new;
  end if;
  if exists (select 1 from app.lifecycle_transitions l where l.entity = v_entity and l.from_status = v_from and l.to_status = v_to and l.made_by = 'maintenance') then
    if exists (select 1 from pg_roles r where r.rolname = current_user and (r.rolsuper or r.rolbypassrls)) then
      return new;
    end if;
    raise exception 'cannot move % % from % to %: only maintenance does', case when v_entity = 'upload' then 'an' else 'a' end, v_entity, v_from, v_to
      using errcode = 'TPIN0';
  end if;
  raise exception 'cannot move % % from % to %', case when v_entity = 'upload' then 'an' else 'a' end, v_entity, v_from, v_to
    using errcode = 'TPIN0';
end
$$;
comment on function app.enforce_lifecycle() is 'BEFORE INSERT/UPDATE trigger: refuses a status move app.lifecycle_transitions does not list (TPIN0).';

create trigger sites_lifecycle_insert before insert on app_public.sites
  for each row execute function app.enforce_lifecycle('site');
create trigger sites_lifecycle before update of status on app_public.sites
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('site');
create trigger backups_lifecycle_insert before insert on app_public.backups
  for each row execute function app.enforce_lifecycle('backup');
create trigger backups_lifecycle before update of status on app_public.backups
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('backup');
create trigger jobs_lifecycle_insert before insert on app_public.jobs
  for each row execute function app.enforce_lifecycle('job');
create trigger jobs_lifecycle before update of status on app_public.jobs
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('job');
create trigger documents_lifecycle_insert before insert on app_public.documents
  for each row execute function app.enforce_lifecycle('document');
create trigger documents_lifecycle before update of status on app_public.documents
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('document');
create trigger uploads_lifecycle_insert before insert on app_public.uploads
  for each row execute function app.enforce_lifecycle('upload');
create trigger uploads_lifecycle before update of completed_at, file_id on app_public.uploads
  for each row when (old.completed_at is distinct from new.completed_at or old.file_id is distinct from new.file_id)
  execute function app.enforce_lifecycle('upload');

-- A site's schema is named after its own id (src/modules/sites/apps.ts siteSchemaName): the request role may write
-- schema_name (provisioning records it in the requester's context), but never point it at another site's schema,
-- which the backup job would then dump as the owner.
alter table app_public.sites add constraint sites_schema_name_is_own
  check (schema_name is null or schema_name = 'site_' || replace(id::text, '-', ''));

-- 2. Garbage context (issue 14 §5): app.user_id set to anything but a uuid made every policy raise 22P02 (with the
-- value in the message). A malformed value now reads as no user: zero rows, no error. Still LANGUAGE sql, inlined.
-- app.tenant_id is only ever compared as text (app.visible_tenant_ids: id or slug), so garbage there matches no tenant.
create or replace function app.current_user_id() returns uuid
  language sql stable
  as $$
    select case when current_setting('app.user_id', true) ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
                then current_setting('app.user_id', true)::uuid end
  $$;
comment on function app.current_user_id() is 'The authenticated user of the current transaction, or NULL (unset, empty or not a uuid).';

-- Down Migration
