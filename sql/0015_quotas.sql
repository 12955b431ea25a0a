-- Up Migration

-- Plan quotas are enforced here, where concurrent requests cannot race past them (DESIGN §3.9, issue 14 §2).
-- After every INSERT statement into a table a quota counts, app.enforce_tenant_quota() locks the row of each tenant
-- the statement wrote to (FOR NO KEY UPDATE, in id order: quota checks of one tenant run one at a time, while
-- foreign-key checks — FOR KEY SHARE — of other inserts are not blocked), then counts the tenant's rows in a fresh
-- snapshot (each statement of a VOLATILE plpgsql function takes one under READ COMMITTED), which includes what this
-- transaction wrote and what every transaction that held the lock before it committed. Past the plan's limit the
-- statement fails with SQLSTATE TPQU0 and a message naming the limit and the plan; the API answers QUOTA_EXCEEDED
-- and the request's transaction rolls back, leaving nothing.
--
-- The invariant checked is "after this insert, the tenant is within its plan":
--   sites        rows not DELETED                                   <= plans.max_sites
--   memberships  members                                            <= plans.max_members
--   invitations  members + pending invitations (not accepted, not expired) <= plans.max_members
--   files        stored bytes                                       <= plans.max_storage_bytes
--   uploads      stored bytes + bytes of uploads in progress (not completed, not expired, not onto a stored file),
--                each sha256 counted once                           <= plans.max_storage_bytes
-- A limit added later: a max_* column of plans, a branch below, and a trigger on the table it counts
-- (test/quotas.test.ts checks that every max_* column of plans is named by this function).
create function app.enforce_tenant_quota() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_limit text := tg_argv[0];
  v_tenant record;
  v_used bigint;
begin
  -- Under REPEATABLE READ the counts below would read the transaction's old snapshot and miss concurrent inserts.
  if current_setting('transaction_isolation') = 'repeatable read' then
    raise exception 'rows counted by a plan quota (%) are written under READ COMMITTED or SERIALIZABLE', v_limit
      using errcode = '40001';
  end if;
  for v_tenant in
    select t.id, p.id as plan_id, p.name as plan_name, p.max_sites, p.max_members, p.max_storage_bytes
      from app_public.tenants t
      join app_public.plans p on p.id = t.plan_id
     where t.id in (select n.tenant_id from new_rows n
                     -- An upload onto bytes the tenant already stores adds nothing.
                     where v_limit <> 'uploads' or to_jsonb(n) ->> 'file_id' is null)
     order by t.id
       for no key update of t
  loop
    case v_limit
    when 'sites' then
      select count(*) into v_used from app_public.sites s where s.tenant_id = v_tenant.id and s.status <> 'DELETED';
      if v_used > v_tenant.max_sites then
        raise exception 'the % plan allows % sites', v_tenant.plan_name, v_tenant.max_sites
          using errcode = 'TPQU0', detail = format('plan %s, limit max_sites', v_tenant.plan_id);
      end if;
    when 'memberships' then
      select count(*) into v_used from app_public.memberships m where m.tenant_id = v_tenant.id;
      if v_used > v_tenant.max_members then
        raise exception 'the tenant''s plan allows % members', v_tenant.max_members
          using errcode = 'TPQU0', detail = format('plan %s, limit max_members', v_tenant.plan_id);
      end if;
    when 'invitations' then
      select (select count(*) from app_public.memberships m where m.tenant_id = v_tenant.id)
           + (select count(*) from app_public.invitations i
               where i.tenant_id = v_tenant.id and i.accepted_at is null and i.expires_at > now())
        into v_used;
      if v_used > v_tenant.max_members then
        raise exception 'the % plan allows % members (counting pending invitations)', v_tenant.plan_name, v_tenant.max_members
          using errcode = 'TPQU0', detail = format('plan %s, limit max_members', v_tenant.plan_id);
      end if;
    when 'files' then
      select coalesce(sum(f.size_bytes), 0) into v_used from app_public.files f where f.tenant_id = v_tenant.id;
      if v_used > v_tenant.max_storage_bytes then
        raise exception 'the % plan stores % bytes; this file would bring the tenant to % bytes', v_tenant.plan_name, v_tenant.max_storage_bytes, v_used
          using errcode = 'TPQU0', detail = format('plan %s, limit max_storage_bytes', v_tenant.plan_id);
      end if;
    when 'uploads' then
      select coalesce((select sum(f.size_bytes) from app_public.files f where f.tenant_id = v_tenant.id), 0)
           + coalesce((select sum(r.size_bytes) from (
               select max(u.size_bytes) as size_bytes
                 from app_public.uploads u
                where u.tenant_id = v_tenant.id and u.completed_at is null and u.file_id is null and u.expires_at > now()
                  and not exists (select 1 from app_public.files f where f.tenant_id = u.tenant_id and f.sha256 = u.sha256)
                group by u.sha256) r), 0)
        into v_used;
      if v_used > v_tenant.max_storage_bytes then
        raise exception 'the % plan stores % bytes; with this upload the tenant would need % (stored and uploads in progress)', v_tenant.plan_name, v_tenant.max_storage_bytes, v_used
          using errcode = 'TPQU0', detail = format('plan %s, limit max_storage_bytes', v_tenant.plan_id);
      end if;
    else
      raise exception 'app.enforce_tenant_quota: unknown limit %', v_limit;
    end case;
  end loop;
  return null;
