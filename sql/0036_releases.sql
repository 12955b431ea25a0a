-- Up Migration

-- Releases (issue 11, seed 001): apps come from app sources (a git repository, a branch, a tag or commit), release
-- groups pin a set of them and name the clusters they deploy to, a deploy candidate is one build of a group pushed
-- to a cluster's local registry, and a bench is a successful candidate deployed on that cluster's app servers.
-- Sources, groups, candidates and benches belong to a tenant (tenant_id in every key, composite foreign keys), so a
-- build or a deploy is an ordinary tenant job; a group platform staff mark public is readable by every tenant, and
-- its benches can carry their sites. What a build or a pull found (image, digests, reports) only workers write: the
-- request role can ask for a build, never claim one.

-- 1. Local registries (seed 001 Local Registry): one per cluster, platform rows; the password is the fleet secret
-- 'registry-password' of the registry's id (sealed, write only), gone with the row.
create table app_public.registries (
  id           uuid primary key default gen_random_uuid(),
  cluster_id   uuid not null unique references app_public.clusters (id) on delete restrict,
  url          text not null check (url ~ '^https?://[A-Za-z0-9.:\[\]-]+$'),
  namespace    text not null check (namespace ~ '^[a-z0-9]+(?:[._-][a-z0-9]+)*$' and length(namespace) <= 64),
  username     text not null check (length(username) between 1 and 256),
  check_status app_public.fleet_check_status not null default 'UNCHECKED',
  check_error  text,
  checked_at   timestamptz,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);
comment on table app_public.registries is 'The OCI registry of a cluster (seed 001 Local Registry): where its deploy candidates are pushed and its app servers pull from.';
alter table app_public.registries enable row level security;
alter table app_public.registries force row level security;
create policy registries_select on app_public.registries for select to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:read')));
create policy registries_insert on app_public.registries for insert to tenantplane_app
  with check ((select app.has_platform_permission('platform.fleet:write')));
create policy registries_update on app_public.registries for update to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')));
grant select on app_public.registries to tenantplane_app;
grant insert (id, cluster_id, url, namespace, username) on app_public.registries to tenantplane_app;
grant update (url, namespace, username, check_status, check_error, updated_at) on app_public.registries to tenantplane_app;
create trigger registries_delete_secret after delete on app_public.registries
  for each row execute function app_private.delete_fleet_secret('registry-password', 'id');

-- The registry check is a fleet check like the others (src/modules/fleet/checks.ts).
create or replace function app.request_fleet_check(p_kind text, p_id uuid) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_queue text;
  v_payload jsonb;
  v_server record;
begin
  if v_user_id is null then
    raise exception 'authentication required' using errcode = 'TPUA0';
  end if;
  if not app.has_platform_permission('platform.fleet:write') then
    raise exception 'you may not manage the fleet (platform.fleet:write)' using errcode = 'TPFB0';
  end if;
  case p_kind
    when 'database-server' then
      update app_public.database_servers set check_status = 'CHECKING', check_error = null, updated_at = now() where server_id = p_id;
      if not found then
        raise exception 'database server not found' using errcode = 'TPNF0';
      end if;
      v_queue := 'database-server-check';
      v_payload := jsonb_build_object('serverId', p_id);
    when 'storage' then
      update app_public.storage_configs set check_status = 'CHECKING', check_error = null, updated_at = now() where id = p_id;
      if not found then
        raise exception 'storage configuration not found' using errcode = 'TPNF0';
      end if;
      v_queue := 'storage-check';
      v_payload := jsonb_build_object('storageConfigId', p_id);
    when 'registry' then
      update app_public.registries set check_status = 'CHECKING', check_error = null, updated_at = now() where id = p_id;
      if not found then
        raise exception 'registry not found' using errcode = 'TPNF0';
      end if;
      v_queue := 'registry-check';
      v_payload := jsonb_build_object('registryId', p_id);
    when 'server' then
      select s.type, s.status into v_server from app_public.servers s where s.id = p_id;
      if not found then
        raise exception 'server not found' using errcode = 'TPNF0';
      end if;
      if v_server.type = 'DATABASE' then
        raise exception 'a database server is activated by its check' using errcode = 'TPIN0';
      end if;
      if v_server.status <> 'PENDING' then
        raise exception 'the server is %, only a PENDING server is activated', v_server.status using errcode = 'TPIN0';
      end if;
      v_queue := 'server-activate';
      v_payload := jsonb_build_object('serverId', p_id);
    else
      raise exception 'unknown fleet check: %', coalesce(p_kind, 'null') using errcode = 'TPIN0';
  end case;
  return app_private.insert_boss_job(v_queue, v_payload || jsonb_build_object(
    'requestedBy', v_user_id, 'requestId', coalesce(nullif(current_setting('app.request_id', true), ''), 'none')));
