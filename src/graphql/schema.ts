import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.ts';
import '../modules/identity/types.ts';
import '../modules/tenants/types.ts';
import '../modules/audit/types.ts';

/** The whole API; `npm run schema:print` writes it to schema/schema.graphql. */
export const schema = lexicographicSortSchema(builder.toSchema());
