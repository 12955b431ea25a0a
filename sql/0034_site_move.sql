-- Up Migration

-- Moving a site (issue 10 §2): moveSite(siteId, { server | isolation }) makes a HEALTHY site MOVING while its
-- `site-move` job pauses its login, archives it, restores it on the target, verifies it and switches; the job ends it
-- HEALTHY either way (moved, or where it was). Nothing else may happen to a site while it moves: no other status move
-- starts from MOVING.
alter type app_public.site_status add value if not exists 'MOVING';
insert into app.lifecycle_transitions (entity, from_status, to_status) values
  ('site', 'HEALTHY', 'MOVING'), ('site', 'MOVING', 'HEALTHY');

insert into app_private.tenant_job_queues (name, permissions) values ('site-move', '{sites:operate}');

-- The copy a move left behind on its old home, dropped by `site-drop-old-copies` once drop_after has passed
-- (SITE_MOVE_GRACE_SECONDS): the operator can still go back to it until then. Owner-only, like every app_private table.
create table app_private.site_old_copies (
  tenant_id          uuid not null,
  site_id            uuid not null,
  database_server_id uuid not null references app_public.database_servers (server_id),
  isolation          app_public.site_isolation not null,
  moved_by_job_id    uuid not null,
  drop_after         timestamptz not null,
  created_at         timestamptz not null default now(),
  primary key (tenant_id, site_id, database_server_id, isolation),
  foreign key (tenant_id, site_id) references app_public.sites (tenant_id, id) on delete cascade
);
comment on table app_private.site_old_copies is 'Old homes of moved sites (a schema or a database on a database server), dropped after the move''s grace period.';
create index site_old_copies_due on app_private.site_old_copies (drop_after);
alter table app_private.site_old_copies enable row level security;
alter table app_private.site_old_copies force row level security;

-- Down Migration
drop table app_private.site_old_copies;
delete from app_private.tenant_job_queues where name = 'site-move';
delete from app.lifecycle_transitions where entity = 'site' and 'MOVING' in (from_status, to_status);
