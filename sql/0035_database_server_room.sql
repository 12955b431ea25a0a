-- Up Migration

-- How many places of a database server are taken: its sites, of every tenant, that are not DELETED. One definition
-- for placement (app.place_site) and for a move's check of the target (src/modules/sites/move.ts), which counted the
-- same thing in two places. Called by those as the owner (place_site is SECURITY DEFINER; moves run in workers):
-- the request role gets no EXECUTE.
create function app.database_server_sites(p_server_id uuid) returns integer
  language sql stable
  set search_path = pg_catalog, pg_temp
  as $$
  select count(*)::int from app_public.sites x where x.database_server_id = p_server_id and x.status <> 'DELETED'
$$;
comment on function app.database_server_sites(uuid) is 'The taken places of a database server: its sites of every tenant that are not DELETED.';
revoke all on function app.database_server_sites(uuid) from public;

create or replace function app.place_site(p_tenant_id uuid, p_site_id uuid) returns uuid
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
    cross join lateral (select app.database_server_sites(d.server_id) as used) u
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

-- Down Migration
create or replace function app.place_site(p_tenant_id uuid, p_site_id uuid) returns uuid
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
drop function app.database_server_sites(uuid);
