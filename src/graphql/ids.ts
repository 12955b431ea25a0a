import { decodeGlobalID } from '@pothos/plugin-relay';
import { badInput } from './errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Decodes a Relay global id of the given type to its uuid; anything else is a BAD_USER_INPUT on that field. */
export function uuidFromGlobalId(typename: string, value: string, field: string): string {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(value);
  } catch {
    throw badInput(field, `${field} is not a valid ${typename} id`);
  }
  if (decoded.typename !== typename || !UUID.test(decoded.id)) throw badInput(field, `${field} is not a valid ${typename} id`);
  return decoded.id.toLowerCase();
}

export function isUuid(value: string) {
  return UUID.test(value);
}


/** Decodes the global id of a tenant-owned node (Pothos encodes its compound key as JSON `[tenantId, id]`). */
export function tenantScopedIdFromGlobalId(typename: string, value: string, field: string): { tenantId: string; id: string } {
  try {
    const decoded = decodeGlobalID(value);
    const parts = JSON.parse(decoded.id) as unknown;
    if (decoded.typename === typename && Array.isArray(parts) && parts.length === 2 && parts.every((p) => typeof p === 'string' && UUID.test(p))) {
      return { tenantId: (parts[0] as string).toLowerCase(), id: (parts[1] as string).toLowerCase() };
    }
  } catch {
    // reported below
  }
  throw badInput(field, `${field} is not a valid ${typename} id`);
}

/** The global id of a tenant-owned node, as Pothos would print it. */
export function tenantScopedGlobalId(typename: string, tenantId: string, id: string) {
  return Buffer.from(`${typename}:${JSON.stringify([tenantId, id])}`).toString('base64');
}