end
$$;
comment on function app.request_fleet_check(text, uuid) is 'Platform staff (platform.fleet:write): enqueue a database-server, storage, registry or server-activation check job.';

-- 2. App sources (seed 001 App Source): where an app is fetched from. The URL is https://, or builtin:<name> for the
-- apps shipped with Tenantplane; file:// only under the roots the deployment allows (checked by the API).
create table app_public.app_sources (
  tenant_id      uuid not null references app_public.tenants (id) on delete cascade,
  id             uuid not null default gen_random_uuid(),
  repository_url text not null check (repository_url ~ '^(https://|file:///|builtin:)' and length(repository_url) <= 2000),
  branch         text not null check (branch ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$' and branch !~ '\.\.'),
  version        text not null check (version ~ '^[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}$' and version !~ '\.\.'),
  path           text not null default '.' check (length(path) <= 500 and path ~ '^[A-Za-z0-9._/-]+$' and path !~ '(^|/)\.\.(/|$)' and path !~ '^/'),
  created_by     uuid references app_public.users (id) on delete set null,
  created_at     timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.app_sources is 'An app''s repository, branch and version (a tag or a commit on the branch), and its folder there.';
alter table app_public.app_sources enable row level security;
alter table app_public.app_sources force row level security;

-- 3. Release groups (seed 001 Release Group): a title, public or private, its clusters and its apps in order.
create table app_public.release_groups (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  name       text not null check (name ~ '^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$' and name !~ '--'),
  title      text not null check (length(btrim(title)) between 1 and 100),
  public     boolean not null default false,
  created_by uuid references app_public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, name)
);
comment on table app_public.release_groups is 'A set of apps released together to some clusters; public ones (set by platform staff) are readable by every tenant.';
create index release_groups_public on app_public.release_groups (id) where public;
alter table app_public.release_groups enable row level security;
alter table app_public.release_groups force row level security;

create table app_public.release_group_apps (
  tenant_id     uuid not null,
  group_id      uuid not null,
  app_source_id uuid not null,
  position      integer not null check (position between 0 and 99),
  primary key (tenant_id, group_id, app_source_id),
  unique (tenant_id, group_id, position),
  foreign key (tenant_id, group_id) references app_public.release_groups (tenant_id, id) on delete cascade,
  foreign key (tenant_id, app_source_id) references app_public.app_sources (tenant_id, id) on delete restrict
);
create index release_group_apps_source on app_public.release_group_apps (tenant_id, app_source_id);
alter table app_public.release_group_apps enable row level security;
alter table app_public.release_group_apps force row level security;

create table app_public.release_group_clusters (
  tenant_id  uuid not null,
  group_id   uuid not null,
  cluster_id uuid not null references app_public.clusters (id) on delete restrict,
  primary key (tenant_id, group_id, cluster_id),
  foreign key (tenant_id, group_id) references app_public.release_groups (tenant_id, id) on delete cascade
);
create index release_group_clusters_cluster on app_public.release_group_clusters (cluster_id);
alter table app_public.release_group_clusters enable row level security;
alter table app_public.release_group_clusters force row level security;

-- 4. Deploy candidates (seed 001 Deploy Candidate): DRAFT → PENDING → RUNNING → SUCCESS | FAILURE. The image, its
-- manifest digest and the apps resolved to commits are written by the build's worker only; SUCCESS needs them.
create type app_public.deploy_candidate_status as enum ('DRAFT', 'PENDING', 'RUNNING', 'SUCCESS', 'FAILURE');
create table app_public.deploy_candidates (
  tenant_id       uuid not null,
  id              uuid not null default gen_random_uuid(),
  group_id        uuid not null,
  cluster_id      uuid not null references app_public.clusters (id) on delete restrict,
  status          app_public.deploy_candidate_status not null default 'PENDING',
  image_name      text,
  image_tag       text,
  manifest_digest text check (manifest_digest ~ '^sha256:[0-9a-f]{64}$'),
  layer_digest    text check (layer_digest ~ '^sha256:[0-9a-f]{64}$'),
  apps            jsonb not null default '[]' check (jsonb_typeof(apps) = 'array'),
  error           text,
  job_id          uuid,
  created_by      uuid references app_public.users (id) on delete set null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, group_id) references app_public.release_groups (tenant_id, id) on delete cascade,
  foreign key (tenant_id, job_id) references app_public.jobs (tenant_id, id) on delete set null (job_id),
  foreign key (tenant_id, group_id, cluster_id) references app_public.release_group_clusters (tenant_id, group_id, cluster_id) on delete restrict,
  constraint deploy_candidates_success_has_image check (status <> 'SUCCESS' or (image_name is not null and image_tag is not null and manifest_digest is not null and layer_digest is not null))
);
comment on table app_public.deploy_candidates is 'One build of a release group, pushed to a cluster''s registry as an OCI artifact (image name, tag, manifest digest).';
create index deploy_candidates_group_recent on app_public.deploy_candidates (tenant_id, group_id, created_at desc);
alter table app_public.deploy_candidates enable row level security;
alter table app_public.deploy_candidates force row level security;

