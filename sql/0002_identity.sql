-- Up Migration

create table app_public.users (
  id            uuid primary key default gen_random_uuid(),
  email         text not null unique check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(email) <= 254),
  name          text not null check (length(btrim(name)) between 1 and 200),
  platform_role app_public.platform_role not null default 'NONE',
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  last_login_at timestamptz
);
comment on table app_public.users is 'People who can sign in. Created by app.sign_up / app.upsert_oidc_user, never inserted directly by the app role.';
alter table app_public.users enable row level security;
alter table app_public.users force row level security;
grant select on app_public.users to tenantplane_app;
grant update (name, updated_at) on app_public.users to tenantplane_app;

-- Secrets: RLS forced with no policy for the app role, and no grant either.
create table app_private.user_secrets (
  user_id       uuid primary key references app_public.users (id) on delete cascade,
  password_hash text,
  updated_at    timestamptz not null default now()
);
alter table app_private.user_secrets enable row level security;
alter table app_private.user_secrets force row level security;

create table app_private.user_identities (
  issuer     text not null,
  subject    text not null,
  user_id    uuid not null references app_public.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (issuer, subject)
);
create index on app_private.user_identities (user_id);
alter table app_private.user_identities enable row level security;
alter table app_private.user_identities force row level security;

-- Opaque refresh tokens, stored as sha256; a family is one login. Reusing a spent token revokes the family.
create table app_private.refresh_tokens (
  id         uuid primary key default gen_random_uuid(),
  family_id  uuid not null,
  user_id    uuid not null references app_public.users (id) on delete cascade,
  token_hash bytea not null unique,
  expires_at timestamptz not null,
  used_at    timestamptz,
  revoked_at timestamptz,
  ip         text,
  user_agent text,
  created_at timestamptz not null default now()
);
create index on app_private.refresh_tokens (family_id);
create index on app_private.refresh_tokens (user_id);
alter table app_private.refresh_tokens enable row level security;
alter table app_private.refresh_tokens force row level security;

-- Signing keys for access tokens, generated on first start.
create table app_private.signing_keys (
  kid         text primary key,
  private_jwk jsonb not null,
  public_jwk  jsonb not null,
  created_at  timestamptz not null default now(),
  retired_at  timestamptz
);
alter table app_private.signing_keys enable row level security;
alter table app_private.signing_keys force row level security;

-- Authentication events (sign-up, log-in, refresh, log-out), kept for throttling and forensics.
create table app_private.auth_events (
  id         bigint generated always as identity primary key,
  user_id    uuid references app_public.users (id) on delete set null,
  email      text,
  action     text not null,
  outcome    app_public.audit_outcome not null,
  ip         text,
  user_agent text,
  created_at timestamptz not null default now()
);
create index on app_private.auth_events (email, created_at);
alter table app_private.auth_events enable row level security;
alter table app_private.auth_events force row level security;

create function app.platform_role() returns app_public.platform_role
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return coalesce((select u.platform_role from app_public.users u where u.id = app.current_user_id()), 'NONE');
end
$$;
comment on function app.platform_role() is 'The platform role of the current user (NONE without one).';

create function app.is_platform_staff() returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return app.platform_role() <> 'NONE';
end
$$;

