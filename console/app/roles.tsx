/**
 * Custom roles (issue 12 §2): a tenant's named permission sets — create one from a template or from catalogue
 * permissions, change its permissions, delete it, give it to a member or take it back. The API decides what you may
 * grant (never more than you hold, checked by the database's policies); the page only offers what you hold.
 */
import type { FormEvent } from 'react';
import {
  AssignRoleDocument,
  CreateRoleDocument,
  DeleteRoleDocument,
  TenantRolesDocument,
  UnassignRoleDocument,
  UpdateRoleDocument,
  type RoleFieldsFragment,
  type TenantFieldsFragment,
  type TenantRolesQuery,
} from '../../src/sdk/index.ts';
import { client, ErrorText, Field, useAction, useLoad } from './ui.tsx';

type Catalogue = TenantRolesQuery['permissionCatalogue'];

/** Whether a pattern (`documents:write`, `documents:*`, `*:*`) grants a catalogue permission. */
function grants(pattern: string, permission: string) {
  const [resource, action] = pattern.split(':');
  const [r, a] = permission.split(':');
  return (resource === '*' || resource === r) && (action === undefined || action === '*' || action === a);
}

/**
 * Catalogue permissions as checkboxes, those you do not hold disabled (the API would refuse them). A role's wildcard
 * patterns are checkboxes of their own, kept as patterns when saved (so `documents:*` still grants a documents
 * permission added later); a permission one of them grants says so.
 */
function PermissionPicker({ catalogue, held, chosen, legend }: { catalogue: Catalogue; held: Set<string>; chosen: string[]; legend: string }) {
  const patterns = chosen.filter((p) => !catalogue.some((c) => c.id === p));
  return (
    <fieldset className="permissions">
      <legend>{legend}</legend>
      {patterns.map((p) => (
        <label key={p} className="check" title="a pattern: every permission it matches, now and later">
          <input type="checkbox" name="permission" value={p} defaultChecked disabled={!catalogue.every((c) => !grants(p, c.id) || held.has(c.id))} />
          <code>{p}</code>
        </label>
      ))}
      {catalogue.map((p) => {
        const via = patterns.find((pattern) => grants(pattern, p.id));
        return (
          <label key={p.id} className="check" title={p.description}>
            <input type="checkbox" name="permission" value={p.id} defaultChecked={chosen.includes(p.id)} disabled={!held.has(p.id)} />
            <code>{p.id}</code>
            {via && <small> (also by {via})</small>}
          </label>
        );
      })}
    </fieldset>
  );
}

const chosenPermissions = (form: FormData) => form.getAll('permission').map(String);

export function Roles({ tenant }: { tenant: TenantFieldsFragment }) {
  const { data, error, load, act } = useLoad(() => client.request(TenantRolesDocument, { slug: tenant.slug, membersFirst: 100 }), [tenant.slug]);
  const create = useAction(async (f) => {
    const template = String(f.get('template') ?? '');
    const permissions = chosenPermissions(f);
    await client.request(CreateRoleDocument, {
      input: {
        tenantId: tenant.id,
        name: String(f.get('roleName')),
        description: String(f.get('description') ?? ''),
        ...(template ? { template } : { permissions }),
      },
    });
    await load();
  });
  const catalogue = (data?.permissionCatalogue ?? []).filter((p) => p.scope === 'tenant');
  const held = new Set(data?.tenant?.viewerPermissions ?? []);
  const members = data?.tenant?.members.edges.map((e) => e.node) ?? [];
  return (
    <section aria-labelledby="roles-title">
      <h2 id="roles-title">Custom roles</h2>
      <p>
        <small>Every member holds one built-in role (viewer, member, admin, owner); a custom role adds the permissions it names.</small>
      </p>
      <ErrorText error={error} />
      <details>
        <summary>New role</summary>
        <form onSubmit={create.onSubmit} aria-label="Create a role">
          <Field label="Role name" name="roleName" />
          <Field label="Description" name="description" required={false} />
          <label className="field">
            <span>Start from a template</span>
            <select name="template" defaultValue="">
              <option value="">none: the permissions below</option>
              {data?.roleTemplates.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name} — {t.description}
                </option>
              ))}
            </select>
          </label>
          <PermissionPicker catalogue={catalogue} held={held} chosen={[]} legend="Permissions" />
          <ErrorText error={create.error} />
          <button type="submit" disabled={create.busy}>
            Create role
          </button>
        </form>
      </details>
      {data && data.tenant?.roles.length === 0 && <p>No custom role yet.</p>}
      {data?.tenant?.roles.map((role) => (
        <RoleCard key={role.id} role={role} tenantId={tenant.id} members={members} catalogue={catalogue} held={held} act={act} />
      ))}
    </section>
  );
}

function RoleCard({
  role,
  tenantId,
  members,
  catalogue,
  held,
  act,
}: {
  role: RoleFieldsFragment;
  tenantId: string;
  members: Array<{ id: string; user: { id: string; email: string } }>;
  catalogue: Catalogue;
  held: Set<string>;
  act: (fn: () => Promise<unknown>) => Promise<void>;
}) {
  const holderIds = new Set(role.holders.map((h) => h.member.user.id));
  const save = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const permissions = chosenPermissions(new FormData(e.currentTarget));
    void act(() => client.request(UpdateRoleDocument, { input: { roleId: role.id, permissions } }));
  };
  const assign = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const userId = String(new FormData(e.currentTarget).get('userId'));
    void act(() => client.request(AssignRoleDocument, { input: { tenantId, roleId: role.id, userId } }));
  };
  return (
    <article className="role" data-role={role.name} aria-labelledby={`role-${role.id}`}>
      <h3 id={`role-${role.id}`}>{role.name}</h3>
      {role.description && <p>{role.description}</p>}
      <p className="chips" aria-label={`permissions of ${role.name}`}>
        {role.permissions.map((p) => (
          <code key={p}>{p}</code>
        ))}
      </p>
      <h4>Held by</h4>
      {role.holders.length === 0 ? (
        <p>
          <small>nobody yet</small>
        </p>
      ) : (
        <ul className="holders">
          {role.holders.map((h) => (
            <li key={h.member.id} data-holder={h.member.user.email}>
              {h.member.user.email}{' '}
              <button type="button" onClick={() => void act(() => client.request(UnassignRoleDocument, { input: { tenantId, roleId: role.id, userId: h.member.user.id } }))}>
                Take back
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={assign} className="inline" aria-label={`Give ${role.name} to a member`}>
        <label className="field">
          <span>Member</span>
          <select name="userId" required>
            {members
              .filter((m) => !holderIds.has(m.user.id))
              .map((m) => (
                <option key={m.id} value={m.user.id}>
                  {m.user.email}
                </option>
              ))}
          </select>
        </label>
        <button type="submit">Give role</button>
      </form>
      <details>
        <summary>Change permissions</summary>
        <form onSubmit={save} aria-label={`Permissions of ${role.name}`}>
          <PermissionPicker catalogue={catalogue} held={held} chosen={role.permissions} legend={`Permissions of ${role.name}`} />
          <button type="submit">Save permissions</button>
        </form>
      </details>
      <button type="button" className="danger" onClick={() => confirm(`Delete the role ${role.name}? Its holders lose it.`) && void act(() => client.request(DeleteRoleDocument, { roleId: role.id }))}>
        Delete role
      </button>
    </article>
  );
}