create function app.check_deploy_candidate_transition() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if tg_op = 'INSERT' then
    if new.status not in ('DRAFT', 'PENDING') then
      raise exception 'a deploy candidate starts as DRAFT or PENDING, not %', new.status using errcode = 'TPIN0';
    end if;
    return new;
  end if;
  if new.status = old.status then
    return new;
  end if;
  if not ((old.status = 'DRAFT' and new.status in ('PENDING', 'FAILURE'))
       or (old.status = 'PENDING' and new.status in ('RUNNING', 'FAILURE'))
       -- RUNNING → PENDING: an attempt handed back (a worker stopped) before the next one runs.
       or (old.status = 'RUNNING' and new.status in ('PENDING', 'SUCCESS', 'FAILURE'))) then
    raise exception 'a deploy candidate cannot go from % to %', old.status, new.status using errcode = 'TPIN0';
  end if;
  return new;
end
$$;
create trigger deploy_candidates_transition before insert or update of status on app_public.deploy_candidates
  for each row execute function app.check_deploy_candidate_transition();

-- 5. Benches (seed 001 Bench): a successful candidate deployed on its cluster's app servers, each of which pulls the
-- artifact, checks its digest and reports (bench_servers); PENDING → ACTIVE, or BROKEN with the reason. Written by
-- the deploy's worker; a request may only ask for one (PENDING).
create type app_public.bench_status as enum ('PENDING', 'ACTIVE', 'BROKEN', 'ARCHIVED');
create table app_public.benches (
  tenant_id    uuid not null,
  id           uuid not null default gen_random_uuid(),
  group_id     uuid not null,
  candidate_id uuid not null,
  cluster_id   uuid not null references app_public.clusters (id) on delete restrict,
  status       app_public.bench_status not null default 'PENDING',
  reason       text,
  job_id       uuid,
  created_by   uuid references app_public.users (id) on delete set null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  activated_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, group_id) references app_public.release_groups (tenant_id, id) on delete cascade,
  foreign key (tenant_id, candidate_id) references app_public.deploy_candidates (tenant_id, id) on delete restrict,
  foreign key (tenant_id, job_id) references app_public.jobs (tenant_id, id) on delete set null (job_id)
);
comment on table app_public.benches is 'A deploy candidate deployed to its cluster''s app servers; sites run on an ACTIVE one.';
create index benches_group_recent on app_public.benches (tenant_id, group_id, created_at desc);
alter table app_public.benches enable row level security;
alter table app_public.benches force row level security;

create function app.check_bench() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_candidate record;
begin
  if tg_op = 'INSERT' then
    select status, group_id, cluster_id into v_candidate from app_public.deploy_candidates where tenant_id = new.tenant_id and id = new.candidate_id;
    if v_candidate.status is distinct from 'SUCCESS' then
      raise exception 'only a successful deploy candidate can be deployed (this one is %)', coalesce(v_candidate.status::text, 'missing') using errcode = 'TPIN0';
    end if;
    if v_candidate.group_id <> new.group_id or v_candidate.cluster_id <> new.cluster_id then
      raise exception 'a bench runs its candidate''s group on its candidate''s cluster' using errcode = 'TPIN0';
    end if;
    if new.status <> 'PENDING' then
      raise exception 'a bench starts PENDING' using errcode = 'TPIN0';
    end if;
    return new;
  end if;
  if new.status <> old.status and not ((old.status = 'PENDING' and new.status in ('ACTIVE', 'BROKEN'))
       or (old.status in ('ACTIVE', 'BROKEN') and new.status = 'ARCHIVED')) then
    raise exception 'a bench cannot go from % to %', old.status, new.status using errcode = 'TPIN0';
  end if;
  return new;
