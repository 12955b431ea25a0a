import type { GraphQLSchema } from 'graphql';
import { declaredPermission } from '../../graphql/permissions.ts';

/** What docs/permissions.md is drawn from: the catalogue and role sets (sql/0018) and the live policies. */
export interface PermissionFacts {
  permissions: Array<{ id: string; scope: string; description: string }>;
  builtinRoles: Array<{ role: string; permissions: string[] }>;
  templates: Array<{ name: string; permissions: string[] }>;
  platformRoles: Array<{ role: string; permissions: string[]; supportPermissions: string[] }>;
  /** One row per policy of app_public: table, command, and the permission strings its expressions name. */
  policies: Array<{ table: string; command: string; permissions: string[] }>;
}

/** Whether a set of patterns (`*:*`, `sites:*`, `*:read`, or exact strings) grants a concrete permission. */
export function grants(patterns: readonly string[], permission: string) {
  const [resource, action] = permission.split(':');
  return patterns.some((p) => p === '*:*' || p === permission || p === `${resource}:*` || p === `*:${action}`);
}

/** The SQL that reads PermissionFacts (run as the owner or the request role: every table read here is public). */
export const PERMISSION_FACTS_SQL = {
  permissions: `select id, scope, description from app_public.permissions order by scope desc, id`,
  builtinRoles: `select role::text, permissions from app_public.builtin_roles order by role desc`,
  templates: `select name, permissions from app_public.role_templates order by name`,
  platformRoles: `select role::text, permissions, support_permissions as "supportPermissions" from app_public.platform_roles where role <> 'NONE' order by role desc`,
  policies: `select tablename as table, cmd as command,
                    coalesce((select array_agg(distinct m[1] order by m[1])
                                from regexp_matches(coalesce(qual, '') || ' ' || coalesce(with_check, ''), '''([a-z_.]+:[a-z_*]+)''', 'g') m), '{}') as permissions
               from pg_policies where schemaname = 'app_public' order by tablename, cmd`,
} as const;

const tick = (b: boolean) => (b ? '✓' : '');

/** Renders docs/permissions.md. Deterministic: the same catalogue, policies and schema give the same bytes. */
export function renderPermissionsDoc(facts: PermissionFacts, schema: GraphQLSchema): string {
  const tenant = facts.permissions.filter((p) => p.scope === 'tenant');
  const platform = facts.permissions.filter((p) => p.scope === 'platform');
  const mutations = Object.values(schema.getMutationType()?.getFields() ?? {})
    .map((f) => ({ name: f.name, permission: declaredPermission(f) ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out('# Permissions');
  out();
  out('Generated from `sql/0018_permissions.sql` (the catalogue and the role sets), the live policies (`pg_policies`) and the');
  out('GraphQL schema by `test/permissions.test.ts`; that test fails when this file is stale (`UPDATE_DOCS=1` rewrites it).');
  out('A permission is `resource:action`; a role is a set of patterns: a permission, `resource:*`, `*:action` or `*:*`.');
  out();
  out('## Tenant roles × permissions');
  out();
  out('Built-in roles (every membership holds one) and the templates offered for custom roles.');
  out();
  const cols = [...facts.builtinRoles.map((r) => ({ name: r.role, patterns: r.permissions })), ...facts.templates.map((t) => ({ name: `template ${t.name}`, patterns: t.permissions }))];
  out(`| permission | ${cols.map((c) => c.name).join(' | ')} | meaning |`);
  out(`| --- | ${cols.map(() => ':-:').join(' | ')} | --- |`);
  for (const p of tenant) out(`| \`${p.id}\` | ${cols.map((c) => tick(grants(c.patterns, p.id))).join(' | ')} | ${p.description} |`);
  out();
  out('## Platform roles × permissions');
  out();
  out('Support permissions are tenant permissions held only in the one tenant a request names with `X-Tenant`; each such');
  out('request is recorded in that tenant’s audit log (`supportAccess`).');
  out();
  out(`| permission | ${facts.platformRoles.map((r) => r.role).join(' | ')} | meaning |`);
  out(`| --- | ${facts.platformRoles.map(() => ':-:').join(' | ')} | --- |`);
  for (const p of platform) out(`| \`${p.id}\` | ${facts.platformRoles.map((r) => tick(grants(r.permissions, p.id))).join(' | ')} | ${p.description} |`);
  out(`| support | ${facts.platformRoles.map((r) => r.supportPermissions.map((s) => `\`${s}\``).join(' ')).join(' | ')} | |`);
  out();
  out('## Permission × mutation × policy');
  out();
  out('Each mutation declares one permission (`extensions.permission`) and checks it through `app.has_permission` before');
  out('it does anything; each policy names the permissions it asks `app.permitted_tenant_ids` about.');
  out();
  out('| permission | mutations | policies (table: commands) |');
  out('| --- | --- | --- |');
  for (const p of facts.permissions) {
    const ms = mutations.filter((m) => m.permission === p.id).map((m) => `\`${m.name}\``);
    const byTable = new Map<string, string[]>();
    for (const pol of facts.policies.filter((x) => x.permissions.includes(p.id))) {
      byTable.set(pol.table, [...(byTable.get(pol.table) ?? []), pol.command]);
    }
    const ps = [...byTable].map(([t, cmds]) => `${t}: ${cmds.join(', ')}`);
    out(`| \`${p.id}\` | ${ms.join(' ') || '—'} | ${ps.join('; ') || '—'} |`);
  }
  out();
  out('Mutations without a tenant permission:');
  out();
  for (const kind of ['self', 'public'] as const) {
    const ms = mutations.filter((m) => m.permission === kind).map((m) => `\`${m.name}\``);
    out(`- \`${kind}\` (${kind === 'self' ? 'a signed-in user acting on their own account or membership' : 'no sign-in needed'}): ${ms.join(' ')}`);
  }
  out();
  return lines.join('\n');
}
