-- Up Migration

-- The request role: owns nothing, cannot bypass RLS. Requests switch to it with set_config('role', …, true).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'tenantplane_app') then
    create role tenantplane_app nologin nobypassrls nosuperuser noinherit;
  end if;
end
$$;
-- The migrating (owner) role must be able to switch to the app role in each request transaction.
grant tenantplane_app to current_user;


create schema app;          -- helper functions used by policies and the API
create schema app_public;   -- tables the app role reaches (through RLS)
create schema app_private;  -- secrets: the app role has no privilege here at all

revoke all on schema app_private from public;
revoke all on schema app_public from public;
revoke all on schema app from public;
grant usage on schema app, app_public to tenantplane_app;
-- PostgreSQL grants EXECUTE on new functions to PUBLIC by default: not here. Functions the app role may call are
-- granted to it by name, next to their definitions.
alter default privileges revoke execute on functions from public;

-- Declared low to high so that `role >= 'ADMIN'` reads naturally.
create type app_public.tenant_role as enum ('VIEWER', 'MEMBER', 'ADMIN', 'OWNER');
create type app_public.platform_role as enum ('NONE', 'VIEWER', 'OPERATOR', 'SUPERADMIN');
create type app_public.tenant_status as enum ('ACTIVE', 'SUSPENDED');
create type app_public.audit_outcome as enum ('SUCCESS', 'FAILURE');

-- Request context, set per transaction by the API (is_local = true). '' and NULL both mean "no context".
create function app.current_user_id() returns uuid
  language sql stable
  as $$ select nullif(current_setting('app.user_id', true), '')::uuid $$;
comment on function app.current_user_id() is 'The authenticated user of the current transaction, or NULL.';

create function app.current_tenant_filter() returns text
  language sql stable
  as $$ select nullif(current_setting('app.tenant_id', true), '') $$;
comment on function app.current_tenant_filter() is 'The X-Tenant narrowing of the current transaction (tenant id or slug), or NULL.';

grant execute on function app.current_user_id(), app.current_tenant_filter() to tenantplane_app;

-- Down Migration