end
$$;
create trigger benches_check before insert or update of status on app_public.benches
  for each row execute function app.check_bench();

-- What each app server of the bench's cluster reported for its pull: the digest it verified, or why it could not.
create type app_public.bench_server_status as enum ('PENDING', 'PULLED', 'FAILED');
create table app_public.bench_servers (
  tenant_id   uuid not null,
  bench_id    uuid not null,
  server_id   uuid not null references app_public.servers (id) on delete cascade,
  -- The server's name when it was asked (servers are fleet rows a tenant cannot read).
  server_name text not null,
  status      app_public.bench_server_status not null default 'PENDING',
  digest      text,
  error       text,
  reported_at timestamptz,
  primary key (tenant_id, bench_id, server_id),
  foreign key (tenant_id, bench_id) references app_public.benches (tenant_id, id) on delete cascade
);
create index bench_servers_pending on app_public.bench_servers (server_id) where status = 'PENDING';
alter table app_public.bench_servers enable row level security;
alter table app_public.bench_servers force row level security;

-- Read: the tenant's members with sites:read; a public group (and what it is made of and built into) by everyone
-- signed in. Write: sites:write, and only the columns a request may choose.
create policy release_groups_select on app_public.release_groups for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]) or (public and (select app.current_user_id()) is not null));
create policy release_groups_insert on app_public.release_groups for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id()) and not public);
create policy release_groups_update on app_public.release_groups for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select on app_public.release_groups to tenantplane_app;
-- Prisma writes the defaults it knows itself (created_at…), so the whole row is granted; the policy keeps `public` false.
grant insert on app_public.release_groups to tenantplane_app;
grant update (title, updated_at) on app_public.release_groups to tenantplane_app;

-- Whether a tenant's row belongs to a public group (for the policies below): the group's own policy answers.
create function app.is_public_group(p_tenant_id uuid, p_group_id uuid) returns boolean
  language sql stable
  set search_path = pg_catalog, pg_temp
  as $$ select exists (select 1 from app_public.release_groups g where g.tenant_id = p_tenant_id and g.id = p_group_id and g.public) $$;
revoke all on function app.is_public_group(uuid, uuid) from public;
grant execute on function app.is_public_group(uuid, uuid) to tenantplane_app;

create policy app_sources_select on app_public.app_sources for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[])
         or exists (select 1 from app_public.release_group_apps a join app_public.release_groups g on g.tenant_id = a.tenant_id and g.id = a.group_id
                     where a.tenant_id = app_sources.tenant_id and a.app_source_id = app_sources.id and g.public));
create policy app_sources_insert on app_public.app_sources for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id()));
create policy app_sources_delete on app_public.app_sources for delete to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select, delete on app_public.app_sources to tenantplane_app;
grant insert on app_public.app_sources to tenantplane_app;

create policy release_group_apps_select on app_public.release_group_apps for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]) or app.is_public_group(tenant_id, group_id));
create policy release_group_apps_write on app_public.release_group_apps for all to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select, insert, delete on app_public.release_group_apps to tenantplane_app;

create policy release_group_clusters_select on app_public.release_group_clusters for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]) or app.is_public_group(tenant_id, group_id));
create policy release_group_clusters_write on app_public.release_group_clusters for all to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select, insert, delete on app_public.release_group_clusters to tenantplane_app;

create policy deploy_candidates_select on app_public.deploy_candidates for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]) or (status = 'SUCCESS' and app.is_public_group(tenant_id, group_id)));
create policy deploy_candidates_insert on app_public.deploy_candidates for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id())
              and image_name is null and image_tag is null and manifest_digest is null and layer_digest is null and apps = '[]'::jsonb);
create policy deploy_candidates_update on app_public.deploy_candidates for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select on app_public.deploy_candidates to tenantplane_app;
-- A request asks for a build (the policy: nothing built yet); the trigger: DRAFT or PENDING.
grant insert on app_public.deploy_candidates to tenantplane_app;
-- The request side moves the status (the build's job, as its member) and links the job; SUCCESS needs the image,
-- which only the worker writes.
grant update (status, error, job_id, updated_at) on app_public.deploy_candidates to tenantplane_app;

create policy benches_select on app_public.benches for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]) or app.is_public_group(tenant_id, group_id));
create policy benches_insert on app_public.benches for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id())
              and reason is null and activated_at is null);
