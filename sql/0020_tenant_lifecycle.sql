-- Up Migration

-- The tenant lifecycle (issue 9 §4, seed 002's tenant fields): ACTIVE ⇄ SUSPENDED (platform staff), ACTIVE → DELETED
-- (an owner: soft delete with retention; platform staff may restore within it), then the `tenant-purge` maintenance job removes every row, object, schema
-- and backup of the tenant (src/modules/tenants/purge.ts). README "Tenant lifecycle" says what each state allows.

-- DELETED is new; it is used below only inside plpgsql bodies (an enum value added in a transaction cannot be used
-- by that transaction's DDL: the partial index and the visibility test use deleted_at, set exactly when DELETED).
alter type app_public.tenant_status add value if not exists 'DELETED';

alter table app_public.tenants
  add column created_by        uuid references app_public.users (id) on delete set null,
  add column suspended_at      timestamptz,
  add column suspension_reason text check (suspension_reason is null or length(suspension_reason) between 1 and 500),
  add column deleted_at        timestamptz,
  add column purge_after       timestamptz,
  add constraint tenants_deleted_has_purge check ((deleted_at is null) = (purge_after is null));
comment on column app_public.tenants.created_by is 'The user who created the tenant (seed 002); NULL once that user is gone.';
comment on column app_public.tenants.purge_after is 'A DELETED tenant is purged (tenant-purge) once this has passed (TENANT_RETENTION_DAYS after deleteTenant).';
create index tenants_deleted on app_public.tenants (id) where deleted_at is not null;
create index tenants_purge_due on app_public.tenants (purge_after) where purge_after is not null;
create index tenants_created_by on app_public.tenants (created_by);

-- A site suspended because its tenant was (suspendTenant, deleteTenant) is resumed with it, and only then.
alter table app_public.sites add column suspended_with_tenant boolean not null default false;

-- created_by is the creating user, from the transaction's context (app.create_tenant runs as the owner role, so a
-- trigger rather than a new create_tenant body: the catalogue migration may replace that function).
create function app.tenants_set_created_by() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
  as $$
begin
  new.created_by := coalesce(new.created_by, app.current_user_id());
  return new;
end
$$;
revoke execute on function app.tenants_set_created_by() from public;
create trigger tenants_created_by before insert on app_public.tenants
  for each row execute function app.tenants_set_created_by();

-- 1. Tenant statuses in the lifecycle table of sql/0016, enforced by its trigger (DELETED → ACTIVE: restoreTenant).
-- Only the SECURITY DEFINER functions below move them (the request role has no UPDATE on tenants.status).
alter table app.lifecycle_transitions drop constraint lifecycle_transitions_entity_check;
alter table app.lifecycle_transitions add constraint lifecycle_transitions_entity_check
  check (entity in ('site', 'backup', 'job', 'document', 'upload', 'tenant'));
insert into app.lifecycle_transitions (entity, from_status, to_status) values
  ('tenant', null, 'ACTIVE'),
  ('tenant', 'ACTIVE', 'SUSPENDED'), ('tenant', 'SUSPENDED', 'ACTIVE'),
  ('tenant', 'ACTIVE', 'DELETED'), ('tenant', 'DELETED', 'ACTIVE');
create trigger tenants_lifecycle_insert before insert on app_public.tenants
  for each row execute function app.enforce_lifecycle('tenant');
create trigger tenants_lifecycle before update of status on app_public.tenants
  for each row when (old.status is distinct from new.status) execute function app.enforce_lifecycle('tenant');

-- 2. A soft-deleted tenant is invisible to its members: not in app.visible_tenant_ids(), so every policy, permission
-- check and app.enqueue_job answers as for a missing tenant. Platform staff still list it (tenants_select) and may
-- still name it with X-Tenant for support. The 0018 body plus one anti-join on the (tiny) partial index
-- tenants_deleted in the common case, one condition on the join with X-Tenant.
create or replace function app.visible_tenant_ids() returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_filter text := app.current_tenant_filter();
  v_ids uuid[];
begin
  if v_user_id is null then
    return '{}';
  end if;
  if v_filter is null then
    return coalesce((
      select array_agg(m.tenant_id) from app_public.memberships m
       where m.user_id = v_user_id
         and not exists (select 1 from app_public.tenants d where d.id = m.tenant_id and d.deleted_at is not null)
    ), '{}');
  end if;
  select array_agg(t.id) into v_ids
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
   where m.user_id = v_user_id
     and t.deleted_at is null
     and (t.id::text = lower(v_filter) or t.slug = v_filter);
  if v_ids is null and app.current_api_key_permissions() is null then
    select array_agg(t.id) into v_ids
      from app_public.tenants t
     where (t.id::text = lower(v_filter) or t.slug = v_filter)
       and exists (select 1 from app_public.users u join app_public.platform_roles r on r.role = u.platform_role
                    where u.id = v_user_id and cardinality(r.support_permissions) > 0
                      and r.permissions && app.permission_patterns('platform.support:read'));
  end if;
  return coalesce(v_ids, '{}');
end
$$;

-- 3. A suspended tenant is read-only: app.permitted_tenant_ids (sql/0018) answers only read permissions and
-- tenants:export for a tenant that is not ACTIVE, so every write policy and every mutation's check refuses.

-- 4. Platform staff suspend and reactivate (platform.tenants:write, decided here, not in resolvers). Suspending also
-- suspends the tenant's running sites; reactivating resumes exactly those. Audited in the tenant's own log.
create function app.suspend_tenant(p_tenant_id uuid, p_reason text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_status text;
  v_sites integer;
begin
  if not app.has_platform_permission('platform.tenants:write') then
    raise exception 'platform staff only: this needs the platform.tenants:write platform permission' using errcode = 'TPFB0';
  end if;
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'give a reason (1 to 500 characters): it is shown to the tenant''s admins' using errcode = 'TPIN0';
  end if;
  select t.status::text into v_status from app_public.tenants t where t.id = p_tenant_id for update;
  if not found then
    raise exception 'tenant not found' using errcode = 'TPNF0';
  end if;
  if v_status <> 'ACTIVE' then
    raise exception 'cannot suspend a tenant that is %', v_status using errcode = 'TPIN0';
  end if;
  update app_public.tenants set status = 'SUSPENDED', suspended_at = now(), suspension_reason = btrim(p_reason), updated_at = now()
   where id = p_tenant_id;
  update app_public.sites set status = 'SUSPENDED', suspended_with_tenant = true, updated_at = now()
   where tenant_id = p_tenant_id and status in ('RUNNING', 'HEALTHY');
  get diagnostics v_sites = row_count;
  insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details)
  values (p_tenant_id, app.current_user_id(), 'suspendTenant', 'Tenant', p_tenant_id::text, 'SUCCESS',
          jsonb_build_object('reason', btrim(p_reason), 'sitesSuspended', v_sites));
  return p_tenant_id;
end
$$;

create function app.reactivate_tenant(p_tenant_id uuid) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_status text;
  v_sites integer;
begin
  if not app.has_platform_permission('platform.tenants:write') then
    raise exception 'platform staff only: this needs the platform.tenants:write platform permission' using errcode = 'TPFB0';
  end if;
  select t.status::text into v_status from app_public.tenants t where t.id = p_tenant_id for update;
  if not found then
    raise exception 'tenant not found' using errcode = 'TPNF0';
  end if;
  if v_status <> 'SUSPENDED' then
    raise exception 'cannot reactivate a tenant that is %', v_status using errcode = 'TPIN0';
  end if;
  update app_public.tenants set status = 'ACTIVE', suspended_at = null, suspension_reason = null, updated_at = now()
   where id = p_tenant_id;
  update app_public.sites set status = 'HEALTHY', suspended_with_tenant = false, updated_at = now()
   where tenant_id = p_tenant_id and status = 'SUSPENDED' and suspended_with_tenant;
  get diagnostics v_sites = row_count;
  insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details)
  values (p_tenant_id, app.current_user_id(), 'reactivateTenant', 'Tenant', p_tenant_id::text, 'SUCCESS',
          jsonb_build_object('sitesResumed', v_sites));
  return p_tenant_id;
