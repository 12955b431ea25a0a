-- Up Migration

-- Issue 9 §4–5: sessions a user can see and end, password change, profile fields, deactivation by platform staff,
-- and the user's own authentication events with their retention.

-- 1. Users: optional username (unique whatever its case), first and last name, deactivation.
-- `name` stays the display name (required, shown to other members); first_name and last_name are optional parts of
-- it for integrators that need them (seed 002), never derived from or into `name`.
alter table app_public.users
  add column username       text,
  add column first_name     text,
  add column last_name      text,
  add column is_active      boolean not null default true,
  add column deactivated_at timestamptz;
alter table app_public.users
  add constraint users_username_format
    check (username ~ '^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,30})[A-Za-z0-9]$' and username !~ '[._-]{2}'),
  add constraint users_first_name_length check (length(btrim(first_name)) between 1 and 100 and first_name = btrim(first_name)),
  add constraint users_last_name_length check (length(btrim(last_name)) between 1 and 100 and last_name = btrim(last_name)),
  add constraint users_deactivated_at check ((is_active and deactivated_at is null) or (not is_active and deactivated_at is not null));
create unique index users_username_lower on app_public.users (lower(username));
comment on column app_public.users.name is 'The display name (required). first_name and last_name are optional parts, kept apart.';
comment on column app_public.users.username is 'Optional, unique case-insensitively (users_username_lower); 3-32 of letters, digits, . _ -; no @, so it never reads as an email.';
comment on column app_public.users.is_active is 'False once platform staff deactivated the user (app.set_user_active): no sign-in, no token, no socket.';
-- The user edits their own profile (users_update_self); is_active is changed only through app.set_user_active.
grant update (username, first_name, last_name) on app_public.users to tenantplane_app;

-- 2. Authentication events: who acted (staff deactivating someone), which session, and a detail; read by their
-- user newest first (user_id, id desc), purged by age (created_at).
alter table app_private.auth_events
  add column actor_id   uuid references app_public.users (id) on delete set null,
  add column session_id uuid,
  add column detail     text;
create index auth_events_user_id_id on app_private.auth_events (user_id, id desc);
create index auth_events_created_at on app_private.auth_events (created_at);
-- Why a session ended. `logOut` comes from the session's own holder, who discards its access token: its sockets
-- close (sql/0013) but its access token lapses at its expiry, as before. Every other reason (another session ending
-- it, a password change, a deactivation, a spent refresh token reused) also refuses its access tokens at once.
alter table app_private.refresh_tokens
  add column revoked_reason text check (revoked_reason in ('logOut', 'revoked', 'passwordChanged', 'deactivated', 'reuse'));
create index refresh_tokens_user_active on app_private.refresh_tokens (user_id) where revoked_at is null and used_at is null;
-- What each API process loads at start and after a lost LISTEN connection (src/auth/revocations.ts): sessions revoked
-- within an access token's lifetime, and the deactivated users.
create index refresh_tokens_revoked_at on app_private.refresh_tokens (revoked_at) where revoked_at is not null;
create index users_inactive on app_public.users (id) where not is_active;

-- The revocation notice says why (src/auth/revocations.ts refuses access tokens for every reason but logOut).
create or replace function app.notify_session_revoked() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform pg_notify('tenantplane_events',
    json_build_object('kind', 'sessionRevoked', 'tenantId', '', 'id', new.family_id::text, 'reason', coalesce(new.revoked_reason, 'revoked'))::text);
  return null;
end
$$;

