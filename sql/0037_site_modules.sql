-- Up Migration

-- Sites on benches, and their apps as modules (issue 11 §3–§4, seed 004's module lifecycle).

-- 1. A site created on a bench runs its release: the bench's candidate is what its apps are installed and updated
-- from. The bench may be the tenant's own or one of a public group (another tenant's row), hence its own tenant
-- column. A request chooses the bench when it creates the site (checked below); only the update's worker moves a
-- site to another bench. No foreign key: it may cross tenants, which a table distributed by tenant (docs/scale-out.md)
-- cannot hold, so the two triggers below keep the reference instead — a site names an existing, fitting bench, and
-- a bench in use is never deleted.
alter table app_public.sites
  add column bench_tenant_id uuid,
  add column bench_id uuid,
  add constraint sites_bench_pair check ((bench_tenant_id is null) = (bench_id is null));
create index sites_bench on app_public.sites (bench_tenant_id, bench_id) where bench_id is not null;

create function app.check_bench_unused() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if exists (select 1 from app_public.sites s where s.bench_tenant_id = old.tenant_id and s.bench_id = old.id and s.status <> 'DELETED') then
    raise exception 'the bench still runs sites: move them to another bench first (updateSite)' using errcode = 'TPCF0';
  end if;
  return old;
end
$$;
revoke all on function app.check_bench_unused() from public;
create trigger benches_unused before delete on app_public.benches
  for each row execute function app.check_bench_unused();

-- A site's bench is ACTIVE, in the site's cluster, and the site's tenant's own or a public group's. Definer: the
-- check reads the bench whoever writes the site (a request, or a worker as the owner).
create function app.check_site_bench() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_bench record;
begin
  if new.bench_id is null then
    return new;
  end if;
  select b.status, b.cluster_id, g.public into v_bench
    from app_public.benches b join app_public.release_groups g on g.tenant_id = b.tenant_id and g.id = b.group_id
   where b.tenant_id = new.bench_tenant_id and b.id = new.bench_id;
  if not found or (new.bench_tenant_id <> new.tenant_id and not v_bench.public) then
    raise exception 'bench not found' using errcode = 'TPNF0';
  end if;
  if v_bench.status <> 'ACTIVE' then
    raise exception 'the bench is %: sites run on an ACTIVE bench', v_bench.status using errcode = 'TPIN0', column = 'bench_id';
  end if;
  if v_bench.cluster_id <> new.cluster_id then
    raise exception 'the bench is in another cluster than the site' using errcode = 'TPIN0', column = 'bench_id';
  end if;
  return new;
end
$$;
revoke all on function app.check_site_bench() from public;
create trigger sites_bench_check before insert or update of bench_tenant_id, bench_id, cluster_id on app_public.sites
  for each row execute function app.check_site_bench();

-- UPDATING: a site moving to a newer bench (site-update): back to HEALTHY, updated or restored.
alter type app_public.site_status add value if not exists 'UPDATING';
insert into app.lifecycle_transitions (entity, from_status, to_status) values
  ('site', 'HEALTHY', 'UPDATING'), ('site', 'UPDATING', 'HEALTHY');

-- 2. Site apps (seed 004 Module): an app of the site's bench installed in the site, with its lifecycle
-- REGISTERED → INSTALLING → ENABLED ⇄ DISABLED, ENABLED/DISABLED → UPDATING → back, → REMOVING → gone. A request
-- registers an app and moves it into a transitional state (the job's); the version and manifest installed are the
-- worker's findings, written with the owner role.
create type app_public.site_app_status as enum ('REGISTERED', 'INSTALLING', 'ENABLED', 'DISABLED', 'UPDATING', 'REMOVING');
create table app_public.site_apps (
  tenant_id  uuid not null,
  site_id    uuid not null,
  name       text not null check (name ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' and length(name) <= 64),
  status     app_public.site_app_status not null default 'REGISTERED',
  version    text check (version ~ '^\d+\.\d+\.\d+'),
  manifest   jsonb not null default '{}' check (jsonb_typeof(manifest) = 'object'),
  error      text,
  job_id     uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, site_id, name),
  foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade,
  foreign key (tenant_id, job_id) references app_public.jobs (tenant_id, id) on delete set null (job_id)
);
comment on table app_public.site_apps is 'The apps installed in a site (seed 004 Module): lifecycle, version and manifest as installed, the last error.';
alter table app_public.site_apps enable row level security;
alter table app_public.site_apps force row level security;
create policy site_apps_select on app_public.site_apps for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:read'))::uuid[]));
create policy site_apps_insert on app_public.site_apps for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and version is null and manifest = '{}'::jsonb);
create policy site_apps_update on app_public.site_apps for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) or tenant_id = any ((select app.permitted_tenant_ids('sites:operate'))::uuid[]));
grant select, insert on app_public.site_apps to tenantplane_app;
grant update (status, error, job_id, updated_at) on app_public.site_apps to tenantplane_app;

create function app.check_site_app_transition() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if tg_op = 'INSERT' then
    if new.status not in ('REGISTERED', 'INSTALLING') then
      raise exception 'a site app starts REGISTERED or INSTALLING, not %', new.status using errcode = 'TPIN0';
    end if;
    return new;
  end if;
  if new.status = old.status then
    return new;
  end if;
  if not ((old.status = 'REGISTERED' and new.status = 'INSTALLING')
       or (old.status = 'INSTALLING' and new.status in ('ENABLED', 'REGISTERED'))
       or (old.status = 'ENABLED' and new.status in ('DISABLED', 'UPDATING', 'REMOVING'))
       or (old.status = 'DISABLED' and new.status in ('ENABLED', 'UPDATING', 'REMOVING'))
       or (old.status = 'UPDATING' and new.status in ('ENABLED', 'DISABLED'))
       or (old.status = 'REMOVING' and new.status in ('ENABLED', 'DISABLED'))) then
    raise exception 'a site app cannot go from % to %', old.status, new.status using errcode = 'TPIN0';
  end if;
  return new;
end
$$;
create trigger site_apps_transition before insert or update of status on app_public.site_apps
  for each row execute function app.check_site_app_transition();

-- The jobs: an app's lifecycle change, and a site's update to another bench.
insert into app_private.tenant_job_queues (name, permissions) values
  ('site-app-change', '{sites:write}'),
  ('site-update', '{sites:write}');

-- Down Migration
delete from app_private.tenant_job_queues where name in ('site-app-change', 'site-update');
delete from app.lifecycle_transitions where entity = 'site' and 'UPDATING' in (from_status, to_status);
drop table app_public.site_apps;
drop function app.check_site_app_transition();
drop type app_public.site_app_status;
drop trigger sites_bench_check on app_public.sites;
drop trigger benches_unused on app_public.benches;
drop function app.check_bench_unused();
drop function app.check_site_bench();
drop index app_public.sites_bench;
alter table app_public.sites drop column bench_id, drop column bench_tenant_id;
-- UPDATING stays in app_public.site_status: PostgreSQL cannot drop an enum value.
