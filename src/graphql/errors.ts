import { GraphQLError } from 'graphql';
import { unavailableMessage, unreachable, type Dependency } from '../faults.ts';

/** The error codes of the public contract (extensions.code). */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  /** The database or object storage could not be reached: the request failed, try again (HTTP 503). */
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401, SERVICE_UNAVAILABLE: 503 };

/** An error a client may see as is. Anything else is masked as INTERNAL_SERVER_ERROR with a request id. */
export class AppError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions, ...(HTTP_STATUS[code] ? { http: { status: HTTP_STATUS[code] } } : {}) } });
  }
}

export const badInput = (field: string, message: string) => new AppError('BAD_USER_INPUT', message, { field });
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
export const forbidden = (message: string) => new AppError('FORBIDDEN', message);
export const conflict = (message: string, field?: string) => new AppError('CONFLICT', message, field ? { field } : {});
export const quotaExceeded = (message: string) => new AppError('QUOTA_EXCEEDED', message);
/** A connection fault of PostgreSQL or S3 (src/faults.ts), as the client sees it: retryable, no detail. */
export const serviceUnavailable = (what: Dependency) => new AppError('SERVICE_UNAVAILABLE', unavailableMessage(what));
/** One answer for every authentication failure: never say which check failed. */
export const unauthenticated = () => new AppError('UNAUTHENTICATED', 'authentication required: the token is missing, invalid or expired');

/** SQLSTATE of a database error, however Prisma and its adapter wrapped it (P2002/P2025 for Prisma's own). */
export function sqlState(e: unknown): string | undefined {
  const err = e as any;
  const cause = err?.meta?.driverAdapterError?.cause ?? err?.cause;
  if (cause?.originalCode) return String(cause.originalCode);
  if (cause?.kind === 'UniqueConstraintViolation' || err?.code === 'P2002') return '23505';
  if (err?.code === 'P2025') return 'P2025';
  if (typeof err?.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) && !err.code.startsWith('P')) return err.code;
  return undefined;
}

/** The message a SQL function raised (TP* errors carry a human message meant for the client). */
function sqlMessage(e: unknown): string {
  const err = e as any;
  const cause = err?.meta?.driverAdapterError?.cause ?? err?.cause;
  return String(cause?.originalMessage ?? err?.message ?? e);
}

/** The column a SQL error names (`raise … using column = 'x'`), however Prisma's adapter wrapped it. */
export function sqlColumn(e: unknown): string | undefined {
  const err = e as any;
  const cause = err?.meta?.driverAdapterError?.cause ?? err?.cause;
  const column = cause?.column ?? err?.column;
  return typeof column === 'string' ? column : undefined;
}

/**
 * Maps our SQL functions' TP* codes (sql/) and common constraint errors to contract errors; else rethrows. A TPIN0
 * naming a column (`using column = …`) is reported on the input field `columns` maps it to, else on `field`.
 */
export function translateDatabaseError(e: unknown, hints: { uniqueViolation?: AppError; field?: string; columns?: Record<string, string> } = {}): never {
  if (e instanceof AppError) throw e;
  const fault = unreachable(e);
  if (fault) throw serviceUnavailable(fault.what);
  const state = sqlState(e);
  switch (state) {
    case 'TPNF0':
      throw new AppError('NOT_FOUND', sqlMessage(e));
    case 'TPCF0':
      throw new AppError('CONFLICT', sqlMessage(e));
    case 'TPQU0':
      throw new AppError('QUOTA_EXCEEDED', sqlMessage(e));
    case 'TPIN0':
      throw new AppError('BAD_USER_INPUT', sqlMessage(e), { field: hints.columns?.[sqlColumn(e) ?? ''] ?? hints.field ?? 'input' });
    case 'TPFB0':
      throw new AppError('FORBIDDEN', sqlMessage(e));
    case 'TPUA0':
      throw unauthenticated();
    case '23505':
      throw hints.uniqueViolation ?? new AppError('CONFLICT', 'this already exists');
    case 'P2025':
      throw notFound('object');
    case '42501':
      // Row-level security refused a write: answer like a missing object.
      throw notFound('object');
  }
  throw e;
}

/**
 * An error raised by our own SQL (a TP* SQLSTATE: quota and lifecycle triggers, definer functions) as the contract
 * error it stands for, wherever it surfaced; any other error as is (masked later if it is not ours).
 */
export function contractError(e: unknown): unknown {
  if (e instanceof AppError) return e;
  if (!sqlState(e)?.startsWith('TP')) return e;
  try {
    translateDatabaseError(e);
  } catch (mapped) {
    return mapped;
  }
  return e;
}
