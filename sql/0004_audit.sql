-- Up Migration

create table app_public.audit_events (
  tenant_id   uuid not null references app_public.tenants (id) on delete cascade,
  id          bigint generated always as identity,
  actor_id    uuid references app_public.users (id) on delete set null,
  action      text not null,
  target_type text,
  target_id   text,
  outcome     app_public.audit_outcome not null,
  details     jsonb not null default '{}',
  ip          text,
  user_agent  text,
  created_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.audit_events is 'Append-only audit log of tenant mutations: the app role may insert and read, never change or delete.';
create index audit_events_tenant_recent on app_public.audit_events (tenant_id, id desc);
alter table app_public.audit_events enable row level security;
alter table app_public.audit_events force row level security;
create policy audit_events_select on app_public.audit_events for select to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN') or (select app.is_platform_staff()));
create policy audit_events_insert on app_public.audit_events for insert to tenantplane_app
  with check (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and actor_id = app.current_user_id());
grant select, insert on app_public.audit_events to tenantplane_app;

-- Each API instance LISTENs on this channel once and re-reads events under each subscriber's context.
create function app.notify_audit_event() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  perform pg_notify('tenantplane_events',
    json_build_object('kind', 'audit', 'tenantId', new.tenant_id, 'id', new.id::text)::text);
  return null;
end
$$;
create trigger audit_events_notify after insert on app_public.audit_events
  for each row execute function app.notify_audit_event();

-- Down Migration
