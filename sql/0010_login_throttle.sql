-- Up Migration

-- Login brute force: failed logIn attempts of the last 15 minutes, per account (email) and per client ip, counted
-- from app_private.auth_events. (email, created_at) is indexed since 0002; the ip needs its own index.
create index auth_events_ip_created_at on app_private.auth_events (ip, created_at);

-- True when this email has more than 10 failed logIn attempts in the last 15 minutes, or this ip more than 50.
-- Unknown emails are counted like known ones (their failures are recorded with the address), so the answer says
-- nothing about whether an account exists. Each count stops at the threshold: bounded work whatever the flood.
create function app.login_throttled(p_email text, p_ip text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_since timestamptz := now() - interval '15 minutes';
begin
  if p_email is not null and (
    select count(*) from (
      select 1 from app_private.auth_events e
       where e.email = lower(p_email) and e.created_at > v_since and e.action = 'logIn' and e.outcome = 'FAILURE'
       limit 11
    ) per_account
  ) > 10 then
    return true;
  end if;
  if p_ip is not null and (
    select count(*) from (
      select 1 from app_private.auth_events e
       where e.ip = p_ip and e.created_at > v_since and e.action = 'logIn' and e.outcome = 'FAILURE'
       limit 51
    ) per_ip
  ) > 50 then
    return true;
  end if;
  return false;
end
$$;
comment on function app.login_throttled(text, text) is 'Login throttling: more than 10 failed logIn attempts per email, or 50 per ip, in the last 15 minutes.';

revoke execute on function app.login_throttled(text, text) from public;
grant execute on function app.login_throttled(text, text) to tenantplane_app;

-- Down Migration
