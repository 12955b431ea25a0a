import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';
import { describeFailure } from '../faults.ts';

export const EVENTS_CHANNEL = 'tenantplane_events';
/** The in-process event carrying a resync notice factory to every notices() iterator. */
const RESYNC = Symbol('resync');
/** The in-process event of every session revocation and user (de)activation, and of each LISTEN reconnect. */
const AUTH_CHANGE = Symbol('auth');
const AUTH_KINDS = new Set(['sessionRevoked', 'userDeactivated', 'userReactivated']);

/** What SessionRevocations (src/auth/revocations.ts) follows: a notice, or a reconnect after which it reloads. */
export type AuthChange =
  | { kind: 'sessionRevoked'; id: string; /** Why (sql/0019: logOut, revoked, passwordChanged, deactivated, reuse). */ reason?: string }
  | { kind: 'userDeactivated' | 'userReactivated'; id: string }
  | { kind: 'resync'; since: Date };
/** The in-process event naming every revoked API key (caches listen to it). */
const API_KEY_REVOKED = Symbol('apiKeyRevoked');

/** A row-change notice sent by a trigger with pg_notify (see sql/0004_audit.sql). It names a row; it carries no data. */
export interface ChangeNotice {
  kind: string;
  tenantId: string;
  id: string;
  /**
   * Set (with an empty `id`) on the notice every subscriber gets after the LISTEN connection came back: notices
   * of its kind and tenant sent since `since` (the database's clock, with a margin) may have been missed, so the
   * subscription re-reads what it shows (visibleEvents' `resync`).
   */
  resync?: { since: Date };
}

export const isResync = (n: ChangeNotice) => n.resync !== undefined;

export interface EventHubOptions {
  /** How often the LISTEN connection proves it is alive (`select now()`); a silent drop is noticed within this plus `heartbeatTimeoutMs`. */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** First reconnect delay, doubled per failed attempt up to `reconnectMaxMs`. */
  reconnectMs?: number;
  reconnectMaxMs?: number;
}

/**
 * How far before the connection was last known alive a resync reaches back: the rows' timestamps come from the
 * clocks of whichever process wrote them (job updates are stamped by the worker), so allow for their skew.
 */
const RESYNC_MARGIN_MS = 30_000;

