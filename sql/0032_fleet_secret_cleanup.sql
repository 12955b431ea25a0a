-- Up Migration

-- A fleet row's sealed secret goes with the row: a database server's admin password, a storage configuration's secret
-- key (trigger arguments: the secret's kind, the row's column holding its ref). Sealed secrets are keyed by (kind, ref), not by a foreign key (app_private.secrets holds several kinds), so a
-- trigger deletes them; otherwise a removed server's password would stay in the database, sealed but forgotten.
create function app_private.delete_fleet_secret() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  delete from app_private.secrets
   where kind = tg_argv[0] and ref = (to_jsonb(old) ->> tg_argv[1])::uuid;
  return null;
end
$$;
revoke all on function app_private.delete_fleet_secret() from public;

create trigger database_servers_delete_secret after delete on app_public.database_servers
  for each row execute function app_private.delete_fleet_secret('database-server-password', 'server_id');
create trigger storage_configs_delete_secret after delete on app_public.storage_configs
  for each row execute function app_private.delete_fleet_secret('storage-secret-key', 'id');

-- Down Migration
drop trigger storage_configs_delete_secret on app_public.storage_configs;
drop trigger database_servers_delete_secret on app_public.database_servers;
drop function app_private.delete_fleet_secret();
