import type { CodegenConfig } from '@graphql-codegen/cli';

/**
 * The typed SDK: operation result/variable types and TypedDocumentNodes, generated from the checked-in schema
 * (never a running server) and the operations in schema/operations. Run `npm run sdk` after changing either;
 * the output in src/sdk/generated is committed.
 */
export const SDK_OUTPUT = 'src/sdk/generated/graphql.ts';

export const scalars = {
  DateTime: 'string',
  JSON: 'unknown',
  BigInt: 'number',
  ID: 'string',
} as const;

const config: CodegenConfig = {
  overwrite: true,
  schema: 'schema/schema.graphql',
  documents: ['schema/operations/*.graphql'],
  noSilentErrors: true,
  generates: {
    [SDK_OUTPUT]: {
      // typescript-operations (v6) also emits the enums and input types the operations use: no `typescript` plugin.
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        scalars,
        // An unmapped custom scalar fails the build instead of silently becoming `any`.
        strictScalars: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
