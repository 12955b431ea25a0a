-- Up Migration

-- Fleet inventory (issue 10 §1): what requests by platform staff need on top of sql/0025 — check jobs a request may
-- ask for, rules the database keeps while staff edit clusters, and a platform audit log for fleet mutations.

-- 1. The default cluster stays enabled: createSite (and every raw insert, sql/0025 sites_default_cluster) puts sites
-- there when none is named.
alter table app_public.clusters add constraint clusters_default_enabled check (enabled or not is_default);

-- 2. Removing an internal network may not strand a server: every private address stays inside one of its cluster's
-- networks (servers_private_ip checks the other direction). Replacing the list inserts the new networks first.
create function app.check_cluster_network_removal() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_server record;
begin
  select s.name, s.private_ip into v_server
    from app_public.servers s
   where s.cluster_id = old.cluster_id and s.private_ip is not null and s.private_ip <<= old.cidr
     and not exists (select 1 from app_public.cluster_networks n where n.cluster_id = s.cluster_id and s.private_ip <<= n.cidr)
   limit 1;
  if found then
    raise exception 'the network % holds the private ip % of server %: move the server first', old.cidr, host(v_server.private_ip), v_server.name
      using errcode = 'TPIN0', column = 'cidr';
  end if;
  return null;
end
$$;
revoke all on function app.check_cluster_network_removal() from public;
create trigger cluster_networks_removal after delete on app_public.cluster_networks
  for each row execute function app.check_cluster_network_removal();

-- 3. Check jobs: maintenance queues (src/modules/fleet/checks.ts) run by workers as the owner role. A request never
-- reaches pg-boss; staff holding platform.fleet:write ask through this one function, which checks what it is asked
-- about, marks a database server or storage configuration CHECKING, and enqueues in the request's transaction.
--   'database-server': connect with its admin login, version >= 15, may create roles and databases, sites database
--                      created if missing; PASSED activates a PENDING server.
--   'storage':         write, read back and delete a probe object in the default bucket.
--   'server':          activate a PENDING proxy or app server (inventory only: nothing to connect to).
create function app.request_fleet_check(p_kind text, p_id uuid) returns uuid
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
comment on function app.request_fleet_check(text, uuid) is 'Platform staff (platform.fleet:write): enqueue a database-server, storage or server-activation check job.';
revoke all on function app.request_fleet_check(text, uuid) from public;
grant execute on function app.request_fleet_check(text, uuid) to tenantplane_app;

-- 4. The platform's own audit log: fleet mutations belong to no tenant, so they are recorded here (actor = the
-- current user, as in audit_events). Staff holding platform.audit:read read it; nobody changes or deletes an entry.
create table app_public.platform_audit_events (
  id          bigint generated always as identity primary key,
  actor_id    uuid references app_public.users (id) on delete set null,
  action      text not null check (length(action) between 1 and 100),
  target_type text,
  target_id   text,
  outcome     app_public.audit_outcome not null,
  details     jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
  ip          text,
  user_agent  text,
  created_at  timestamptz not null default now()
);
comment on table app_public.platform_audit_events is 'Append-only audit log of platform mutations that belong to no tenant (the fleet).';
create index platform_audit_events_recent on app_public.platform_audit_events (id desc);
alter table app_public.platform_audit_events enable row level security;
alter table app_public.platform_audit_events force row level security;
create policy platform_audit_events_select on app_public.platform_audit_events for select to tenantplane_app
  using ((select app.has_platform_permission('platform.audit:read')));
create policy platform_audit_events_insert on app_public.platform_audit_events for insert to tenantplane_app
  with check (actor_id = (select app.current_user_id()) and (select app.is_platform_staff()));
grant select, insert on app_public.platform_audit_events to tenantplane_app;

-- Down Migration
drop table app_public.platform_audit_events;
drop function app.request_fleet_check(text, uuid);
drop trigger cluster_networks_removal on app_public.cluster_networks;
drop function app.check_cluster_network_removal();
alter table app_public.clusters drop constraint clusters_default_enabled;
