/**
 * The Tenantplane SDK: a typed client plus one TypedDocumentNode (and its result/variables types) per operation in
 * schema/operations. Regenerate the documents with `npm run sdk`.
 */
export {
  createTenantplaneClient,
  webSocketUrl,
  TenantplaneError,
  type TenantplaneClient,
  type TenantplaneClientOptions,
  type TenantplaneSubscription,
  type VariablesOf,
  type Lazy,
} from './client.ts';
export * from './generated/graphql.ts';
