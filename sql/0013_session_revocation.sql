-- Up Migration

-- A session is a refresh-token family. Access tokens name theirs (`sid`), so a socket opened with one can be
-- closed the moment the session is revoked (logOut, or a refresh token's reuse), not only when the token expires.

-- The family of a refresh token just issued to the caller (the token's hash: only its holder knows it).
create function app.refresh_family(p_token_hash bytea) returns uuid
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
  select family_id from app_private.refresh_tokens where token_hash = p_token_hash
$$;
grant execute on function app.refresh_family(bytea) to tenantplane_app;

-- One notice per revoked family per transaction: identical payloads on one channel in one transaction are
-- delivered once, however many of the family's rows the revocation updates.
create function app.notify_session_revoked() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform pg_notify('tenantplane_events',
    json_build_object('kind', 'sessionRevoked', 'tenantId', '', 'id', new.family_id::text)::text);
  return null;
end
$$;
create trigger refresh_tokens_notify_revoked after update of revoked_at on app_private.refresh_tokens
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function app.notify_session_revoked();

-- Down Migration
drop trigger refresh_tokens_notify_revoked on app_private.refresh_tokens;
drop function app.notify_session_revoked();
drop function app.refresh_family(bytea);
