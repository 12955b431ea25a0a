-- Up Migration

-- API keys for integrators (issue 9 §3). A key is `tpk_<identifier>_<secret>`: the identifier (12 characters,
-- public, shown in lists) finds the key, the secret (32 random bytes) proves it. Only HMAC-SHA256(pepper, key) is
-- stored, in app_private, where the request role cannot read it; the pepper is the server's (API_KEY_PEPPER, or
-- generated on first start into app_private.server_secrets). A request authenticated by a key runs as the key's
-- creator (app.user_id), narrowed to the key's tenant (app.tenant_id), with app.api_key_id set: the permission
-- function intersects the creator's permissions with the key's (app.current_api_key_permissions() below).

create table app_public.api_keys (
  tenant_id    uuid not null references app_public.tenants (id) on delete cascade,
  id           uuid not null default gen_random_uuid(),
  name         text not null check (length(btrim(name)) between 1 and 100),
  identifier   text not null unique check (identifier ~ '^[a-z0-9]{12}$'),
  permissions  text[] not null check (cardinality(permissions) between 1 and 64),
  created_by   uuid not null references app_public.users (id) on delete cascade,
  created_at   timestamptz not null default now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  revoked_by   uuid references app_public.users (id) on delete set null,
  last_used_at timestamptz,
  last_used_ip text check (length(last_used_ip) <= 100),
  primary key (tenant_id, id),
  check (expires_at is null or expires_at > created_at),
  check (revoked_by is null or revoked_at is not null)
);
comment on table app_public.api_keys is 'API keys of a tenant, without their secrets (app_private.api_key_secrets). Revoked, never deleted by the app role.';
create index api_keys_tenant_created on app_public.api_keys (tenant_id, created_at desc, id desc);
alter table app_public.api_keys enable row level security;
alter table app_public.api_keys force row level security;
-- The permission function as an init-plan (sql/0018): the tenants where the caller holds api_keys:read / :write.
create policy api_keys_select on app_public.api_keys for select to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('api_keys:read'))::uuid[]));
create policy api_keys_insert on app_public.api_keys for insert to tenantplane_app
  with check (tenant_id = any ((select app.permitted_tenant_ids('api_keys:write'))::uuid[]) and created_by = app.current_user_id());
create policy api_keys_update on app_public.api_keys for update to tenantplane_app
  using (tenant_id = any ((select app.permitted_tenant_ids('api_keys:write'))::uuid[]))
  with check (tenant_id = any ((select app.permitted_tenant_ids('api_keys:write'))::uuid[]));
grant select on app_public.api_keys to tenantplane_app;
grant insert (tenant_id, id, name, identifier, permissions, created_by, expires_at) on app_public.api_keys to tenantplane_app;
grant update (revoked_at, revoked_by) on app_public.api_keys to tenantplane_app;

-- The keyed hashes: no grant, RLS forced without a policy for the app role.
create table app_private.api_key_secrets (
  tenant_id   uuid not null,
  key_id      uuid not null,
  secret_hash bytea not null unique check (length(secret_hash) = 32),
  primary key (tenant_id, key_id),
  foreign key (tenant_id, key_id) references app_public.api_keys (tenant_id, id) on delete cascade
);
alter table app_private.api_key_secrets enable row level security;
alter table app_private.api_key_secrets force row level security;

-- Every ip a key was used from (first use from a new ip is an audit event of the tenant).
create table app_private.api_key_ips (
  tenant_id     uuid not null,
  key_id        uuid not null,
  ip            text not null,
  first_seen_at timestamptz not null default now(),
  primary key (tenant_id, key_id, ip),
  foreign key (tenant_id, key_id) references app_public.api_keys (tenant_id, id) on delete cascade
);
alter table app_private.api_key_ips enable row level security;
alter table app_private.api_key_ips force row level security;

-- Server-side secrets generated on first start (the API key pepper when API_KEY_PEPPER is not set).
create table app_private.server_secrets (
  name       text primary key,
  secret     bytea not null check (length(secret) >= 32),
  created_at timestamptz not null default now()
);
alter table app_private.server_secrets enable row level security;
alter table app_private.server_secrets force row level security;