end
$$;

-- 5. An owner deletes (tenants:delete): the slug typed again, and a completed export of the last 24 hours unless
-- p_skip_export. The tenant becomes DELETED (invisible to its members), its running sites are suspended, and it is
-- purged once purge_after has passed (p_retention_days from TENANT_RETENTION_DAYS; 0: the purge is enqueued now).
create function app.delete_tenant(p_tenant_id uuid, p_confirm_slug text, p_skip_export boolean, p_retention_days integer)
  returns timestamptz
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_tenant app_public.tenants;
  v_purge_after timestamptz;
begin
  if app.current_user_id() is null then
    raise exception 'authentication required' using errcode = 'TPUA0';
  end if;
  if p_tenant_id is null or not (p_tenant_id = any (app.visible_tenant_ids())) then
    raise exception 'tenant not found' using errcode = 'TPNF0';
  end if;
  if not app.has_permission(p_tenant_id, 'tenants:delete') then
    raise exception 'this needs the tenants:delete permission in this tenant' using errcode = 'TPFB0';
  end if;
  select * into v_tenant from app_public.tenants t where t.id = p_tenant_id for update;
  if p_confirm_slug is distinct from v_tenant.slug then
    raise exception 'type the tenant''s slug (%) to confirm the deletion', v_tenant.slug using errcode = 'TPIN0';
  end if;
  if not coalesce(p_skip_export, false) and not exists (
       select 1 from app_public.jobs j
        where j.tenant_id = p_tenant_id and j.type = 'tenant-export' and j.status = 'COMPLETED' and j.completed_at > now() - interval '24 hours') then
    raise exception 'export the tenant first (exportTenant; its archive is deleted with the tenant), or pass skipExport: true'
      using errcode = 'TPIN0';
  end if;
  v_purge_after := now() + greatest(coalesce(p_retention_days, 0), 0) * interval '1 day';
  update app_public.tenants set status = 'DELETED', deleted_at = now(), purge_after = v_purge_after, updated_at = now()
   where id = p_tenant_id;
  update app_public.sites set status = 'SUSPENDED', suspended_with_tenant = true, updated_at = now()
   where tenant_id = p_tenant_id and status in ('RUNNING', 'HEALTHY');
  insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details)
  values (p_tenant_id, app.current_user_id(), 'deleteTenant', 'Tenant', p_tenant_id::text, 'SUCCESS',
          jsonb_build_object('slug', v_tenant.slug, 'purgeAfter', v_purge_after, 'exportSkipped', coalesce(p_skip_export, false)));
  if v_purge_after <= now() then
    perform app_private.insert_boss_job('tenant-purge', jsonb_build_object('tenantId', p_tenant_id));
  end if;
  return v_purge_after;
