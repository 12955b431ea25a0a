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
