-- Up Migration

-- A suspended or deleted tenant takes no new members: the permission function refuses every write there, but
-- app.accept_invitation runs as its definer (it must insert a membership the invitee could not), so the rule is
-- the table's, whoever inserts.
create function app.memberships_only_in_active_tenants() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if exists (select 1 from app_public.tenants t where t.id = new.tenant_id and t.status <> 'ACTIVE') then
    raise exception 'this tenant is not active: nobody can join it until it is reactivated' using errcode = 'TPFB0';
  end if;
  return new;
end
$$;
create trigger memberships_only_in_active_tenants before insert on app_public.memberships
  for each row execute function app.memberships_only_in_active_tenants();

-- Down Migration