-- What is wrong with the permissions a new key asks for: patterns that match no known permission, and patterns
-- matching a permission the current user (or key) does not hold in the tenant (a wildcard needs all it matches).
create function app.api_key_permission_problems(p_tenant_id uuid, p_permissions text[], out unknown text[], out not_held text[])
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  -- A pattern matches a catalogue string when it is one of the string's patterns (app.permission_patterns, sql/0018).
  select coalesce(array_agg(p order by p), '{}') into unknown
    from unnest(p_permissions) p
   where not exists (select 1 from app_public.permissions c where c.scope = 'tenant' and p = any (app.permission_patterns(c.id)));
  select coalesce(array_agg(p order by p), '{}') into not_held
    from unnest(p_permissions) p
   where exists (select 1 from app_public.permissions c
                  where c.scope = 'tenant' and p = any (app.permission_patterns(c.id)) and not app.has_permission(p_tenant_id, c.id));
end
$$;
grant execute on function app.api_key_permission_problems(uuid, text[]) to tenantplane_app;

-- Whoever inserts a key: its permissions exist and are the creator's; it starts unused and unrevoked.
create function app.check_api_key_insert() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v record;
begin
  select * into v from app.api_key_permission_problems(new.tenant_id, new.permissions);
  if cardinality(v.unknown) > 0 then
    raise exception 'unknown permission: %', array_to_string(v.unknown, ', ') using errcode = 'TPIN0';
  end if;
  if cardinality(v.not_held) > 0 then
    raise exception 'a key cannot hold more than its creator: you do not hold %', array_to_string(v.not_held, ', ') using errcode = 'TPFB0';
  end if;
  if new.expires_at is not null and new.expires_at <= now() then
    raise exception 'expiresAt must be in the future' using errcode = 'TPIN0';
  end if;
  new.created_at := now();
  new.revoked_at := null;
  new.revoked_by := null;
  new.last_used_at := null;
  new.last_used_ip := null;
  return new;
end
$$;
create trigger api_keys_check_insert before insert on app_public.api_keys
  for each row execute function app.check_api_key_insert();

-- Revocation is once and for good, stamped by the database with the current user.
create function app.check_api_key_update() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if new.revoked_at is distinct from old.revoked_at or new.revoked_by is distinct from old.revoked_by then
    if old.revoked_at is not null then
      raise exception 'this API key is already revoked' using errcode = 'TPCF0';
    end if;
    if new.revoked_at is null then
      raise exception 'revokedAt cannot be cleared' using errcode = 'TPIN0';
    end if;
    new.revoked_at := now();
    new.revoked_by := coalesce(app.current_user_id(), new.revoked_by);
  end if;
  return new;
end
$$;
create trigger api_keys_check_update before update on app_public.api_keys
  for each row execute function app.check_api_key_update();

-- Every API instance hears a revocation (its cache forgets the key, its sockets opened with it close).
create function app.notify_api_key_revoked() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform pg_notify('tenantplane_events',
    json_build_object('kind', 'apiKeyRevoked', 'tenantId', new.tenant_id::text, 'id', new.id::text)::text);
  return null;
end
$$;
create trigger api_keys_notify_revoked after update of revoked_at on app_public.api_keys
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function app.notify_api_key_revoked();

-- Stores the hash of a key inserted by the current user in this very transaction (once).
create function app.set_api_key_secret(p_tenant_id uuid, p_key_id uuid, p_hash bytea) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if not exists (select 1 from app_public.api_keys k
                  where k.tenant_id = p_tenant_id and k.id = p_key_id and k.created_by = app.current_user_id()
                    and k.created_at = now() and k.revoked_at is null) then
    raise exception 'API key not found' using errcode = 'TPNF0';
  end if;
  insert into app_private.api_key_secrets (tenant_id, key_id, secret_hash) values (p_tenant_id, p_key_id, p_hash);
end
$$;
grant execute on function app.set_api_key_secret(uuid, uuid, bytea) to tenantplane_app;

-- The only way to check a key: by identifier and keyed hash. A usable key only (not revoked, not expired).
create function app.authenticate_api_key(p_identifier text, p_hash bytea)
  returns table (id uuid, tenant_id uuid, created_by uuid, permissions text[], expires_at timestamptz, last_used_at timestamptz, last_used_ip text)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return query
    select k.id, k.tenant_id, k.created_by, k.permissions, k.expires_at, k.last_used_at, k.last_used_ip
      from app_public.api_keys k
      join app_private.api_key_secrets s on s.tenant_id = k.tenant_id and s.key_id = k.id
     where k.identifier = p_identifier and s.secret_hash = p_hash
       and k.revoked_at is null and (k.expires_at is null or k.expires_at > now());