end
$$;

-- 6. Platform staff restore a DELETED tenant within its retention (platform.tenants:write): ACTIVE again, visible to
-- its members, the sites its deletion suspended resumed. The tenant-purge job holds the tenant row for its whole run
-- and re-checks it, so a restore and a purge never interleave; past purge_after the tenant is the purge's.
create function app.restore_tenant(p_tenant_id uuid) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_tenant app_public.tenants;
  v_sites integer;
begin
  if not app.has_platform_permission('platform.tenants:write') then
    raise exception 'platform staff only: this needs the platform.tenants:write platform permission' using errcode = 'TPFB0';
  end if;
  select * into v_tenant from app_public.tenants t where t.id = p_tenant_id for update;
  if not found then
    raise exception 'tenant not found' using errcode = 'TPNF0';
  end if;
  if v_tenant.status::text <> 'DELETED' then
    raise exception 'cannot restore a tenant that is %', v_tenant.status using errcode = 'TPIN0';
  end if;
  if v_tenant.purge_after <= now() then
    raise exception 'the retention of this tenant ended at %: it is being purged', v_tenant.purge_after using errcode = 'TPIN0';
  end if;
  update app_public.tenants set status = 'ACTIVE', deleted_at = null, purge_after = null, updated_at = now()
   where id = p_tenant_id;
  update app_public.sites set status = 'HEALTHY', suspended_with_tenant = false, updated_at = now()
   where tenant_id = p_tenant_id and status = 'SUSPENDED' and suspended_with_tenant;
  get diagnostics v_sites = row_count;
  insert into app_public.audit_events (tenant_id, actor_id, action, target_type, target_id, outcome, details)
  values (p_tenant_id, app.current_user_id(), 'restoreTenant', 'Tenant', p_tenant_id::text, 'SUCCESS',
          jsonb_build_object('deletedAt', v_tenant.deleted_at, 'sitesResumed', v_sites));
  return p_tenant_id;
end
$$;

grant execute on function app.suspend_tenant(uuid, text), app.reactivate_tenant(uuid),
  app.delete_tenant(uuid, text, boolean, integer), app.restore_tenant(uuid) to tenantplane_app;

-- Down Migration
