import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLError, Kind } from 'graphql';
import type PrismaTypes from '../db/generated/pothos-types.ts';
import { getDatamodel } from '../db/generated/pothos-types.ts';
import type { Context } from './context.ts';
import { sqlState } from './errors.ts';

function isMalformedIdError(e: unknown) {
  const state = sqlState(e);
  // Unknown typename (Pothos: "X has not been implemented"), unparsable compound id, or a non-uuid value.
  if ((e as Error)?.name === 'PothosSchemaError' && /has not been implemented/.test((e as Error).message)) return true;
  return e instanceof SyntaxError || state === '22P02' || (e as { code?: string })?.code === 'P2023';
}

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    BigInt: { Input: bigint; Output: bigint | number };
  };
}>({
  plugins: [PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  prisma: {
    // Every Prisma query of a resolver runs in the request's RLS transaction.
    client: (ctx) => ctx.db as never,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
    maxConnectionSize: 100,
    defaultConnectionSize: 20,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: {
      nullable: true,
      // A malformed or foreign id is simply not found (never an internal error).
      resolve: async (_root, args, _ctx, _info, resolveNode) => {
        try {
          return await resolveNode(args.id);
        } catch (e) {
          if (isMalformedIdError(e)) return null;
          throw e;
        }
      },
    },
    nodesQueryOptions: false,
  },
});

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp in UTC.',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v).toISOString()),
  parseValue: (v) => {
    const d = new Date(String(v));
    if (Number.isNaN(d.getTime())) throw new GraphQLError('invalid DateTime', { extensions: { code: 'BAD_USER_INPUT' } });
    return d;
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (v) => v,
  parseValue: (v) => v,
});

builder.scalarType('BigInt', {
  description: 'A 64-bit integer, serialized as a JSON number (all values used here are below 2^53).',
  serialize: (v) => Number(v),
  parseValue: (v) => {
    if (typeof v !== 'number' && typeof v !== 'string') throw new GraphQLError('invalid BigInt', { extensions: { code: 'BAD_USER_INPUT' } });
    return BigInt(v);
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT && ast.kind !== Kind.STRING) throw new GraphQLError('invalid BigInt', { extensions: { code: 'BAD_USER_INPUT' } });
    return BigInt(ast.value);
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