create policy benches_update on app_public.benches for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]));
grant select on app_public.benches to tenantplane_app;
-- A request asks for a deploy (the trigger: PENDING, of a successful candidate).
grant insert on app_public.benches to tenantplane_app;
-- Only the link to its job and the archive; ACTIVE and BROKEN are the deploy's worker's findings.
grant update (job_id, updated_at) on app_public.benches to tenantplane_app;

create policy bench_servers_select on app_public.bench_servers for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]));
grant select on app_public.bench_servers to tenantplane_app;

-- Platform staff mark a group public (or private again): the one way `public` changes.
create function app.set_release_group_public(p_tenant_id uuid, p_group_id uuid, p_public boolean) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not app.has_platform_permission('platform.fleet:write') then
    raise exception 'only platform staff (platform.fleet:write) make a release group public' using errcode = 'TPFB0';
  end if;
  update app_public.release_groups set public = p_public, updated_at = now() where tenant_id = p_tenant_id and id = p_group_id;
  if not found then
    raise exception 'release group not found' using errcode = 'TPNF0';
  end if;
end
$$;
revoke all on function app.set_release_group_public(uuid, uuid, boolean) from public;
grant execute on function app.set_release_group_public(uuid, uuid, boolean) to tenantplane_app;

-- The build and the deploy are tenant jobs; the registry check a fleet check.
insert into app_private.tenant_job_queues (name, permissions) values
  ('deploy-candidate-build', '{sites:write}'),
  ('bench-deploy', '{sites:write}');

-- Down Migration
delete from app_private.tenant_job_queues where name in ('deploy-candidate-build', 'bench-deploy');
drop function app.set_release_group_public(uuid, uuid, boolean);
drop table app_public.bench_servers;
drop type app_public.bench_server_status;
drop table app_public.benches;
drop function app.check_bench();
drop type app_public.bench_status;
drop table app_public.deploy_candidates;
drop function app.check_deploy_candidate_transition();
drop type app_public.deploy_candidate_status;
drop table app_public.release_group_clusters;
drop table app_public.release_group_apps;
drop function app.is_public_group(uuid, uuid);
drop table app_public.release_groups;
drop table app_public.app_sources;
drop table app_public.registries;
-- The fleet check as sql/0027 made it.
create or replace function app.request_fleet_check(p_kind text, p_id uuid) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_queue text;
  v_payload jsonb;
  v_server record;
begin
  if v_user_id is null then
    raise exception 'authentication required' using errcode = 'TPUA0';
  end if;
  if not app.has_platform_permission('platform.fleet:write') then
    raise exception 'you may not manage the fleet (platform.fleet:write)' using errcode = 'TPFB0';
  end if;
  case p_kind
    when 'database-server' then
      update app_public.database_servers set check_status = 'CHECKING', check_error = null, updated_at = now() where server_id = p_id;
      if not found then
        raise exception 'database server not found' using errcode = 'TPNF0';
      end if;
      v_queue := 'database-server-check';
      v_payload := jsonb_build_object('serverId', p_id);
    when 'storage' then
      update app_public.storage_configs set check_status = 'CHECKING', check_error = null, updated_at = now() where id = p_id;
      if not found then
        raise exception 'storage configuration not found' using errcode = 'TPNF0';
      end if;
      v_queue := 'storage-check';
      v_payload := jsonb_build_object('storageConfigId', p_id);
    when 'server' then
      select s.type, s.status into v_server from app_public.servers s where s.id = p_id;
      if not found then
        raise exception 'server not found' using errcode = 'TPNF0';
      end if;
      if v_server.type = 'DATABASE' then
        raise exception 'a database server is activated by its check' using errcode = 'TPIN0';
      end if;
      if v_server.status <> 'PENDING' then
        raise exception 'the server is %, only a PENDING server is activated', v_server.status using errcode = 'TPIN0';
      end if;
      v_queue := 'server-activate';
      v_payload := jsonb_build_object('serverId', p_id);
    else
      raise exception 'unknown fleet check: %', coalesce(p_kind, 'null') using errcode = 'TPIN0';
  end case;
  return app_private.insert_boss_job(v_queue, v_payload || jsonb_build_object(
    'requestedBy', v_user_id, 'requestId', coalesce(nullif(current_setting('app.request_id', true), ''), 'none')));
end
$$;
