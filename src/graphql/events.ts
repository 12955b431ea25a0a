import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';

export const EVENTS_CHANNEL = 'tenantplane_events';

/** A row-change notice sent by a trigger with pg_notify (see sql/0004_audit.sql). It names a row; it carries no data. */
export interface ChangeNotice {
  kind: string;
  tenantId: string;
  id: string;
}

/**
 * Each API instance LISTENs once on one dedicated connection and fans notices out in process. Subscribers re-read
 * the row under their own context before delivering anything, so a notice never leaks data by itself.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();
  private client?: pg.Client;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start() {
    const client = new pg.Client({ connectionString: this.url, application_name: 'tenantplane-listen' });
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      try {
        const notice = JSON.parse(msg.payload) as ChangeNotice;
        // A revoked session belongs to no tenant: keyed by its id (sql/0013_session_revocation.sql).
        if (notice.kind === 'sessionRevoked') this.emitter.emit(`sessionRevoked:${notice.id}`);
        else this.emitter.emit(`${notice.kind}:${notice.tenantId}`, notice);
      } catch (e) {
        this.log.warn({ err: e }, 'unreadable notification');
      }
    });
    client.on('error', (err) => {
      this.client = undefined;
      if (this.closed) return;
      this.log.error({ err }, 'LISTEN connection lost; reconnecting');
      if (!this.closed) setTimeout(() => this.start().catch((e) => this.log.error({ err: e }, 'LISTEN reconnect failed')), 1000);
    });
    await client.connect();
    await client.query(`listen ${EVENTS_CHANNEL}`);
    this.client = client;
  }

  /**
   * Notices of one kind for one tenant, buffered per subscriber (a slow one never stalls the others), from the
   * moment of the call until `signal` aborts or the consumer returns. A plain queue rather than events.on(): that
   * one allocates a 2,048-slot FixedQueue per iterator (~35 KiB of heap per subscription; bench/subscription-fanout.ts).
   */
  notices(kind: string, tenantId: string, signal: AbortSignal): AsyncIterable<ChangeNotice> & AsyncIterator<ChangeNotice> {
    const event = `${kind}:${tenantId}`;
    const emitter = this.emitter;
    let queue: ChangeNotice[] = [];
    let head = 0;
    let done = false;
    let wake: (() => void) | undefined;
    const listener = (notice: ChangeNotice) => {
      queue.push(notice);
      wake?.();
    };
    const stop = () => {
      if (done) return;
      done = true;
      queue = [];
      head = 0;
      emitter.off(event, listener);
      signal.removeEventListener('abort', stop);
      wake?.();
    };
    if (signal.aborted) done = true;
    else {
      emitter.on(event, listener);
      signal.addEventListener('abort', stop, { once: true });
    }
    const ended = { value: undefined, done: true } as const;
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<ChangeNotice>> {
        while (head === queue.length && !done) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        if (done) return ended;
        const value = queue[head++]!;
        if (head === queue.length) {
          queue = [];
          head = 0;
        }
        return { value, done: false };
      },
      async return(): Promise<IteratorResult<ChangeNotice>> {
        stop();
        return ended;
      },
    };
  }

  /** Calls `onRevoked` once the session (refresh-token family) is revoked; returns the unsubscribe. */
  onSessionRevoked(sessionId: string, onRevoked: () => void): () => void {
    const event = `sessionRevoked:${sessionId}`;
    this.emitter.once(event, onRevoked);
    return () => this.emitter.off(event, onRevoked);
  }

  /** Shutting down: a lost connection is expected from now on, not worth a reconnect or an error log. */
  stopping() {
    this.closed = true;
  }

  async close() {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }
}