end
$$;
grant execute on function app.authenticate_api_key(text, bytea) to tenantplane_app;

-- Records a use of a key (by its holder: identifier and hash again). The API calls it at most about once a minute
-- per key and process, and when the ip changes. The first use from an ip is an event in the tenant's audit log.
create function app.record_api_key_use(p_identifier text, p_hash bytea, p_ip text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  k record;
  v_new boolean;
begin
  select a.id, a.tenant_id, a.created_by into k from app.authenticate_api_key(p_identifier, p_hash) a;
  if k.id is null then
    return;
  end if;
  update app_public.api_keys set last_used_at = now(), last_used_ip = left(p_ip, 100)
   where tenant_id = k.tenant_id and id = k.id;
  if p_ip is null then
    return;
  end if;
  insert into app_private.api_key_ips (tenant_id, key_id, ip) values (k.tenant_id, k.id, left(p_ip, 100))
    on conflict do nothing;
  get diagnostics v_new = row_count;
  if v_new then
    insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details, ip)
    values (k.tenant_id, k.created_by, 'apiKeyUsedFromNewIp', 'ApiKey', k.id::text, 'SUCCESS',
            jsonb_build_object('apiKeyId', k.id, 'ip', left(p_ip, 100)), left(p_ip, 100));
  end if;
end
$$;
grant execute on function app.record_api_key_use(text, bytea, text) to tenantplane_app;

-- The permissions of the API key authenticating this transaction, replacing sql/0018's stub (always NULL). The
-- permission function (app.permitted_tenant_ids) grants a key request a permission only where a pattern of these
-- matches it and the creator holds it in the key's tenant:
-- NULL when no key is in play (app.api_key_id unset, empty or no uuid); the key's permission patterns when the key
-- exists, is not revoked, not expired, was created by app.user_id and belongs to app.tenant_id; otherwise '{}'.
create function app.usable_api_key_permissions() returns text[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_key text := current_setting('app.api_key_id', true);
  v_tenant text := current_setting('app.tenant_id', true);
  v_uuid text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  v_permissions text[];
begin
  if v_key is null or v_key !~ v_uuid then
    return null;
  end if;
  if v_tenant is null or v_tenant !~ v_uuid then
    return '{}';
  end if;
  select k.permissions into v_permissions
    from app_public.api_keys k
   where k.tenant_id = v_tenant::uuid and k.id = v_key::uuid
     and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())
     and k.created_by = app.current_user_id();
  return coalesce(v_permissions, '{}');
end
$$;
grant execute on function app.usable_api_key_permissions() to tenantplane_app;

-- Called by app.permitted_tenant_ids in every policy of every request: without a key (the common case) it must cost
-- nothing, so the test of the setting is LANGUAGE sql (inlined into its caller; measured 0.5 µs against 3.5 µs for
-- the definer function itself), and only a request carrying a key pays for the lookup above.
create or replace function app.current_api_key_permissions() returns text[]
  language sql stable
  as $$
    select case when current_setting('app.api_key_id', true) <> '' then app.usable_api_key_permissions() end
  $$;
comment on function app.current_api_key_permissions() is 'NULL without an API key; else the key''s permission patterns if it is usable in app.tenant_id, or ''{}''.';
grant execute on function app.current_api_key_permissions() to tenantplane_app;

-- Down Migration
create or replace function app.current_api_key_permissions() returns text[]
  language sql stable
  as $$ select null::text[] $$;
drop function app.usable_api_key_permissions();
drop function app.record_api_key_use(text, bytea, text);
drop function app.authenticate_api_key(text, bytea);
drop function app.set_api_key_secret(uuid, uuid, bytea);
drop table app_private.server_secrets;
drop table app_private.api_key_ips;
drop table app_private.api_key_secrets;
drop table app_public.api_keys;
drop function app.notify_api_key_revoked();
drop function app.check_api_key_update();
drop function app.check_api_key_insert();
drop function app.api_key_permission_problems(uuid, text[]);