create or replace function app.record_auth_event(p_user_id uuid, p_email text, p_action text, p_outcome app_public.audit_outcome, p_ip text, p_user_agent text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  insert into app_private.auth_events (user_id, email, action, outcome, ip, user_agent, session_id)
  values (p_user_id, p_email, p_action, p_outcome, p_ip, p_user_agent, nullif(current_setting('app.session_id', true), '')::uuid);
end
$$;

-- A failed attempt with a detail (e.g. 'account deactivated'), recorded like record_auth_event.
create function app.record_auth_failure(p_user_id uuid, p_email text, p_action text, p_detail text, p_ip text, p_user_agent text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  insert into app_private.auth_events (user_id, email, action, outcome, ip, user_agent, detail)
  values (p_user_id, p_email, p_action, 'FAILURE', p_ip, p_user_agent, left(p_detail, 200));
end
$$;

-- 3. Sign-in of a deactivated user: the lookup says so (the API answers exactly as for a wrong password, after the
-- same argon2 work); a session is never created for one (also under a race with the deactivation: the user row is
-- share-locked, so a deactivation either waits for this login, then revokes its session, or is seen by it).
drop function app.login_lookup(text);
create function app.login_lookup(p_login text) returns table (user_id uuid, password_hash text, active boolean, email text)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  -- An email has an @, a username never has one (users_username_format).
  if strpos(p_login, '@') > 0 then
    return query
      select u.id, s.password_hash, u.is_active, u.email
        from app_public.users u join app_private.user_secrets s on s.user_id = u.id
       where u.email = lower(p_login);
  else
    return query
      select u.id, s.password_hash, u.is_active, u.email
        from app_public.users u join app_private.user_secrets s on s.user_id = u.id
       where lower(u.username) = lower(p_login);
  end if;
end
$$;
comment on function app.login_lookup(text) is 'The only way to read a password hash: by exact email or username (any case), one row at most, with whether the account is active and its email (the throttling key).';
grant execute on function app.login_lookup(text) to tenantplane_app;

create or replace function app.create_session(p_user_id uuid, p_token_hash bytea, p_expires_at timestamptz, p_ip text, p_user_agent text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_family uuid;
begin
  perform 1 from app_public.users where id = p_user_id and is_active for share;
  if not found then
    raise exception 'this account cannot sign in' using errcode = 'TPUA0';
  end if;
  insert into app_private.refresh_tokens (family_id, user_id, token_hash, expires_at, ip, user_agent)
  values (gen_random_uuid(), p_user_id, p_token_hash, p_expires_at, p_ip, p_user_agent)
  returning family_id into v_family;
  -- The new session, for the logIn event recorded next in this transaction (app.record_auth_event).
  perform set_config('app.session_id', v_family::text, true);
  update app_public.users set last_login_at = now() where id = p_user_id;
end
$$;

-- Refresh refused for a deactivated user (their families are revoked too; the share lock closes the race).
create or replace function app.rotate_refresh_token(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz, p_ip text, p_user_agent text) returns uuid
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
    update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'reuse' where family_id = t.family_id and revoked_at is null;
    insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, session_id)
    values (t.user_id, 'refreshTokenReuse', 'FAILURE', p_ip, p_user_agent, t.family_id);
    return null;
  end if;
  perform 1 from app_public.users where id = t.user_id and is_active for share;
  if not found then
    insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, session_id, detail)
    values (t.user_id, 'refreshSession', 'FAILURE', p_ip, p_user_agent, t.family_id, 'account deactivated');
    return null;
  end if;
  update app_private.refresh_tokens set used_at = now() where id = t.id;
  insert into app_private.refresh_tokens (family_id, user_id, token_hash, expires_at, ip, user_agent)
  values (t.family_id, t.user_id, p_new_hash, p_expires_at, p_ip, p_user_agent);
  return t.user_id;
end
$$;

-- logOut: also says which session ended (the family), for the event and the API's revocation cache.
create or replace function app.revoke_refresh_family(p_token_hash bytea) returns uuid
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
  update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'logOut' where family_id = t.family_id and revoked_at is null;
  perform set_config('app.session_id', t.family_id::text, true);
  return t.user_id;
end
$$;

-- 4. Sessions. A session is a refresh-token family that still has a live head: its newest token, unused, unrevoked
-- and unexpired. Created = the family's first token; last used, expiry, ip and user agent = its head (the latest
-- sign-in or refresh). Only the current user's.
create function app.current_user_sessions() returns table (id uuid, user_agent text, ip text, created_at timestamptz, last_used_at timestamptz, expires_at timestamptz)
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
  select h.family_id, h.user_agent, h.ip,
         (select min(f.created_at) from app_private.refresh_tokens f where f.family_id = h.family_id),
         h.created_at, h.expires_at
    from app_private.refresh_tokens h
   where h.user_id = app.current_user_id() and h.revoked_at is null and h.used_at is null and h.expires_at > now()
   order by h.created_at desc, h.family_id
$$;

