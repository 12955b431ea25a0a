-- Up Migration

-- The fleet (issue 10, seed 001): clusters, their servers (proxy | app | database), the database servers sites live
-- on, one storage configuration per cluster, and site plans. Fleet tables are platform-wide (no tenant_id): staff with
-- platform.fleet:read see them, platform.fleet:write manage them; tenants see clusters by name and the site plans,
-- never hosts, addresses or credentials (their own sites' connection details come from app.site_connection()).

insert into app_public.permissions (id, scope, description) values
  ('platform.fleet:read', 'platform', 'See clusters, servers, database servers, storage configurations and where each site lives.'),
  ('platform.fleet:write', 'platform', 'Manage clusters, servers, database servers, storage configurations and site plans; move sites between servers.');
update app_public.platform_roles set permissions = permissions || '{platform.fleet:read}' where role in ('VIEWER', 'OPERATOR');

-- 1. Clusters. The default one exists from the first start; its internal networks are the private ranges, so a
-- worker on this machine (loopback or a private address) registers into it without configuration.
create table app_public.clusters (
  id         uuid primary key default gen_random_uuid(),
  name       text not null unique check (name ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' and name !~ '--'),
  title      text not null check (length(btrim(title)) between 1 and 100),
  region     text not null default 'local' check (region ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  enabled    boolean not null default true,
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app_public.clusters is 'Groups of servers (seed 001 Cluster); one is the default, where sites go when createSite names none.';
create unique index clusters_one_default on app_public.clusters (is_default) where is_default;
alter table app_public.clusters enable row level security;
alter table app_public.clusters force row level security;
-- Any signed-in user sees enabled clusters (to pick one for a site); staff see all.
create policy clusters_select on app_public.clusters for select to tenantplane_app
  using ((enabled and app.current_user_id() is not null) or (select app.has_platform_permission('platform.fleet:read')));
create policy clusters_insert on app_public.clusters for insert to tenantplane_app
  with check ((select app.has_platform_permission('platform.fleet:write')));
create policy clusters_update on app_public.clusters for update to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')));
grant select, insert on app_public.clusters to tenantplane_app;
grant update (title, region, enabled, updated_at) on app_public.clusters to tenantplane_app;

-- A cluster's internal networks (servers' private addresses lie inside one): fleet internals, staff only.
create table app_public.cluster_networks (
  cluster_id uuid not null references app_public.clusters (id) on delete cascade,
  cidr       inet not null check (cidr = network(cidr)),
  primary key (cluster_id, cidr)
);
alter table app_public.cluster_networks enable row level security;
alter table app_public.cluster_networks force row level security;
create policy cluster_networks_select on app_public.cluster_networks for select to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:read')));
create policy cluster_networks_write on app_public.cluster_networks for all to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')))
  with check ((select app.has_platform_permission('platform.fleet:write')));
grant select, insert, delete on app_public.cluster_networks to tenantplane_app;

with c as (
  insert into app_public.clusters (name, title, region, is_default) values ('default', 'Default cluster', 'local', true) returning id
)
insert into app_public.cluster_networks (cluster_id, cidr)
select c.id, n::inet from c, unnest(array['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '::1/128', 'fc00::/7']) n;

-- 2. Servers (seed 001 Server). status PENDING → ACTIVE ⇄ MAINTENANCE, through the lifecycle table of sql/0016.
-- container_prefix: the Docker container group of the server, kebab-case ending in -c<N> (seed 001's
-- "erp-saas-cloud-c16"). App servers are worker processes: they register themselves and heartbeat.
create type app_public.server_type as enum ('PROXY', 'APP', 'DATABASE');
create type app_public.server_status as enum ('PENDING', 'ACTIVE', 'MAINTENANCE');
create table app_public.servers (
  id                uuid primary key default gen_random_uuid(),
  cluster_id        uuid not null references app_public.clusters (id) on delete restrict,
  name              text not null unique check (name ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  hostname          text not null check (length(hostname) <= 253 and hostname ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$'),
  ip                inet not null check (masklen(ip) = case when family(ip) = 4 then 32 else 128 end),
  private_ip        inet check (masklen(private_ip) = case when family(private_ip) = 4 then 32 else 128 end),
  type              app_public.server_type not null,
  status            app_public.server_status not null default 'PENDING',
  container_prefix  text check (container_prefix ~ '^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-c[0-9]{1,4}$'),
  docker_socket     text check (docker_socket ~ '^/[^\0]*$' and length(docker_socket) <= 4096),
  last_heartbeat_at timestamptz,
  process           jsonb check (process is null or jsonb_typeof(process) = 'object'),
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  unique (id, type)
);
comment on table app_public.servers is 'Proxy, app (worker) and database servers of a cluster (seed 001 Server).';
create index servers_cluster_status on app_public.servers (cluster_id, status);
alter table app_public.servers enable row level security;
alter table app_public.servers force row level security;
create policy servers_select on app_public.servers for select to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:read')));
create policy servers_insert on app_public.servers for insert to tenantplane_app
  with check ((select app.has_platform_permission('platform.fleet:write')));
create policy servers_update on app_public.servers for update to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')));
grant select, insert on app_public.servers to tenantplane_app;
grant update (hostname, ip, private_ip, status, container_prefix, docker_socket, updated_at) on app_public.servers to tenantplane_app;

-- A server's private address lies inside one of its cluster's internal networks.
create function app.check_server_private_ip() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if new.private_ip is not null
     and not exists (select 1 from app_public.cluster_networks n where n.cluster_id = new.cluster_id and new.private_ip <<= n.cidr) then
    raise exception 'the private ip % is outside the internal networks of its cluster', host(new.private_ip)
      using errcode = 'TPIN0', column = 'private_ip';
  end if;
  return new;
end
$$;
create trigger servers_private_ip before insert or update of private_ip, cluster_id on app_public.servers
  for each row execute function app.check_server_private_ip();

alter table app.lifecycle_transitions drop constraint lifecycle_transitions_entity_check;
alter table app.lifecycle_transitions add constraint lifecycle_transitions_entity_check
  check (entity in ('site', 'backup', 'job', 'document', 'upload', 'tenant', 'server'));
insert into app.lifecycle_transitions (entity, from_status, to_status) values
  ('server', null, 'PENDING'),
  ('server', 'ACTIVE', 'MAINTENANCE'), ('server', 'MAINTENANCE', 'ACTIVE');
-- PENDING → ACTIVE: an app server's registration, or a database server's passed check (maintenance code, owner role).
insert into app.lifecycle_transitions (entity, from_status, to_status, made_by) values ('server', 'PENDING', 'ACTIVE', 'maintenance');
create trigger servers_lifecycle_insert before insert on app_public.servers
  for each row execute function app.enforce_lifecycle('server');
create trigger servers_lifecycle before update of status on app_public.servers
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('server');

-- 3. Database servers: a server of type DATABASE that is a real PostgreSQL endpoint. Its admin password is sealed in
-- app_private.secrets (kind 'database-server-password'). `managed`: the deployment's own PostgreSQL, registered and
-- refreshed from DATABASE_URL (or the embedded server) at every start. Capacity is a number of sites.
create type app_public.fleet_check_status as enum ('UNCHECKED', 'CHECKING', 'PASSED', 'FAILED');
create table app_public.database_servers (
  server_id      uuid primary key,
  server_type    app_public.server_type not null default 'DATABASE' check (server_type = 'DATABASE'),
  host           text not null check (length(host) between 1 and 253),
  port           integer not null default 5432 check (port between 1 and 65535),
  admin_user     text not null check (admin_user ~ '^[A-Za-z_][A-Za-z0-9_$-]{0,62}$'),
  sites_database text not null default 'tenantplane_sites' check (sites_database ~ '^[a-z_][a-z0-9_]{0,62}$'),
  ssl_mode       text not null default 'disable' check (ssl_mode in ('disable', 'prefer', 'require', 'verify-full')),
  capacity       integer not null default 100 check (capacity >= 0),
  managed        boolean not null default false,
  check_status   app_public.fleet_check_status not null default 'UNCHECKED',
  check_error    text,
  checked_at     timestamptz,
  version        text,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  unique (server_id, server_type),
  foreign key (server_id, server_type) references app_public.servers (id, type) on delete cascade
);
comment on table app_public.database_servers is 'PostgreSQL endpoints sites live on: one sites database (a schema per site) plus the databases of DATABASE-isolated sites.';
create unique index database_servers_one_managed on app_public.database_servers (managed) where managed;
alter table app_public.database_servers enable row level security;
alter table app_public.database_servers force row level security;
create policy database_servers_select on app_public.database_servers for select to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:read')));
create policy database_servers_insert on app_public.database_servers for insert to tenantplane_app
  with check ((select app.has_platform_permission('platform.fleet:write')) and not managed);
create policy database_servers_update on app_public.database_servers for update to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')));
grant select on app_public.database_servers to tenantplane_app;
grant insert (server_id, host, port, admin_user, sites_database, ssl_mode, capacity) on app_public.database_servers to tenantplane_app;
grant update (host, port, admin_user, ssl_mode, capacity, check_status, check_error, updated_at) on app_public.database_servers to tenantplane_app;

-- 4. Storage configurations (seed 001): one per cluster; the secret key is sealed in app_private.secrets (kind
-- 'storage-secret-key'). `managed`: the deployment's own S3 (embedded or S3_*), refreshed at every start.
create table app_public.storage_configs (
  id             uuid primary key default gen_random_uuid(),
  cluster_id     uuid not null unique references app_public.clusters (id) on delete restrict,
  endpoint       text not null check (endpoint ~ '^https?://'),
  region         text not null default 'us-east-1' check (region ~ '^[a-z0-9-]{1,32}$'),
  access_key_id  text not null check (length(access_key_id) between 1 and 256),
  default_bucket text not null check (default_bucket ~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'),
  managed        boolean not null default false,
  check_status   app_public.fleet_check_status not null default 'UNCHECKED',
  check_error    text,
  checked_at     timestamptz,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);
comment on table app_public.storage_configs is 'The S3-compatible storage of a cluster (seed 001 Storage Configuration): where its sites'' backups and files go.';
alter table app_public.storage_configs enable row level security;
alter table app_public.storage_configs force row level security;
create policy storage_configs_select on app_public.storage_configs for select to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:read')));
create policy storage_configs_insert on app_public.storage_configs for insert to tenantplane_app
  with check ((select app.has_platform_permission('platform.fleet:write')) and not managed);
create policy storage_configs_update on app_public.storage_configs for update to tenantplane_app
  using ((select app.has_platform_permission('platform.fleet:write')) and not managed);
grant select on app_public.storage_configs to tenantplane_app;
grant insert (id, cluster_id, endpoint, region, access_key_id, default_bucket) on app_public.storage_configs to tenantplane_app;
grant update (endpoint, region, access_key_id, default_bucket, check_status, check_error, updated_at) on app_public.storage_configs to tenantplane_app;

-- 5. Site plans (seed 001 Site Plan): price, storage and connection limits, features, and the isolation level.
create type app_public.site_isolation as enum ('SCHEMA', 'DATABASE');
create table app_public.site_plans (
  id                   text primary key check (id ~ '^[a-z][a-z0-9-]{1,30}$'),
  title                text not null check (length(btrim(title)) between 1 and 100),
  price_cents          integer not null default 0 check (price_cents >= 0),
  currency             text not null default 'EUR' check (currency ~ '^[A-Z]{3}$'),
  storage_limit_bytes  bigint not null check (storage_limit_bytes > 0),
  connection_limit     integer not null check (connection_limit between 1 and 1000),
  statement_timeout_ms integer not null default 30000 check (statement_timeout_ms between 100 and 3600000),
  features             text[] not null default '{}',
  isolation            app_public.site_isolation not null default 'SCHEMA',
  is_default           boolean not null default false,
  created_at           timestamptz not null default now()
);
comment on table app_public.site_plans is 'Plans of sites: limits a site is measured against and its isolation level; readable by everyone.';
create unique index site_plans_one_default on app_public.site_plans (is_default) where is_default;
insert into app_public.site_plans (id, title, price_cents, currency, storage_limit_bytes, connection_limit, statement_timeout_ms, features, isolation, is_default) values
  ('site-free', 'Free', 0, 'EUR', 104857600, 5, 15000, '{daily-backups}', 'SCHEMA', true),
  ('site-pro', 'Pro', 2500, 'EUR', 10737418240, 50, 60000, '{daily-backups,restore}', 'SCHEMA', false),
  ('site-dedicated', 'Dedicated', 9900, 'EUR', 107374182400, 200, 300000, '{daily-backups,restore,own-database}', 'DATABASE', false);
alter table app_public.site_plans enable row level security;
alter table app_public.site_plans force row level security;
create policy site_plans_select on app_public.site_plans for select to tenantplane_app using (true);
grant select on app_public.site_plans to tenantplane_app;

-- 6. Where each site lives. cluster and plan are chosen at createSite; the database server when provisioning places
-- it (the active one of its cluster with the most room); isolation follows the plan unless a move is under way.
alter table app_public.sites
  add column cluster_id uuid references app_public.clusters (id),
  add column plan_id text not null default 'site-free' references app_public.site_plans (id),
  add column database_server_id uuid references app_public.database_servers (server_id),
  add column isolation app_public.site_isolation not null default 'SCHEMA',
  add column database_name text check (database_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  add column login_role text unique check (login_role ~ '^site_[0-9a-f]{32}$'),
  add column over_storage_limit boolean not null default false,
  add column measured_at timestamptz;
update app_public.sites set cluster_id = (select id from app_public.clusters where is_default);
alter table app_public.sites alter column cluster_id set not null;
-- A site created without a cluster goes to the default one (createSite names it; raw inserts, seeds and old
-- callers need not). Runs before the NOT NULL check.
create function app.sites_default_cluster() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if new.cluster_id is null then
    new.cluster_id := (select c.id from app_public.clusters c where c.is_default);
  end if;
  return new;
end
$$;
create trigger sites_default_cluster before insert on app_public.sites
  for each row execute function app.sites_default_cluster();
create index sites_database_server on app_public.sites (database_server_id) where database_server_id is not null;
-- Placement, isolation, credentials and measurement are written by jobs (owner role), never by a request: a request
-- creates a site unplaced (Prisma sends static column defaults itself, so this is a policy, not column grants), and
-- may change its plan only (changeSitePlan).
drop policy sites_insert on app_public.sites;
create policy sites_insert on app_public.sites for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('sites:write'))::uuid[]) and created_by = (select app.current_user_id())
              and database_server_id is null and database_name is null and login_role is null and not over_storage_limit
              and isolation = 'SCHEMA' and measured_at is null);
grant update (plan_id) on app_public.sites to tenantplane_app;

-- Where a tenant's app connects: the site's login role on its database server. SECURITY DEFINER because tenants never
-- read database_servers; it answers only for a site the caller may read (sites:read), and nothing else of the server.
create function app.site_connection(p_tenant_id uuid, p_site_id uuid,
                                    out host text, out port integer, out database text, out "user" text, out ssl_mode text)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not app.has_permission(p_tenant_id, 'sites:read') then
    return;
  end if;
  select d.host, d.port, coalesce(s.database_name, d.sites_database), s.login_role, d.ssl_mode
    into host, port, database, "user", ssl_mode
    from app_public.sites s join app_public.database_servers d on d.server_id = s.database_server_id
   where s.tenant_id = p_tenant_id and s.id = p_site_id and s.login_role is not null;
end
$$;
revoke all on function app.site_connection(uuid, uuid) from public;
grant execute on function app.site_connection(uuid, uuid) to tenantplane_app;

-- Down Migration
