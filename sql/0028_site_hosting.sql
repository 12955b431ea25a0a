-- Up Migration

-- Sites as real databases (issue 10 §2): placement on a database server of the site's cluster, in the request that
-- creates the site, so "no room" is an answer to createSite and not a failed job later.

-- The active, checked database server of the site's cluster with the most free places (capacity minus its live
-- sites) gets the site; a server in MAINTENANCE, PENDING or full gets none. Placements in one cluster are serialised
-- by a lock on the cluster's row (FOR NO KEY UPDATE), so concurrent createSite calls never overfill a server. The site's isolation,
-- database name and login role are set here from its plan; the request role can write none of them itself.
create function app.place_site(p_tenant_id uuid, p_site_id uuid) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_cluster uuid;
  v_cluster_name text;
  v_isolation app_public.site_isolation;
  v_server uuid;
  v_hex text := replace(p_site_id::text, '-', '');
begin
  if not app.has_permission(p_tenant_id, 'sites:write') then
    raise exception 'site not found' using errcode = 'TPNF0';
  end if;
  select s.cluster_id, p.isolation into v_cluster, v_isolation
    from app_public.sites s join app_public.site_plans p on p.id = s.plan_id
   where s.tenant_id = p_tenant_id and s.id = p_site_id and s.database_server_id is null;
  if not found then
    raise exception 'site not found, or already placed' using errcode = 'TPNF0';
  end if;
  -- NO KEY UPDATE: placements wait for each other, while the KEY SHARE locks that inserting sites take (their foreign
  -- key to the cluster) do not wait for a placement, nor make it deadlock.
  select c.name into v_cluster_name from app_public.clusters c where c.id = v_cluster for no key update;
  select d.server_id into v_server
    from app_public.database_servers d
    join app_public.servers sv on sv.id = d.server_id
    cross join lateral (select count(*) as used from app_public.sites x where x.database_server_id = d.server_id and x.status <> 'DELETED') u
   where sv.cluster_id = v_cluster and sv.status = 'ACTIVE' and d.check_status = 'PASSED' and d.capacity > u.used
   order by d.capacity - u.used desc, d.created_at
   limit 1;
  if v_server is null then
    raise exception 'no database server of cluster "%" has room for another site: an operator must add one or raise a capacity', v_cluster_name
      using errcode = 'TPQU0';
  end if;
  update app_public.sites
     set database_server_id = v_server, isolation = v_isolation, login_role = 'site_' || v_hex,
         database_name = case when v_isolation = 'DATABASE' then 'site_' || v_hex end, updated_at = now()
   where tenant_id = p_tenant_id and id = p_site_id;
  return v_server;
end
$$;
revoke all on function app.place_site(uuid, uuid) from public;
grant execute on function app.place_site(uuid, uuid) to tenantplane_app;

-- Backups go to the storage of the site's cluster: each records which storage configuration and bucket hold it.
alter table app_public.backups
  add column storage_config_id uuid references app_public.storage_configs (id),
  add column bucket text;

-- resetSitePassword's job: applies the new stored password to the site's login role.
insert into app_private.tenant_job_queues (name, permissions) values ('site-credentials', '{sites:write}');

-- A deleted backup's archive is deleted from the storage that holds it (named in the job, since the row is gone).
create or replace function app.enqueue_backup_archive_deletion() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform app_private.insert_boss_job('backup-delete-objects', jsonb_build_object('tenantId', old.tenant_id, 'backupId', old.id)
    || case when old.storage_config_id is null then '{}'::jsonb else jsonb_build_object('storageConfigId', old.storage_config_id) end);
  return null;
end
$$;

-- Down Migration