-- Ends one of the current user's live sessions; false when it is no live session of theirs (another user's: false).
create function app.revoke_session(p_session uuid, p_ip text, p_user_agent text) returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user uuid := app.current_user_id();
begin
  if v_user is null or not exists (
    select 1 from app_private.refresh_tokens
     where family_id = p_session and user_id = v_user and revoked_at is null and used_at is null and expires_at > now()
  ) then
    return false;
  end if;
  update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'revoked' where family_id = p_session and user_id = v_user and revoked_at is null;
  insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, session_id, actor_id)
  values (v_user, 'sessionRevoked', 'SUCCESS', p_ip, p_user_agent, p_session, v_user);
  return true;
end
$$;

-- Ends every live session of the current user but p_keep (NULL: all of them); answers the sessions ended.
create function app.revoke_other_sessions(p_keep uuid, p_ip text, p_user_agent text) returns setof uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user uuid := app.current_user_id();
  v_sessions uuid[];
begin
  if v_user is null then
    return;
  end if;
  select coalesce(array_agg(distinct family_id), '{}') into v_sessions
    from app_private.refresh_tokens
   where user_id = v_user and revoked_at is null and used_at is null and expires_at > now() and family_id is distinct from p_keep;
  update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'revoked'
   where user_id = v_user and revoked_at is null and family_id is distinct from p_keep;
  insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, session_id, actor_id)
  select v_user, 'sessionRevoked', 'SUCCESS', p_ip, p_user_agent, s, v_user from unnest(v_sessions) s;
  return query select unnest(v_sessions);
end
$$;

-- 5. Password change: the API verifies the current password against this hash (the current user's only).
create function app.current_user_password_hash() returns text
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
  select s.password_hash from app_private.user_secrets s join app_public.users u on u.id = s.user_id
   where s.user_id = app.current_user_id() and u.is_active
$$;

-- Guessing the current password with a stolen access token: more than 10 failed changePassword attempts of the
-- current user in 15 minutes refuse every further one (like app.login_throttled for logIn). Bounded count.
create function app.password_change_throttled() returns boolean
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
  select count(*) > 10 from (
    select 1 from app_private.auth_events e
     where e.user_id = app.current_user_id() and e.action = 'changePassword' and e.outcome = 'FAILURE'
       and e.created_at > now() - interval '15 minutes'
     order by e.user_id, e.id desc
     limit 11
  ) recent
$$;

-- Sets the current user's new hash and ends every other session (p_keep: the one the request came from).
create function app.change_password(p_new_hash text, p_keep uuid, p_ip text, p_user_agent text) returns setof uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user uuid := app.current_user_id();
  v_sessions uuid[];
begin
  update app_private.user_secrets set password_hash = p_new_hash, updated_at = now() where user_id = v_user;
  if not found then
    raise exception 'not signed in' using errcode = 'TPUA0';
  end if;
  select coalesce(array_agg(distinct family_id), '{}') into v_sessions
    from app_private.refresh_tokens where user_id = v_user and revoked_at is null and family_id is distinct from p_keep;
  update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'passwordChanged'
   where user_id = v_user and revoked_at is null and family_id is distinct from p_keep;
  insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, session_id, actor_id, detail)
  values (v_user, 'passwordChanged', 'SUCCESS', p_ip, p_user_agent, p_keep, v_user,
          cardinality(v_sessions) || ' other session(s) ended');
  return query select unnest(v_sessions);
end
$$;

-- 6. Deactivation by platform staff, decided here (app.has_platform_permission), never in resolver code.
-- Deactivating revokes every session (their sockets close on the revocation notice) and notifies every API process
-- (`userDeactivated`), which refuses the user's access tokens from then on; reactivating lets them sign in again
-- (old sessions stay ended). Idempotent; staff cannot change their own account.
create function app.set_user_active(p_user uuid, p_active boolean, p_ip text, p_user_agent text) returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_actor uuid := app.current_user_id();
  v_was boolean;
