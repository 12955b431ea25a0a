import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.ts';
import { enforceDeclaredPermissions } from './permissions.ts';
import '../modules/identity/types.ts';
import '../modules/identity/account-types.ts';
import '../modules/tenants/types.ts';
import '../modules/tenants/lifecycle-types.ts';
import '../modules/audit/types.ts';
import '../modules/documents/types.ts';
import '../modules/jobs/types.ts';
import '../modules/sites/types.ts';
import '../modules/backups/types.ts';
import '../modules/chat/types.ts';
import '../modules/social/types.ts';
import '../modules/access/types.ts';
import '../modules/access/api-key-types.ts';
import '../modules/fleet/types.ts';
import '../modules/releases/types.ts';

/** The whole API; `npm run schema:print` writes it to schema/schema.graphql. */
export const schema = enforceDeclaredPermissions(lexicographicSortSchema(builder.toSchema()));
