import { defaultFieldResolver, GraphQLError, type GraphQLSchema } from 'graphql';
import { PLATFORM_PERMISSIONS, TENANT_PERMISSIONS, type DeclaredPermission } from '../modules/access/catalogue.ts';
import type { Context } from './context.ts';
import { AppError } from './errors.ts';

const KNOWN = new Set<string>([...TENANT_PERMISSIONS, ...PLATFORM_PERMISSIONS, 'self', 'public']);

/** The permission a mutation field declares in `extensions.permission`. */
export function declaredPermission(field: { extensions?: Record<string, unknown> | null }): DeclaredPermission | undefined {
  return field.extensions?.permission as DeclaredPermission | undefined;
}

/**
 * Every mutation declares the permission it needs (`extensions: { permission }`), and must have checked exactly that
 * one through app.has_permission (src/modules/access/permissions.ts) by the time it succeeds: a mutation that did not
 * fails as an internal error and its transaction rolls back. A schema with an undeclared mutation does not build.
 * Mutation fields run one after another (GraphQL spec), so one set per request context is enough.
 */
export function enforceDeclaredPermissions(schema: GraphQLSchema): GraphQLSchema {
  const mutation = schema.getMutationType();
  for (const field of Object.values(mutation?.getFields() ?? {})) {
    const permission = declaredPermission(field);
    if (!permission || !KNOWN.has(permission)) {
      throw new Error(`mutation ${field.name} must declare a catalogue permission, 'self' or 'public' in extensions.permission (has ${String(permission)})`);
    }
    const resolve = field.resolve ?? defaultFieldResolver;
    if (permission === 'public') continue;
    if (permission === 'self') {
      // An API key acts for its tenant, never for its creator's own account (creating or leaving tenants, invitations).
      field.resolve = (root, args, ctx: Context, info) => {
        if (ctx.apiKeyId) throw new AppError('FORBIDDEN', `an API key cannot ${field.name}: it acts for its tenant, not for its creator's account`);
        return resolve(root, args, ctx, info);
      };
      continue;
    }
    field.resolve = async (root, args, ctx: Context, info) => {
      const checked = new Set<string>();
      ctx.checkedPermissions = checked;
      const result = await resolve(root, args, ctx, info);
      if (!checked.has(permission)) {
        throw new GraphQLError(`internal error: mutation ${field.name} did not check its declared permission ${permission}`);
      }
      return result;
    };
  }
  return schema;
}
