import type { RequestTransaction, Tx } from '../db/database.ts';
import type { RequestServices } from '../services.ts';

/** The GraphQL context of one request (HTTP) or one subscription operation (WebSocket). */
export interface Context {
  requestId: string;
  userId: string | null;
  /** The session (refresh-token family, the access token's `sid`) the request came with; null for OIDC tokens. */
  sessionId?: string | null;
  tenant: string | null;
  /** The API key authenticating this request (then `userId` is its creator and `tenant` its tenant's id), or null. */
  apiKeyId: string | null;
  ip: string | null;
  userAgent: string | null;
  /**
   * The request's transaction (app role, app.* set). Pothos' Prisma plugin reads it. For subscriptions it is
   * replaced by a fresh transaction for each event.
   */
  db: Tx;
  /** The HTTP request's open transaction, committed or rolled back by the server plugin once the response is known. */
  transaction?: RequestTransaction;
  services: RequestServices;
  /** Work to run after the request's transaction rolled back (e.g. recording a failed mutation in the audit log). */
  afterRollback: Array<() => Promise<void>>;
  /** Work to run once the request's transaction committed (e.g. this process refusing a revoked session's tokens). */
  afterCommit?: Array<() => void>;
  /** Permissions checked while the current mutation field runs (src/graphql/permissions.ts enforces its declaration). */
  checkedPermissions?: Set<string>;
}
