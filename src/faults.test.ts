import { describe, expect, it } from 'vitest';
import { describeFailure, markStorageError, unreachable } from './faults.ts';

/** The shapes node-postgres, Prisma's adapter, Prisma and the AWS SDK gave for real faults (test/faults-*.test.ts). */
const socket = (code: string, port: number) => Object.assign(new Error(`connect ${code} 127.0.0.1:${port}`), { code, errno: -111, syscall: 'connect', address: '127.0.0.1', port });
const prisma57P01 = Object.assign(new Error('Invalid `ctx.db.tenant.findMany()` invocation: Database error. Code: `57P01`'), {
  name: 'PrismaClientKnownRequestError',
  code: 'P2039',
  meta: { driverAdapterError: { name: 'DriverAdapterError', cause: { originalCode: '57P01', originalMessage: 'terminating connection due to administrator command', kind: 'postgres' } } },
});

describe('describeFailure', () => {
  it('names the database for PostgreSQL connection faults, however wrapped', () => {
    expect(describeFailure(prisma57P01)).toBe('the database is unreachable (the server terminated the session: an administrator, a restart or a failover)');
    expect(describeFailure(new Error('Client has encountered a connection error and is not queryable'))).toBe('the database is unreachable (the connection was lost)');
    expect(describeFailure(new Error('Connection terminated unexpectedly'))).toBe('the database is unreachable (the connection was closed)');
    expect(describeFailure(socket('ECONNREFUSED', 5432))).toBe('the database is unreachable (connection refused at 127.0.0.1:5432)');
    expect(describeFailure(Object.assign(new Error('x'), { code: '08006' }))).toBe('the database is unreachable (connection failure, SQLSTATE 08006)');
    expect(describeFailure(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toMatch(/^the database is unreachable \(the server is starting up/);
    expect(unreachable({ name: 'DriverAdapterError', cause: { kind: 'DatabaseNotReachable', host: 'db', port: 5432 } })).toEqual({ what: 'database', detail: 'the server cannot be reached at db:5432' });
  });

  it('names object storage for errors of the S3 client', () => {
    expect(describeFailure(markStorageError(socket('ECONNREFUSED', 4787)))).toBe('object storage is unreachable (connection refused at 127.0.0.1:4787)');
    const aggregate = markStorageError(Object.assign(new AggregateError([socket('ECONNREFUSED', 4787)], ''), { code: 'ECONNREFUSED' }));
    expect(unreachable(aggregate)?.what).toBe('storage');
  });

  it('leaves every other failure as it was', () => {
    expect(describeFailure(new Error('the file is declared text/plain but is not valid UTF-8 text'))).toBe('the file is declared text/plain but is not valid UTF-8 text');
    expect(unreachable(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBeUndefined();
    expect(unreachable(markStorageError(Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } })))).toBeUndefined();
    expect(describeFailure('plain')).toBe('plain');
  });
});
