-- Up Migration

-- Chats are private to the user who started them, even inside their tenant; social links are the tenant's.
create type app_public.chat_role as enum ('USER', 'ASSISTANT');
create type app_public.social_platform as enum ('TWITTER', 'FACEBOOK', 'LINKEDIN', 'INSTAGRAM', 'YOUTUBE');

create table app_public.chat_sessions (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  user_id    uuid not null references app_public.users (id) on delete cascade,
  title      text not null check (length(btrim(title)) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.chat_sessions is 'Chat sessions. Private to their user (user_id) inside a tenant they belong to: other members, admins and owners included, see nothing.';
comment on column app_public.chat_sessions.updated_at is 'Moved forward by each new message (trigger chat_messages_touch_session); lists sort on it, newest first.';
create index chat_sessions_tenant_user_recent on app_public.chat_sessions (tenant_id, user_id, updated_at desc, id desc);
-- For the ON DELETE CASCADE from users.
create index chat_sessions_user on app_public.chat_sessions (user_id);

alter table app_public.chat_sessions enable row level security;
alter table app_public.chat_sessions force row level security;
create policy chat_sessions_select on app_public.chat_sessions for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and user_id = (select app.current_user_id()));
create policy chat_sessions_insert on app_public.chat_sessions for insert to tenantplane_app
  with check (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and user_id = (select app.current_user_id())
              and app.has_tenant_role(tenant_id, 'MEMBER'));
create policy chat_sessions_update on app_public.chat_sessions for update to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and user_id = (select app.current_user_id())
         and app.has_tenant_role(tenant_id, 'MEMBER'))
  with check (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and user_id = (select app.current_user_id())
              and app.has_tenant_role(tenant_id, 'MEMBER'));
grant select, insert on app_public.chat_sessions to tenantplane_app;
grant update (updated_at) on app_public.chat_sessions to tenantplane_app;

create table app_public.chat_messages (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  session_id uuid not null,
  role       app_public.chat_role not null,
  content    text not null check (length(content) between 1 and 32000),
  -- clock_timestamp(): messages posted in one transaction (one request) still get increasing times.
  created_at timestamptz not null default clock_timestamp(),
  primary key (tenant_id, id),
  foreign key (tenant_id, session_id) references app_public.chat_sessions (tenant_id, id) on delete cascade
);
comment on table app_public.chat_messages is 'Messages of a chat session; visible and writable only by the user who owns the session. Append-only for the app role.';
create index chat_messages_session_order on app_public.chat_messages (tenant_id, session_id, created_at, id);

alter table app_public.chat_messages enable row level security;
alter table app_public.chat_messages force row level security;
-- The sub-select on chat_sessions runs under that table's policies too; the owner test is repeated to be explicit.
create policy chat_messages_select on app_public.chat_messages for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[])
         and exists (select 1 from app_public.chat_sessions s
                      where s.tenant_id = chat_messages.tenant_id and s.id = chat_messages.session_id
                        and s.user_id = (select app.current_user_id())));
create policy chat_messages_insert on app_public.chat_messages for insert to tenantplane_app
  with check (tenant_id = any ((select app.visible_tenant_ids())::uuid[])
              and app.has_tenant_role(tenant_id, 'MEMBER')
              and exists (select 1 from app_public.chat_sessions s
                           where s.tenant_id = chat_messages.tenant_id and s.id = chat_messages.session_id
                             and s.user_id = (select app.current_user_id())));
grant select, insert on app_public.chat_messages to tenantplane_app;

-- Runs as the inserting user (not SECURITY DEFINER): the update passes chat_sessions' own policy and column grant.
create function app.chat_messages_touch_session() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  update app_public.chat_sessions s
     set updated_at = greatest(s.updated_at, new.created_at)
   where s.tenant_id = new.tenant_id and s.id = new.session_id;
  return null;
end
$$;
comment on function app.chat_messages_touch_session() is 'Moves the session''s updated_at to its newest message.';
revoke execute on function app.chat_messages_touch_session() from public;
create trigger chat_messages_touch_session after insert on app_public.chat_messages
  for each row execute function app.chat_messages_touch_session();

create table app_public.social_links (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  platform   app_public.social_platform not null,
  url        text not null check (length(url) <= 2048 and url ~ '^https://[^/?#@\s]+'),
  created_by uuid references app_public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, platform, url)
);
comment on table app_public.social_links is 'The tenant''s profiles on social platforms: read by every member, added and removed by admins and owners. The API checks that the https URL''s host belongs to the platform.';
create index social_links_tenant_created on app_public.social_links (tenant_id, created_at, id);

alter table app_public.social_links enable row level security;
alter table app_public.social_links force row level security;
create policy social_links_select on app_public.social_links for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
create policy social_links_insert on app_public.social_links for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'ADMIN') and created_by = (select app.current_user_id()));
create policy social_links_delete on app_public.social_links for delete to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'ADMIN'));
grant select, insert, delete on app_public.social_links to tenantplane_app;

-- Down Migration
