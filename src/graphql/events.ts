import { EventEmitter, on } from 'node:events';
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
        this.emitter.emit(`${notice.kind}:${notice.tenantId}`, notice);
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

  /** Notices of one kind for one tenant, buffered per subscriber (a slow one never stalls the others). */
  notices(kind: string, tenantId: string, signal: AbortSignal): AsyncIterable<ChangeNotice> {
    const source = on(this.emitter, `${kind}:${tenantId}`, { signal });
    return (async function* () {
      try {
        for await (const [notice] of source) yield notice as ChangeNotice;
      } catch (e) {
        if ((e as Error).name !== 'AbortError') throw e;
      }
    })();
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