create function app.sign_up(p_email text, p_name text, p_password_hash text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid;
begin
  insert into app_public.users (email, name) values (lower(p_email), btrim(p_name)) returning id into v_user_id;
  insert into app_private.user_secrets (user_id, password_hash) values (v_user_id, p_password_hash);
  insert into app_private.auth_events (user_id, email, action, outcome) values (v_user_id, p_email, 'signUp', 'SUCCESS');
  return v_user_id;
end
$$;
comment on function app.sign_up(text, text, text) is 'Creates a user with an argon2id hash computed by the API.';

create function app.login_lookup(p_email text) returns table (user_id uuid, password_hash text)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return query
    select u.id, s.password_hash
      from app_public.users u
      join app_private.user_secrets s on s.user_id = u.id
     where u.email = lower(p_email);
end
$$;
comment on function app.login_lookup(text) is 'The only way to read a password hash: by exact email, one row at most.';

create function app.record_auth_event(p_user_id uuid, p_email text, p_action text, p_outcome app_public.audit_outcome, p_ip text, p_user_agent text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  insert into app_private.auth_events (user_id, email, action, outcome, ip, user_agent)
  values (p_user_id, p_email, p_action, p_outcome, p_ip, p_user_agent);
end
$$;

create function app.create_session(p_user_id uuid, p_token_hash bytea, p_expires_at timestamptz, p_ip text, p_user_agent text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  insert into app_private.refresh_tokens (family_id, user_id, token_hash, expires_at, ip, user_agent)
  values (gen_random_uuid(), p_user_id, p_token_hash, p_expires_at, p_ip, p_user_agent);
  update app_public.users set last_login_at = now() where id = p_user_id;
end
$$;

-- Rotates a refresh token: returns the user id, or NULL when the token is unknown, expired, revoked or reused.
-- Reuse of a spent token revokes its whole family (the caller must commit even though it then refuses).
create function app.rotate_refresh_token(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz, p_ip text, p_user_agent text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  t app_private.refresh_tokens;
begin
  select * into t from app_private.refresh_tokens where token_hash = p_old_hash for update;
  if not found or t.revoked_at is not null or t.expires_at <= now() then
    return null;
  end if;
  if t.used_at is not null then
    update app_private.refresh_tokens set revoked_at = now() where family_id = t.family_id and revoked_at is null;
    insert into app_private.auth_events (user_id, action, outcome, ip, user_agent)
    values (t.user_id, 'refreshTokenReuse', 'FAILURE', p_ip, p_user_agent);
    return null;
  end if;
  update app_private.refresh_tokens set used_at = now() where id = t.id;
  insert into app_private.refresh_tokens (family_id, user_id, token_hash, expires_at, ip, user_agent)
  values (t.family_id, t.user_id, p_new_hash, p_expires_at, p_ip, p_user_agent);
  return t.user_id;
end
$$;

create function app.revoke_refresh_family(p_token_hash bytea) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  t app_private.refresh_tokens;
begin
  select * into t from app_private.refresh_tokens where token_hash = p_token_hash;
  if not found then
    return null;
  end if;
  update app_private.refresh_tokens set revoked_at = now() where family_id = t.family_id and revoked_at is null;
  return t.user_id;
end
$$;

create function app.upsert_oidc_user(p_issuer text, p_subject text, p_email text, p_email_verified boolean, p_name text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid;
  v_platform_role app_public.platform_role;
begin
  -- Concurrent first requests of one identity (or of one email) wait for each other instead of racing on
  -- users.email: the later one then finds the identity the first committed.
  perform pg_advisory_xact_lock(hashtextextended('oidc-identity:' || p_issuer || E'\n' || p_subject, 0));
  perform pg_advisory_xact_lock(hashtextextended('user-email:' || lower(p_email), 0));
  select i.user_id into v_user_id from app_private.user_identities i where i.issuer = p_issuer and i.subject = p_subject;
  if found then
    return v_user_id;
  end if;
  -- A verified email of an existing local account links to it; otherwise a new user (no password) is created.
  -- Platform staff accounts are never taken over through an identity provider.
  select u.id, u.platform_role into v_user_id, v_platform_role from app_public.users u where u.email = lower(p_email);
  if found and not p_email_verified then
    raise exception 'an account with this email exists; the identity provider must verify the email to link it'
      using errcode = 'TPCF0';
  end if;
  if found and v_platform_role <> 'NONE' then
    raise exception 'platform staff accounts cannot be linked to an external identity' using errcode = 'TPCF0';
  end if;
  if not found then
    insert into app_public.users (email, name) values (lower(p_email), coalesce(nullif(btrim(p_name), ''), split_part(p_email, '@', 1)))
    returning id into v_user_id;
    insert into app_private.user_secrets (user_id, password_hash) values (v_user_id, null);
  end if;
  insert into app_private.user_identities (issuer, subject, user_id) values (p_issuer, p_subject, v_user_id)
  on conflict do nothing;
  return v_user_id;
end
$$;

grant execute on function
  app.platform_role(), app.is_platform_staff(),
  app.sign_up(text, text, text), app.login_lookup(text), app.record_auth_event(uuid, text, text, app_public.audit_outcome, text, text),
  app.create_session(uuid, bytea, timestamptz, text, text),
  app.rotate_refresh_token(bytea, bytea, timestamptz, text, text), app.revoke_refresh_family(bytea),
  app.upsert_oidc_user(text, text, text, boolean, text)
to tenantplane_app;

-- Down Migration
