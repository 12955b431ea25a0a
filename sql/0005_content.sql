-- Up Migration

create type app_public.document_status as enum ('UPLOADED', 'PROCESSING', 'PROCESSED', 'ERROR');

-- Stored bytes, deduplicated per tenant by sha256: two documents with the same content share one file.
create table app_public.files (
  tenant_id  uuid not null references app_public.tenants (id) on delete cascade,
  id         uuid not null default gen_random_uuid(),
  sha256     text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint not null check (size_bytes >= 0),
  mime_type  text not null,
  object_key text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, sha256),
  check (object_key like 'tenants/' || tenant_id::text || '/%')
);
comment on table app_public.files is 'Objects in S3 under the tenant''s prefix; deleted (with their bytes) when no document references them.';
alter table app_public.files enable row level security;
alter table app_public.files force row level security;
create policy files_select on app_public.files for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
create policy files_insert on app_public.files for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'MEMBER'));
create policy files_delete on app_public.files for delete to tenantplane_app
  using (app.has_tenant_role(tenant_id, 'MEMBER'));
grant select, insert, delete on app_public.files to tenantplane_app;

-- A presigned upload in flight: visible to its uploader only, until completed or expired.
create table app_public.uploads (
  tenant_id           uuid not null references app_public.tenants (id) on delete cascade,
  id                  uuid not null default gen_random_uuid(),
  uploader_id         uuid not null references app_public.users (id) on delete cascade,
  filename            text not null,
  original_name       text not null,
  mime_type           text not null,
  size_bytes          bigint not null check (size_bytes >= 0),
  sha256              text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  object_key          text not null,
  multipart_upload_id text,
  file_id             uuid,
  expires_at          timestamptz not null,
  completed_at        timestamptz,
  created_at          timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, file_id) references app_public.files (tenant_id, id) on delete set null (file_id),
  check (object_key like 'tenants/' || tenant_id::text || '/%')
);
create index uploads_expiry on app_public.uploads (expires_at) where completed_at is null;
create index uploads_file on app_public.uploads (tenant_id, file_id);
alter table app_public.uploads enable row level security;
alter table app_public.uploads force row level security;
create policy uploads_own on app_public.uploads for all to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]) and uploader_id = app.current_user_id())
  with check (app.has_tenant_role(tenant_id, 'MEMBER') and uploader_id = app.current_user_id());
grant select, insert, delete on app_public.uploads to tenantplane_app;
grant update (completed_at, file_id) on app_public.uploads to tenantplane_app;

create table app_public.documents (
  tenant_id     uuid not null references app_public.tenants (id) on delete cascade,
  id            uuid not null default gen_random_uuid(),
  file_id       uuid not null,
  uploader_id   uuid not null references app_public.users (id) on delete restrict,
  filename      text not null check (length(filename) between 1 and 255 and filename !~ '[/\\[:cntrl:]]'),
  original_name text not null,
  size_bytes    bigint not null check (size_bytes >= 0),
  mime_type     text not null,
  status        app_public.document_status not null default 'UPLOADED',
  error         text,
  processed_at  timestamptz,
  char_count    integer,
  word_count    integer,
  line_count    integer,
  preview       text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, uploader_id, filename),
  foreign key (tenant_id, file_id) references app_public.files (tenant_id, id) on delete restrict
);
comment on table app_public.documents is 'A named document over a (possibly shared) file, with its processing status and text statistics.';
create index documents_tenant_recent on app_public.documents (tenant_id, created_at desc, id desc);
create index documents_file on app_public.documents (tenant_id, file_id);
alter table app_public.documents enable row level security;
alter table app_public.documents force row level security;
create policy documents_select on app_public.documents for select to tenantplane_app
  using (tenant_id = any ((select app.visible_tenant_ids())::uuid[]));
-- Members upload (as themselves); members change and delete their own documents, admins anyone's.
create policy documents_insert on app_public.documents for insert to tenantplane_app
  with check (app.has_tenant_role(tenant_id, 'MEMBER') and uploader_id = app.current_user_id());
create policy documents_update on app_public.documents for update to tenantplane_app
  using ((uploader_id = app.current_user_id() and app.has_tenant_role(tenant_id, 'MEMBER')) or app.has_tenant_role(tenant_id, 'ADMIN'))
  with check ((uploader_id = app.current_user_id() and app.has_tenant_role(tenant_id, 'MEMBER')) or app.has_tenant_role(tenant_id, 'ADMIN'));
create policy documents_delete on app_public.documents for delete to tenantplane_app
  using ((uploader_id = app.current_user_id() and app.has_tenant_role(tenant_id, 'MEMBER')) or app.has_tenant_role(tenant_id, 'ADMIN'));
grant select, insert, delete on app_public.documents to tenantplane_app;
grant update (filename, status, error, processed_at, char_count, word_count, line_count, preview, updated_at) on app_public.documents to tenantplane_app;

-- Down Migration
