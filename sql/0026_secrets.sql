-- Up Migration

-- Secrets at rest (issue 10 §3): one envelope scheme for site passwords, database server passwords and storage keys
-- (src/secrets/envelope.ts). Each value is sealed in TypeScript as
--   tpsec:v1:<key id>:<the data key wrapped by the master key>:<the value encrypted with the data key>
-- (AES-256-GCM both times, bound to `<kind>:<ref>`), so the database only ever holds ciphertext. The master key comes
-- from SECRETS_KEY (then only its id is recorded here) or is generated on first start and kept here. Neither table
-- is reachable by the request role: no grant, RLS forced without a policy for it. Requests store a value they sealed
-- through the two definer functions below, which check the caller's permission; nothing lets a request read one.

-- Master keys: generated ones with their material, SECRETS_KEY ones by id only (key null). A value's key id must be
-- a row here (the foreign key below), so a key is never deleted while a value needs it, and a process still sealing
-- under a key that a rotation deleted fails loudly instead of storing what nobody could open.
create table app_private.secret_keys (
  id         text primary key check (id ~ '^[0-9a-f]{12}$'),
  source     text not null check (source in ('generated', 'env')),
  key        bytea check (length(key) = 32),
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  check ((source = 'generated') = (key is not null))
);
comment on table app_private.secret_keys is 'Master keys of sealed secrets (src/secrets/envelope.ts): generated ones with their material, SECRETS_KEY ones by id only.';
-- One current generated key: concurrent first starts insert … on conflict do nothing, then all read the winner.
create unique index secret_keys_one_current on app_private.secret_keys ((true)) where source = 'generated' and retired_at is null;
alter table app_private.secret_keys enable row level security;
alter table app_private.secret_keys force row level security;

create table app_private.secrets (
  kind       text not null check (kind in ('site-password', 'database-server-password', 'storage-secret-key', 'registry-password')),
  ref        uuid not null,
  tenant_id  uuid references app_public.tenants (id) on delete cascade,
  key_id     text not null references app_private.secret_keys (id),
  sealed     text not null check (length(sealed) <= 8192 and sealed ~ '^tpsec:v1:[0-9a-f]{12}:[A-Za-z0-9_-]{80}:[A-Za-z0-9_-]{38,}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (kind, ref),
  check (key_id = split_part(sealed, ':', 3)),
  -- A site's password belongs to the site's tenant; fleet secrets to no tenant.
  check ((kind = 'site-password') = (tenant_id is not null))
);
comment on table app_private.secrets is 'Sealed secrets (AES-256-GCM envelopes bound to kind:ref); plaintext never reaches the database.';
create index secrets_key on app_private.secrets (key_id);
create index secrets_tenant on app_private.secrets (tenant_id) where tenant_id is not null;
alter table app_private.secrets enable row level security;
alter table app_private.secrets force row level security;

-- Upsert of a sealed value for the definer functions below (not granted: they check the caller first). A value is
-- never moved to another tenant: a ref held by another tenant's row is refused, not overwritten.
create function app_private.store_secret(p_kind text, p_ref uuid, p_tenant_id uuid, p_sealed text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_key_id text := split_part(p_sealed, ':', 3);
  v_stored int;
begin
  if p_sealed is null or p_sealed !~ '^tpsec:v1:[0-9a-f]{12}:[A-Za-z0-9_-]{80}:[A-Za-z0-9_-]{38,}$' or length(p_sealed) > 8192 then
    raise exception 'not a sealed secret' using errcode = 'TPIN0';
  end if;
  if not exists (select 1 from app_private.secret_keys k where k.id = v_key_id) then
    -- The process sealed under a key a rotation has since deleted: it reloads its keys, the client tries again.
    raise exception 'the secrets key was rotated meanwhile: try again' using errcode = 'TPCF0';
  end if;
  insert into app_private.secrets as s (kind, ref, tenant_id, key_id, sealed)
  values (p_kind, p_ref, p_tenant_id, v_key_id, p_sealed)
  on conflict (kind, ref) do update
    set sealed = excluded.sealed, key_id = excluded.key_id, updated_at = now()
    where s.tenant_id is not distinct from excluded.tenant_id;
  get diagnostics v_stored = row_count;
  if v_stored = 0 then
    raise exception 'not found' using errcode = 'TPNF0';
  end if;
end
$$;
revoke execute on function app_private.store_secret(text, uuid, uuid, text) from public;

-- A request stores the password it generated for a site of a tenant where the caller may write sites.
create function app.put_site_secret(p_tenant_id uuid, p_site_id uuid, p_sealed text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if p_tenant_id is null or not app.has_permission(p_tenant_id, 'sites:write') then
    raise exception 'you may not set a site password in this tenant (sites:write)' using errcode = 'TPFB0';
  end if;
  -- Another tenant's site answers like a missing one.
  if p_site_id is null or not exists (select 1 from app_public.sites s where s.tenant_id = p_tenant_id and s.id = p_site_id and s.status <> 'DELETED') then
    raise exception 'site not found' using errcode = 'TPNF0';
  end if;
  perform app_private.store_secret('site-password', p_site_id, p_tenant_id, p_sealed);
end
$$;
revoke execute on function app.put_site_secret(uuid, uuid, text) from public;
grant execute on function app.put_site_secret(uuid, uuid, text) to tenantplane_app;

-- Platform staff store a fleet secret (database server password, storage secret key, registry password).
create function app.put_fleet_secret(p_kind text, p_ref uuid, p_sealed text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not app.has_platform_permission('platform.fleet:write') then
    raise exception 'you may not manage the fleet (platform.fleet:write)' using errcode = 'TPFB0';
  end if;
  if p_kind is null or p_kind not in ('database-server-password', 'storage-secret-key', 'registry-password') then
    raise exception 'unknown fleet secret kind: %', coalesce(p_kind, 'null') using errcode = 'TPIN0';
  end if;
  if p_ref is null then
    raise exception 'a fleet secret needs the id of what it belongs to' using errcode = 'TPIN0';
  end if;
  perform app_private.store_secret(p_kind, p_ref, null, p_sealed);
end
$$;
revoke execute on function app.put_fleet_secret(text, uuid, text) from public;
grant execute on function app.put_fleet_secret(text, uuid, text) to tenantplane_app;

-- Down Migration
drop function app.put_fleet_secret(text, uuid, text);
drop function app.put_site_secret(uuid, uuid, text);
drop function app_private.store_secret(text, uuid, uuid, text);
drop table app_private.secrets;
drop table app_private.secret_keys;