/**
 * Each API instance LISTENs once on one dedicated connection and fans notices out in process. Subscribers re-read
 * the row under their own context before delivering anything, so a notice never leaks data by itself.
 *
 * The connection is a single point of loss: a restart, a failover or a terminated session drops it, and NOTIFYs
 * sent while nobody listens are gone for good. So it is watched (error, end, and a heartbeat query that also catches
 * a half-open TCP connection), re-established with capped exponential backoff, and after every reconnect each live
 * subscriber gets a resync notice and re-reads its state; revoked sessions are looked up again too.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();
  private client?: pg.Client;
  private closed = false;
  /** The database's clock the last time the LISTEN connection answered. */
  private aliveAt?: Date;
  /** When the connection was lost: set until a reconnect succeeds. */
  private lostSince?: Date;
  private heartbeat?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private attempts = 0;
  private readonly options: Required<EventHubOptions>;
  /** Reconnects so far (tests and logs). */
  reconnects = 0;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    options: EventHubOptions = {},
  ) {
    this.emitter.setMaxListeners(0);
    this.options = { heartbeatMs: 10_000, heartbeatTimeoutMs: 5_000, reconnectMs: 250, reconnectMaxMs: 5_000, ...options };
  }

  /** True while the LISTEN connection is up. */
  get listening() {
    return this.client !== undefined;
  }

  /** The first connection: a failure here is a failed start (the caller's), not retried. */
  async start() {
    await this.connect();
  }

  private async connect() {
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'tenantplane-listen',
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
    });
    let connected = false;
    let lost = false;
    const onLost = (err: unknown) => {
      if (lost || !connected) return; // before connect() resolved, its rejection says what failed
      lost = true;
      clearTimeout(this.heartbeat);
      if (this.client === client) this.client = undefined;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.lostSince ??= new Date();
      this.log.warn({ reason: describeFailure(err) }, 'LISTEN connection lost; reconnecting');
      this.scheduleReconnect();
    };
    client.on('notification', (msg) => this.dispatch(msg.payload));
    client.on('error', onLost);
    client.on('end', () => onLost(new Error('Connection terminated')));
    let now: Date;
    try {
      await client.connect();
      connected = true;
      now = await this.listenOn(client);
    } catch (e) {
      lost = true;
      await client.end().catch(() => undefined);
      throw e;
    }
    if (lost) throw new Error('Connection terminated while starting to LISTEN');
    if (this.closed) {
      lost = true;
      await client.end().catch(() => undefined);
      return;
    }
    const previous = this.aliveAt;
    this.client = client;
    this.aliveAt = now;
    this.attempts = 0;
    this.armHeartbeat(client, onLost);
    if (this.lostSince) {
      // LISTEN is active again before the re-reads start: a change from now on arrives as a notice, an earlier one
      // is found by the re-read.
      const since = new Date((previous ?? now).getTime() - RESYNC_MARGIN_MS);
      this.log.info({ downMs: Date.now() - this.lostSince.getTime() }, 'LISTEN connection re-established; subscriptions resync');
      this.lostSince = undefined;
      this.reconnects++;
      this.emitter.emit(AUTH_CHANGE, { kind: 'resync', since } satisfies AuthChange);
      this.resync(client, since);
    }
  }

  /** LISTEN, and the database's clock at that moment (what a later resync reaches back from). */
  private async listenOn(client: pg.Client): Promise<Date> {
    await client.query(`listen ${EVENTS_CHANNEL}`);
    const { rows } = await client.query<{ now: Date }>('select now() as now');
    return rows[0]!.now;
  }

  private armHeartbeat(client: pg.Client, onLost: (err: unknown) => void) {
    this.heartbeat = setTimeout(async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const answered = client.query<{ now: Date; listening: boolean }>(
          `select now() as now, exists (select 1 from pg_listening_channels() c where c = $1) as listening`,
          [EVENTS_CHANNEL],
        );
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('LISTEN heartbeat timed out')), this.options.heartbeatTimeoutMs);
        });
        const { rows } = await Promise.race([answered, timeout]);
        if (!rows[0]!.listening) throw new Error('the LISTEN connection no longer listens');
        this.aliveAt = rows[0]!.now;
        if (this.client === client) this.armHeartbeat(client, onLost);
      } catch (e) {
        onLost(e);
      } finally {
        clearTimeout(timer);
      }
    }, this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  private scheduleReconnect() {
    if (this.closed || this.retry) return;
    const base = Math.min(this.options.reconnectMaxMs, this.options.reconnectMs * 2 ** this.attempts);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4)); // jittered: many instances do not reconnect in step
    this.attempts++;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect().catch((err) => {
        this.log.debug({ reason: describeFailure(err), attempt: this.attempts }, 'LISTEN reconnect failed; retrying');
        this.scheduleReconnect();
      });
    }, delay);
  }

  private dispatch(payload: string | undefined) {
    if (!payload) return;
    try {
      const notice = JSON.parse(payload) as ChangeNotice;
      // A revoked session or a (de)activated user belongs to no tenant: keyed by its id (sql/0013, sql/0019).
      if (AUTH_KINDS.has(notice.kind)) {
        this.emitter.emit(AUTH_CHANGE, { kind: notice.kind, id: notice.id, reason: (notice as { reason?: string }).reason } as AuthChange);
        if (notice.kind !== 'userReactivated') this.emitter.emit(`${notice.kind}:${notice.id}`);
      }
      // A revoked API key (sql/0021_api_keys.sql): its sockets close, every cache forgets it.
      else if (notice.kind === 'apiKeyRevoked') {
        this.emitter.emit(`apiKeyRevoked:${notice.id}`);
        this.emitter.emit(API_KEY_REVOKED, notice.id);
      }
      else this.emitter.emit(`${notice.kind}:${notice.tenantId}`, notice);
    } catch (e) {
      this.log.warn({ err: e }, 'unreadable notification');
    }
  }

  /**
   * After a reconnect: every live subscriber gets one resync notice (one object per kind and tenant, shared by
   * their subscribers, so same-principal re-reads are shared like any notice's), and the sessions sockets wait on
   * are looked up, since their revocation notice may be among the lost ones.
   */
  private resync(client: pg.Client, since: Date) {
    const notices = new Map<string, ChangeNotice>();
    this.emitter.emit(RESYNC, (kind: string, tenantId: string) => {
      const key = `${kind}:${tenantId}`;
      let n = notices.get(key);
      if (!n) notices.set(key, (n = { kind, tenantId, id: '', resync: { since } }));
      return n;
    });
    const sessions = this.emitter
      .eventNames()
      .filter((e): e is string => typeof e === 'string' && e.startsWith('sessionRevoked:'))
      .map((e) => e.slice('sessionRevoked:'.length));
    const keys = this.emitter
      .eventNames()
      .filter((e): e is string => typeof e === 'string' && e.startsWith('apiKeyRevoked:'))
      .map((e) => e.slice('apiKeyRevoked:'.length));
    if (keys.length) {
      client
        .query<{ id: string }>(`select id::text as id from app_public.api_keys where id = any($1::uuid[]) and revoked_at is not null`, [keys])
        .then(({ rows }) => {
          for (const r of rows) this.emitter.emit(`apiKeyRevoked:${r.id}`);
        })
        .catch((err) => this.log.warn({ reason: describeFailure(err) }, 'could not look up API keys revoked while LISTEN was down'));
    }
    if (!sessions.length) return;
    client
      .query<{ id: string }>(
        `select distinct family_id::text as id from app_private.refresh_tokens where family_id = any($1::uuid[]) and revoked_at is not null`,
        [sessions],
      )
      .then(({ rows }) => {
        for (const r of rows) this.emitter.emit(`sessionRevoked:${r.id}`);
      })
      .catch((err) => this.log.warn({ reason: describeFailure(err) }, 'could not look up sessions revoked while LISTEN was down'));
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
    const onResync = (noticeFor: (kind: string, tenantId: string) => ChangeNotice) => listener(noticeFor(kind, tenantId));
    const stop = () => {
      if (done) return;
      done = true;
      queue = [];
      head = 0;
      emitter.off(event, listener);
      emitter.off(RESYNC, onResync);
      signal.removeEventListener('abort', stop);
      wake?.();
    };
    if (signal.aborted) done = true;
    else {
      emitter.on(event, listener);
      emitter.on(RESYNC, onResync);
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

  /** Calls `onDeactivated` once the user is deactivated (sql/0019); returns the unsubscribe. */
  onUserDeactivated(userId: string, onDeactivated: () => void): () => void {
    const event = `userDeactivated:${userId}`;
    this.emitter.once(event, onDeactivated);
    return () => this.emitter.off(event, onDeactivated);
  }

  /** Every session revocation, user (de)activation and LISTEN reconnect, for as long as the process lives. */
  onAuthChange(listener: (change: AuthChange) => void) {
    this.emitter.on(AUTH_CHANGE, listener);
    return () => this.emitter.off(AUTH_CHANGE, listener);
  }

  /** Calls `onRevoked` once the API key is revoked (by any instance); returns the unsubscribe. */
  onApiKeyRevoked(keyId: string, onRevoked: () => void): () => void {
    const event = `apiKeyRevoked:${keyId}`;
    this.emitter.once(event, onRevoked);
    return () => this.emitter.off(event, onRevoked);
  }

  /** Calls `listener` with the id of every API key revoked from now on; returns the unsubscribe. */
  onAnyApiKeyRevoked(listener: (keyId: string) => void): () => void {
    this.emitter.on(API_KEY_REVOKED, listener);
    return () => this.emitter.off(API_KEY_REVOKED, listener);
  }

  /** Shutting down: a lost connection is expected from now on, not worth a reconnect or an error log. */
  stopping() {
    this.closed = true;
  }

  async close() {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