begin
  if not app.has_platform_permission('platform.users:write') then
    raise exception 'platform staff only: this needs the platform.users:write platform permission' using errcode = 'TPFB0';
  end if;
  if p_user = v_actor then
    raise exception 'you cannot deactivate or reactivate your own account' using errcode = 'TPIN0';
  end if;
  select is_active into v_was from app_public.users where id = p_user for update;
  if not found then
    raise exception 'user not found' using errcode = 'TPNF0';
  end if;
  if v_was = p_active then
    return p_active;
  end if;
  update app_public.users
     set is_active = p_active, deactivated_at = case when p_active then null else now() end, updated_at = now()
   where id = p_user;
  if not p_active then
    update app_private.refresh_tokens set revoked_at = now(), revoked_reason = 'deactivated' where user_id = p_user and revoked_at is null;
  end if;
  insert into app_private.auth_events (user_id, action, outcome, ip, user_agent, actor_id)
  values (p_user, case when p_active then 'reactivated' else 'deactivated' end, 'SUCCESS', p_ip, p_user_agent, v_actor);
  perform pg_notify('tenantplane_events',
    json_build_object('kind', case when p_active then 'userReactivated' else 'userDeactivated' end, 'tenantId', '', 'id', p_user::text)::text);
  return p_active;
end
$$;

-- 7. The current user's authentication events, newest first (keyset on id: p_after = older than, p_before = newer
-- than; p_oldest_first for `last`), served by auth_events_user_id_id.
create function app.current_user_auth_events(p_after bigint, p_before bigint, p_limit integer, p_oldest_first boolean)
  returns table (id bigint, action text, outcome app_public.audit_outcome, ip text, user_agent text, session_id uuid, actor_id uuid, detail text, created_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user uuid := app.current_user_id();
  v_limit integer := least(greatest(coalesce(p_limit, 0), 0), 1000);
begin
  if v_user is null then
    return;
  end if;
  -- The ip and user agent of someone else acting on the account (platform staff deactivating it) stay theirs.
  if p_oldest_first then
    return query
      select e.id, e.action, e.outcome,
             case when e.actor_id is null or e.actor_id = e.user_id then e.ip end,
             case when e.actor_id is null or e.actor_id = e.user_id then e.user_agent end,
             e.session_id, e.actor_id, e.detail, e.created_at
        from app_private.auth_events e
       where e.user_id = v_user and (p_after is null or e.id < p_after) and (p_before is null or e.id > p_before)
       order by e.user_id, e.id
       limit v_limit;
  else
    return query
      select e.id, e.action, e.outcome,
             case when e.actor_id is null or e.actor_id = e.user_id then e.ip end,
             case when e.actor_id is null or e.actor_id = e.user_id then e.user_agent end,
             e.session_id, e.actor_id, e.detail, e.created_at
        from app_private.auth_events e
       where e.user_id = v_user and (p_after is null or e.id < p_after) and (p_before is null or e.id > p_before)
       order by e.user_id, e.id desc
       limit v_limit;
  end if;
end
$$;

grant execute on function
  app.record_auth_failure(uuid, text, text, text, text, text),
  app.current_user_sessions(), app.revoke_session(uuid, text, text), app.revoke_other_sessions(uuid, text, text),
  app.current_user_password_hash(), app.password_change_throttled(), app.change_password(text, uuid, text, text),
  app.set_user_active(uuid, boolean, text, text),
  app.current_user_auth_events(bigint, bigint, integer, boolean)
to tenantplane_app;

-- Down Migration
drop function app.current_user_auth_events(bigint, bigint, integer, boolean);
drop function app.set_user_active(uuid, boolean, text, text);
drop function app.change_password(text, uuid, text, text);
drop function app.password_change_throttled();
drop function app.current_user_password_hash();
drop function app.revoke_other_sessions(uuid, text, text);
drop function app.revoke_session(uuid, text, text);
drop function app.current_user_sessions();
drop function app.record_auth_failure(uuid, text, text, text, text, text);
drop function app.login_lookup(text);
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
grant execute on function app.login_lookup(text) to tenantplane_app;
drop index app_public.users_inactive;
drop index app_private.refresh_tokens_revoked_at;
drop index app_private.refresh_tokens_user_active;
drop index app_private.auth_events_created_at;
drop index app_private.auth_events_user_id_id;
alter table app_private.auth_events drop column detail, drop column session_id, drop column actor_id;
alter table app_private.refresh_tokens drop column revoked_reason;
revoke update (username, first_name, last_name) on app_public.users from tenantplane_app;
drop index app_public.users_username_lower;
alter table app_public.users drop column deactivated_at, drop column is_active, drop column last_name, drop column first_name, drop column username;