end
$$;
comment on function app.enforce_tenant_quota() is 'Statement trigger: locks each written tenant and checks its plan limit (TG_ARGV[0]) in a fresh snapshot; TPQU0 past it.';

create trigger sites_quota after insert on app_public.sites
  referencing new table as new_rows for each statement execute function app.enforce_tenant_quota('sites');
create trigger memberships_quota after insert on app_public.memberships
  referencing new table as new_rows for each statement execute function app.enforce_tenant_quota('memberships');
create trigger invitations_quota after insert on app_public.invitations
  referencing new table as new_rows for each statement execute function app.enforce_tenant_quota('invitations');
create trigger files_quota after insert on app_public.files
  referencing new table as new_rows for each statement execute function app.enforce_tenant_quota('files');
create trigger uploads_quota after insert on app_public.uploads
  referencing new table as new_rows for each statement execute function app.enforce_tenant_quota('uploads');

-- An upload deleted before it completed (by the request role: its own pending uploads) no longer reserves its bytes,
-- so the bytes a client may already have sent under its key go too, once the deletion commits (sql/0014's
-- storage-delete-object keeps an object any file or unfinished upload still points to).
create function app.enqueue_abandoned_upload_deletion() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  if old.completed_at is null then
    perform app_private.insert_boss_job('storage-delete-object', jsonb_build_object('tenantId', old.tenant_id, 'objectKey', old.object_key));
  end if;
  return null;
end
$$;
create trigger uploads_delete_abandoned_object after delete on app_public.uploads
  for each row execute function app.enqueue_abandoned_upload_deletion();

-- Uploads in progress of a tenant, read by the storage count above.
create index uploads_in_progress on app_public.uploads (tenant_id, sha256) where completed_at is null;

-- accept_invitation locked the tenant FOR UPDATE, which also waits for every uncommitted insert that merely
-- references the tenant (FOR KEY SHARE of a foreign-key check): the same lock as the quota trigger is enough.
create or replace function app.accept_invitation(p_token_hash bytea) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  as $$
declare
  v_user_id uuid := app.current_user_id();
  v_email text;
  v_inv app_public.invitations;
  v_max integer;
  v_count integer;
  v_membership_id uuid;
begin
  if v_user_id is null then
    raise exception 'sign in to accept an invitation' using errcode = 'TPUA0';
  end if;
  select * into v_inv from app_public.invitations where token_hash = p_token_hash for update;
  if not found then
    raise exception 'invitation not found for your email address' using errcode = 'TPNF0';
  end if;
  select u.email into v_email from app_public.users u where u.id = v_user_id;
  -- A token addressed to someone else answers like an unknown one.
  if v_email is distinct from v_inv.email then
    raise exception 'invitation not found for your email address' using errcode = 'TPNF0';
  end if;
  if v_inv.accepted_at is not null then
    raise exception 'this invitation has already been used' using errcode = 'TPIN0';
  end if;
  if v_inv.expires_at <= now() then
    raise exception 'this invitation has expired: ask for a new one' using errcode = 'TPIN0';
  end if;
  if exists (select 1 from app_public.memberships m where m.tenant_id = v_inv.tenant_id and m.user_id = v_user_id) then
    raise exception 'you are already a member of this tenant' using errcode = 'TPCF0';
  end if;
  select p.max_members into v_max from app_public.tenants t join app_public.plans p on p.id = t.plan_id where t.id = v_inv.tenant_id for no key update of t;
  select count(*) into v_count from app_public.memberships m where m.tenant_id = v_inv.tenant_id;
  if v_count >= v_max then
    raise exception 'the tenant''s plan allows % members', v_max using errcode = 'TPQU0';
  end if;
  insert into app_public.memberships (tenant_id, user_id, role) values (v_inv.tenant_id, v_user_id, v_inv.role)
  returning id into v_membership_id;
  update app_public.invitations set accepted_at = now(), accepted_by = v_user_id
   where tenant_id = v_inv.tenant_id and id = v_inv.id;
  return v_membership_id;
end
$$;

-- Down Migration
