-- Up Migration

-- users_select asked, for every user row a statement reads, whether a membership links it to a visible tenant
-- (a correlated EXISTS: one index probe per row, the memberships policy applied inside each). As `id in (…)`
-- the members of the visible tenants are read once per statement into a hashed subplan, then each row is a hash
-- lookup: a page of 50 documents with their uploaders pays ~5 µs instead of ~17 µs per uploader row
-- (bench/README.md, RLS overhead). The cost moves to the size of the caller's tenants (their member count), paid
-- once per statement that reads users.
drop policy users_select on app_public.users;
create policy users_select on app_public.users for select to tenantplane_app
  using (
    id = app.current_user_id()
    or (select app.is_platform_staff())
    or id in (select m.user_id from app_public.memberships m where m.tenant_id = any ((select app.visible_tenant_ids())::uuid[]))
  );

-- Down Migration
