/**
 * The permission catalogue as the TypeScript side names it. sql/0018_permissions.sql (app_public.permissions) is the
 * source of truth; test/permissions.test.ts fails when the two differ.
 */
export const TENANT_PERMISSIONS = [
  'tenants:write', 'tenants:delete', 'tenants:export',
  'members:write', 'members:admin',
  'invitations:read', 'invitations:write',
  'roles:read', 'roles:write',
  'documents:read', 'documents:write', 'documents:manage',
  'chats:read', 'chats:write',
  'social_links:read', 'social_links:write',
  'sites:read', 'sites:write', 'sites:operate',
  'backups:read', 'backups:write',
  'jobs:read', 'jobs:write', 'jobs:manage',
  'audit:read',
  'api_keys:read', 'api_keys:write',
] as const;

export const PLATFORM_PERMISSIONS = [
  'platform.tenants:read', 'platform.tenants:write',
  'platform.users:read', 'platform.users:write',
  'platform.audit:read',
  'platform.support:read',
  'platform.fleet:read', 'platform.fleet:write',
] as const;

export type TenantPermission = (typeof TENANT_PERMISSIONS)[number];
export type PlatformPermission = (typeof PLATFORM_PERMISSIONS)[number];

/**
 * What a mutation declares in `extensions.permission`: a catalogue string (checked before it does anything), or
 * 'self' (a signed-in user acting on their own account or membership) or 'public' (no sign-in: sign up, log in).
 */
export type DeclaredPermission = TenantPermission | PlatformPermission | 'self' | 'public';
