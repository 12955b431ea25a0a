/**
 * The client side of bench/subscription-fanout.ts, in its own process (spawned with `--import tsx` and an IPC
 * channel) so that 1,000 WebSocket clients never share the API's event loop.
 *
 * Parent → child: `start` (URL, tokens, query, count), `report`, `stop`.
 * Child → parent: `connected` (all subscribed, as far as the client can tell), `ready` (every client has received
 * at least one update: every subscription is live on the server, whichever process serves it), `complete` (every
 * client has received update `seq`), `report` (latencies), `stopped`.
 *
 * Each measured update carries its send time in the job's step (`fanout:<seq>:<epoch ms>`); the receipt time is
 * taken in the client's `next` callback with the same clock (`performance.timeOrigin + performance.now()`).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface StartMessage {
  type: 'start';
  wsUrl: string;
  tokens: string[];
  query: string;
  variables: Record<string, unknown>;
  field: string;
  count: number;
  /** Connections opened at once while ramping up. */
  batch: number;
}
export type ParentMessage = StartMessage | { type: 'report' } | { type: 'stop' };
export type ChildMessage =
  | { type: 'connected'; clients: number; connectMs: number; failures: string[] }
  | { type: 'ready' }
  | { type: 'complete'; seq: number }
  | { type: 'report'; latencies: number[][]; errors: string[]; closed: number; other: number }
  | { type: 'stopped' }
  | { type: 'fatal'; error: string };

const now = () => performance.timeOrigin + performance.now();
const send = (m: ChildMessage) => process.send!(m);
const STEP = /^fanout:(\d+):([\d.]+)$/;

let clients: Client[] = [];
/** latencies[client][seq] (ms), NaN until received. */
const latencies: number[][] = [];
const receivedBy = new Map<number, number>();
/** Clients that have received at least one update (any seq). */
const live: boolean[] = [];
let liveCount = 0;
const errors: string[] = [];
let closed = 0;
let other = 0;
let stopping = false;

async function start(m: StartMessage) {
  const t0 = Date.now();
  const failures: string[] = [];
  for (let first = 0; first < m.count; first += m.batch) {
    const opened: Promise<void>[] = [];
    for (let i = first; i < Math.min(m.count, first + m.batch); i++) {
      latencies[i] = [];
      const token = m.tokens[i % m.tokens.length]!;
      const client = createClient({
        url: m.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: (e) => failures.push(`client ${i}: ${String((e as { code?: number }).code ?? e)}`),
      });
      clients.push(client);
      opened.push(
        new Promise<void>((resolve) => {
          const off = client.on('connected', () => {
            off();
            resolve();
          });
          const offClosed = client.on('closed', () => {
            offClosed();
            if (!stopping) closed++;
            resolve();
          });
        }),
      );
      client.subscribe(
        { query: m.query, variables: m.variables },
        {
          next: (v) => {
            const at = now();
            if (v.errors?.length) {
              errors.push(`client ${i}: ${JSON.stringify(v.errors).slice(0, 300)}`);
              return;
            }
            const step = (v.data?.[m.field] as { step?: string } | undefined)?.step ?? '';
            const match = STEP.exec(step);
            if (!match) {
              other++;
              return;
            }
            const seq = Number(match[1]);
            if (!live[i]) {
              live[i] = true;
              if (++liveCount === m.count) send({ type: 'ready' });
            }
            if (!Number.isNaN(latencies[i]![seq] ?? NaN)) return; // a duplicate delivery counts once
            latencies[i]![seq] = at - Number(match[2]);
            const n = (receivedBy.get(seq) ?? 0) + 1;
            receivedBy.set(seq, n);
            if (n === m.count) send({ type: 'complete', seq });
          },
          error: (e) => errors.push(`client ${i}: ${e instanceof Error ? e.message : JSON.stringify(e).slice(0, 300)}`),
          complete: () => {
            if (!stopping) errors.push(`client ${i}: subscription completed by the server`);
          },
        },
      );
    }
    await Promise.all(opened);
  }
  send({ type: 'connected', clients: clients.length, connectMs: Date.now() - t0, failures });
}

process.on('message', (m: ParentMessage) => {
  if (m.type === 'start') {
    start(m).catch((e) => send({ type: 'fatal', error: String(e?.stack ?? e) }));
  } else if (m.type === 'report') {
    // JSON over IPC: NaN would become null, so "not received" is sent as -1.
    send({ type: 'report', latencies: latencies.map((row) => Array.from(row, (x) => (x === undefined || Number.isNaN(x) ? -1 : x))), errors, closed, other });
  } else if (m.type === 'stop') {
    stopping = true;
    Promise.all(clients.map((c) => c.dispose()))
      .catch(() => undefined)
      .then(() => {
        clients = [];
        send({ type: 'stopped' });
        setTimeout(() => process.exit(0), 50);
      });
  }
});
process.on('disconnect', () => process.exit(0));
