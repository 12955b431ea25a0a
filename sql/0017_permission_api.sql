-- Up Migration

-- The two questions every access decision asks (issue 9), declared first so that everything written after this
-- migration can call them. 0018 replaces their bodies with the permission catalogue and role sets; until then they
-- answer from today's fixed ranks.
create function app.has_permission(p_tenant_id uuid, p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return case
    when p_permission = 'tenants:delete' then app.has_tenant_role(p_tenant_id, 'OWNER')
    when p_permission like '%:read' then app.has_tenant_role(p_tenant_id, 'VIEWER')
    else app.has_tenant_role(p_tenant_id, 'ADMIN')
  end;
end
$$;
comment on function app.has_permission(uuid, text) is 'Whether the current user (or API key) holds a permission string in a visible tenant.';

create function app.has_platform_permission(p_permission text) returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$
begin
  return case app.platform_role()
    when 'SUPERADMIN' then true
    when 'OPERATOR' then p_permission like '%:read' or p_permission like 'platform.sites:%'
    when 'VIEWER' then p_permission like '%:read'
    else false
  end;
end
$$;
comment on function app.has_platform_permission(text) is 'Whether the current user''s platform role holds a platform permission string.';

grant execute on function app.has_permission(uuid, text), app.has_platform_permission(text) to tenantplane_app;

-- Down Migration
