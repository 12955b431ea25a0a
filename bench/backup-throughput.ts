/**
 * Backup throughput: MB/s of table data for a site of BENCH_SITE_MB (default 1024) backed up into the embedded S3,
 * and the restore of that backup; with the machine's floors for the same data measured in the same run.
 *
 * - The API runs in this process (`startApp`, production mode, in-process pg-boss workers, embedded S3 (s3rver) in a
 *   temp dir). A tenant (enterprise plan) and its OWNER are inserted with SQL; everything else goes through GraphQL
 *   and the real jobs: `createSite` (apps notes + crm) → the `site-provision` job, `backupSite` → `site-backup`,
 *   `restoreSite` → `site-restore`, each run by the in-process worker exactly as in production.
 * - The site's three tables are filled set-based (insert … select … generate_series) to ~BENCH_SITE_MB of
 *   pg_total_relation_size (heap + TOAST + indexes), then `vacuum analyze`. See fillSite() for what the rows are.
 * - Phases are taken from the job's `step` column, polled every 50 ms (and the job's own phase timings, when its
 *   log has them); job durations from its started_at / completed_at.
 * - Floors, same data, same run: COPY … TO STDOUT of every table into /dev/null (database read); the same through
 *   the archive's codec into local files (database read + compression); those files decompressed into COPY FROM …
 *   WITH (FREEZE) of fresh tables in one transaction (a restore's load without S3); codecs and hashes on a sample in
 *   memory (one thread); a PutObject / a multipart upload / a GetObject + sha256 of as many bytes as the archive
 *   stored, against the same s3rver. CPU seconds of this process and of the PostgreSQL server (/proc) for each.
 *
 * Knobs: BENCH_SITE_MB (1024), BENCH_CPU_PROF=<prefix> (writes <prefix>-backup.cpuprofile and
 * <prefix>-restore.cpuprofile of this process during each job), BENCH_ROW_CHECK=0 skips the before/after row check.
 * Standalone: `npx tsx bench/backup-throughput.ts` (a fresh database tp_bench_<pid> on BENCH_DATABASE_URL's server,
 * else on an embedded PostgreSQL 18; dropped at the end).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import pino from 'pino';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { loadConfig } from '../src/config.ts';
import { startApp, type RunningApp } from '../src/app.ts';
import { migrate } from '../src/db/migrate.ts';
import { PART_SIZE } from '../src/storage/s3.ts';
import { TABLE_COMPRESSION, type Manifest } from '../src/modules/backups/archive.ts';
import { LineCounter } from '../src/modules/backups/objects.ts';
import { createBenchDatabase } from './db.ts';
import { exitCleanly } from './common.ts';

const MiB = 1024 * 1024;
/** The archive's compression of table parts (what the floors compare against). */
const ARCHIVE_CODEC = { name: TABLE_COMPRESSION.codec as string, level: TABLE_COMPRESSION.level };
/** The archive's multipart settings (lib-storage). */
const ARCHIVE_UPLOAD = { partSize: PART_SIZE, queueSize: 2 };

/** CPU seconds spent meanwhile: this process (all its threads: API, worker, zlib pool, s3rver) and the PostgreSQL server. */
export interface Cpu {
  node: number;
  postgres: number | null;
}

export interface Timed {
  seconds: number;
  bytes: number;
  cpu?: Cpu;
}

export interface JobTiming {
  status: string;
  /** completed_at − started_at of the job row (the handler's wall time, database clock). */
  seconds: number;
  /** Seconds per phase (polled steps, or the job's own timings when it logs them). */
  phases: Record<string, number>;
  cpu?: Cpu;
  error: string | null;
  logs: string[];
}

export interface BackupThroughputResult {
  siteMB: number;
  tables: Array<{ name: string; rows: number; totalBytes: number; heapBytes: number; toastBytes: number; indexBytes: number; copyBytes: number; storedBytes: number }>;
  /** Sum of pg_total_relation_size of the site's tables (heap + TOAST + indexes): "table data". */
  tableBytes: number;
  /** COPY text (manifest rawBytes) and what the archive stored for the tables (manifest bytes). */
  copyBytes: number;
  storedBytes: number;
  backup: JobTiming;
  restore: JobTiming;
  floors: {
    copyRead: Timed;
    copyCompress: Timed;
    load: Timed;
    s3Put: Timed;
    s3Multipart: Timed;
    s3GetHash: Timed;
    codecs: Array<{ what: string; mbPerCpuSecond: number; ratio?: number }>;
  };
  fillSeconds: number;
}

const mb = (bytes: number) => bytes / MiB;
const rate = (bytes: number, seconds: number) => (seconds > 0 ? mb(bytes) / seconds : NaN);
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const now = () => performance.now() / 1000;
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

/**
 * CPU time of the PostgreSQL server when it runs on this machine (its postmaster.pid is readable): the postmaster's
 * own and reaped children's time plus every live child's (/proc). Null when it cannot be read (a remote server).
 */
async function postgresCpu(c: pg.Client): Promise<() => number | null> {
  const tick = 100; // USER_HZ
  let pm: number | undefined;
  try {
    const dir = (await c.query<{ d: string }>(`select current_setting('data_directory') as d`)).rows[0]!.d;
    pm = Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return () => null;
  }
  const stat = (pid: string) => {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return f.slice(f.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  };
  return () => {
    const own = stat(String(pm));
    if (!own) return null;
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const f = stat(pid);
      if (f && Number(f[1]) === pm) ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks / tick;
  };
}

let readPostgresCpu: () => number | null = () => null;

/** Starts counting CPU time; the function it returns gives the CPU seconds since. */
function cpuMeter(): () => Cpu {
  const node0 = process.cpuUsage();
  const pg0 = readPostgresCpu();
  return () => {
    const n = process.cpuUsage(node0);
    const p = readPostgresCpu();
    return { node: (n.user + n.system) / 1e6, postgres: p === null || pg0 === null ? null : p - pg0 };
  };
}

const cpuText = (c: Cpu | undefined, bytes: number) =>
  c ? `CPU node ${f1(c.node)} s + postgres ${c.postgres === null ? '?' : f1(c.postgres)} s = ${f1((100 * (c.node + (c.postgres ?? 0))) / mb(bytes))} CPU-s per 100 MB` : '';

const CREATE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { site { id } job { id } } }`;
const BACKUP = `mutation($s: ID!) { backupSite(siteId: $s) { backup { id status } job { id } } }`;
const RESTORE = `mutation($s: ID!, $b: ID!) { restoreSite(siteId: $s, backupId: $b) { site { status } job { id } } }`;

async function gql(app: RunningApp, token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data?: any; errors?: unknown[] };
  if (res.status !== 200 || json.errors) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(json).slice(0, 800)}`);
  return json.data;
}

/**
 * Polls a job row every 50 ms until it ends; the first time each step is seen is its start. The job's own phase
 * timings win where its log has them (a line `timings: {"phase": seconds, …}`).
 */
async function waitForJob(c: pg.Client, jobId: string, phaseOf: (steps: Array<{ step: string; at: number }>, end: number) => Record<string, number>): Promise<JobTiming> {
  const steps: Array<{ step: string; at: number }> = [];
  const meter = cpuMeter();
  for (;;) {
    const r = await c.query<{ status: string; step: string | null; seconds: number | null; error: string | null; logs: string[] }>(
      `select status, step, extract(epoch from completed_at - started_at)::float8 as seconds, error, logs from app_public.jobs where id = $1`,
      [jobId],
    );
    const j = r.rows[0];
    if (!j) throw new Error(`job ${jobId} not found`);
    const t = now();
    if (j.step && steps[steps.length - 1]?.step !== j.step) steps.push({ step: j.step, at: t });
    if (j.status === 'COMPLETED' || j.status === 'FAILED' || j.status === 'CANCELLED') {
      const own = j.logs.map((l) => /^timings: (\{.*\})$/.exec(l)?.[1]).filter(Boolean).pop();
      const phases = own ? (JSON.parse(own) as Record<string, number>) : phaseOf(steps, t);
      return { status: j.status, seconds: j.seconds ?? NaN, phases, cpu: meter(), error: j.error, logs: j.logs };
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

const firstAt = (steps: Array<{ step: string; at: number }>, match: (s: string) => boolean) => steps.find((s) => match(s.step))?.at;

function backupPhases(steps: Array<{ step: string; at: number }>, end: number) {
  const tables = firstAt(steps, (s) => s.startsWith('table '));
  const verifying = firstAt(steps, (s) => s === 'verifying');
  const manifest = firstAt(steps, (s) => s === 'writing manifest');
  const out: Record<string, number> = {};
  if (tables !== undefined && verifying !== undefined) out['dump + upload'] = verifying - tables;
  if (verifying !== undefined) out['verify'] = (manifest ?? end) - verifying;
  if (manifest !== undefined) out['manifest'] = end - manifest;
  return out;
}

function restorePhases(steps: Array<{ step: string; at: number }>, end: number) {
  const verifying = firstAt(steps, (s) => s === 'verifying archive' || s === 'verifying');
  const load = firstAt(steps, (s) => s === 'restoring' || s.startsWith('table '));
  const post = firstAt(steps, (s) => s === 'constraints and indexes');
  const swap = firstAt(steps, (s) => s.startsWith('swapping'));
  const out: Record<string, number> = {};
  if (verifying !== undefined && load !== undefined) out['verify'] = load - verifying;
  if (load !== undefined && post !== undefined) out['load'] = post - load;
  if (post !== undefined && swap !== undefined) out['constraints + indexes + commit'] = swap - post;
  if (swap !== undefined) out['swap + files + health'] = end - swap;
  return out;
}

/**
 * Fills the site's tables (apps notes + crm) to about `targetBytes` of pg_total_relation_size, set-based, as the
 * privileged role. Deterministic (every value comes from hashint8 of the row number). What the rows are:
 * - notes (~70 % of the bytes): title = 20–83 characters and body = 0–7,000 characters (skewed: median ~1.2 kB,
 *   mean ~2 kB, the long ones TOASTed and pglz-compressed as PostgreSQL does) cut at random offsets out of a ~31 MB
 *   text of pseudo-words (8,192 words of 1–4 syllables, Zipf-like frequencies, sentences, commas, paragraphs), 0–3
 *   tags out of 20, created_at over 3 years with microseconds.
 * - contacts (~12 %): "First Last" names from syllables, e-mail derived from them (1 in 16 NULL), company out of
 *   1,600 (1 in 8 NULL), created_at over 5 years.
 * - deals (~18 %): contact_id uniform over the contacts, amount numeric(14,2) skewed towards small values, stage out
 *   of 7 (skewed), created_at over 5 years. Inserted with session_replication_role = replica (the foreign-key
 *   trigger per row would triple the fill time; the ids are valid by construction and counted afterwards).
 * COPY text of this compresses 2.3× (gzip -1) to 2.9× (gzip -6): text-like, not repetitive, not random.
 */
export async function fillSite(url: string, schema: string, targetBytes: number, log: (m: string) => void) {
  // Two sessions: notes on one, contacts then deals on the other (the fill is not what is measured).
  const c = new pg.Client({ connectionString: url });
  const d = new pg.Client({ connectionString: url });
  await c.connect();
  await d.connect();
  try {
    await Promise.all([fillNotes(c, schema, targetBytes, log), fillCrm(d, schema, targetBytes, log)]);
    const t = now();
    for (const table of ['notes', 'contacts', 'deals']) await c.query(`vacuum analyze "${schema}"."${table}"`);
    log(`  vacuum analyze (${(now() - t).toFixed(1)} s)`);
  } finally {
    await c.end();
    await d.end();
  }
}

const fillRows = (targetBytes: number) => ({
  // Bytes of pg_total_relation_size per row (measured on this data set) and each table's share of the total.
  notes: Math.max(1000, Math.round((0.7 * targetBytes) / 1620)),
  contacts: Math.max(1000, Math.round((0.12 * targetBytes) / 123)),
  deals: Math.max(1000, Math.round((0.18 * targetBytes) / 94)),
});
const SYLLABLES = `array['ka','lo','mi','ne','ra','to','su','vi','den','mar','tel','pro','con','sta','ber','lin','gar','fo','qui','zen','al','es','ur','ing','tion','ex','pa','ro','sel','da','an','the','or','in','ly','ment','ver','is','ca','ter']`;
/** Uniform in [0, 1) from a hash of `expr`. */
const uniform = (expr: string) => `((hashint8(${expr}) & 2147483647) / 2147483648.0::float8)`;

async function fillNotes(c: pg.Client, schema: string, targetBytes: number, log: (m: string) => void) {
  const S = `"${schema}"`;
  const rows = fillRows(targetBytes);
  const syllables = SYLLABLES;
  const u = uniform;
  await c.query(`set synchronous_commit = off; set work_mem = '256MB'`);
  let t = now();
  await c.query(`create temp table bench_words as
    select i, (select string_agg((${syllables})[1 + (hashint4(i * 7 + k) & 2147483647) % 40], '') from generate_series(0, hashint4(i) & 3) k) as w
      from generate_series(0, 8191) i`);
  await c.query(`analyze bench_words`);
  await c.query(`create temp table bench_corpus (b bytea, n int)`);
  // EXTERNAL: substring() of it then reads only the TOAST chunks it needs.
  await c.query(`alter table bench_corpus alter column b set storage external`);
  await c.query(`insert into bench_corpus (b)
    select convert_to(string_agg(case when (hashint4(k) & 127) = 0 then w.w || E'.\\n\\n' when (hashint4(k) & 15) = 0 then w.w || '.'
                                      when (hashint4(k) & 15) = 1 then initcap(w.w) when (hashint4(k) & 31) = 2 then w.w || ',' else w.w end, ' '), 'UTF8')
      from generate_series(1, 4200000) k
      join bench_words w on w.i = (8192 * ${u('k * 131')} ^ 3)::int & 8191`);
  await c.query(`update bench_corpus set n = length(b) - 8000`);
  log(`  corpus of pseudo-words: ${(await c.query(`select length(b) as n from bench_corpus`)).rows[0].n} bytes (${(now() - t).toFixed(1)} s)`);

  t = now();
  await c.query(
    `insert into ${S}.notes (title, body, tags, created_at)
     select initcap(convert_from(substring(c.b from 1 + (hashint8(g * 3 + 1) & 2147483647) % c.n for 20 + (hashint8(g * 5 + 1) & 63)), 'UTF8')),
            convert_from(substring(c.b from 1 + (hashint8(g * 3 + 2) & 2147483647) % c.n for (7000 * ${u('g * 7 + 2')} ^ 2.5)::int), 'UTF8'),
            (array['work','home','ideas','todo','urgent','later','meeting','draft','review','personal','travel','finance','health','reading','project-x','q3','q4','customer','support','design'])
              [1 + (hashint8(g * 3 + 3) & 15) : (hashint8(g * 3 + 3) & 15) + (hashint8(g * 5) & 3)],
            timestamptz '2023-01-01 00:00:00+00' + (hashint8(g * 3 + 4) & 281474976710655) % 94608000000000 * interval '1 microsecond'
       from generate_series(1, $1::int) g cross join bench_corpus c`,
    [rows.notes],
  );
  log(`  notes: ${rows.notes} rows (${(now() - t).toFixed(1)} s)`);
  await c.query(`drop table bench_corpus; drop table bench_words`);
}

async function fillCrm(c: pg.Client, schema: string, targetBytes: number, log: (m: string) => void) {
  const S = `"${schema}"`;
  const rows = fillRows(targetBytes);
  const syllables = SYLLABLES;
  const u = uniform;
  await c.query(`set synchronous_commit = off`);
  let t = now();
  await c.query(
    `insert into ${S}.contacts (name, email, company, created_at)
     select initcap(f) || ' ' || initcap(l),
            case when (h & 15) = 0 then null
                 else f || '.' || l || case when (h & 48) = 0 then ((h >> 8) & 255)::text else '' end || '@' || coalesce(co, 'mail')
                      || case (h >> 20) & 3 when 0 then '.com' when 1 then '.io' when 2 then '.de' else '.co.uk' end end,
            case when co is null then null else initcap(co) || case (h >> 24) & 3 when 0 then ' Inc.' when 1 then ' GmbH' when 2 then ' Ltd' else '' end end,
            timestamptz '2021-01-01 00:00:00+00' + (h & 281474976710655) % 157680000000000 * interval '1 microsecond'
       from (select g, hashint8(g * 11 + 1) as h,
                    s[1 + (hashint8(g * 11 + 2) & 2147483647) % 40] || s[1 + (hashint8(g * 11 + 3) & 2147483647) % 40]
                      || case when (g & 1) = 0 then s[1 + (hashint8(g * 11 + 4) & 2147483647) % 40] else '' end as f,
                    s[1 + (hashint8(g * 11 + 5) & 2147483647) % 40] || s[1 + (hashint8(g * 11 + 6) & 2147483647) % 40] || s[1 + (hashint8(g * 11 + 7) & 2147483647) % 40] as l,
                    case when (hashint8(g * 11 + 8) & 7) = 0 then null
                         else s[1 + ((hashint8(g * 11 + 9) & 2147483647) % 1600) / 40] || s[1 + ((hashint8(g * 11 + 9) & 2147483647) % 1600) % 40] || 'ex' end as co
               from generate_series(1, $1::int) g, (select ${syllables} as s) a) x`,
    [rows.contacts],
  );
  log(`  contacts: ${rows.contacts} rows (${(now() - t).toFixed(1)} s)`);

  t = now();
  const ids = (await c.query<{ lo: string; n: string }>(`select min(id)::text as lo, count(*)::text as n from ${S}.contacts`)).rows[0]!;
  const replica = await c.query(`set session_replication_role = replica`).then(
    () => true,
    () => false,
  );
  await c.query(
    `insert into ${S}.deals (contact_id, amount, stage, created_at)
     select $2::bigint + (hashint8(g * 13 + 1) & 2147483647) % $3::bigint,
            round((${u('g * 13 + 2')} ^ 3 * 250000)::numeric, 2),
            (array['lead','lead','lead','qualified','qualified','proposal','negotiation','won','lost','lost'])[1 + (hashint8(g * 13 + 3) & 2147483647) % 10],
            timestamptz '2021-01-01 00:00:00+00' + (hashint8(g * 13 + 4) & 281474976710655) % 157680000000000 * interval '1 microsecond'
       from generate_series(1, $1::int) g`,
    [rows.deals, ids.lo, ids.n],
  );
  if (replica) await c.query(`set session_replication_role = origin`);
  const orphans = (await c.query(`select count(*)::int as n from ${S}.deals d where not exists (select 1 from ${S}.contacts x where x.id = d.contact_id)`)).rows[0].n;
  if (orphans) throw new Error(`${orphans} deals without their contact`);
  log(`  deals: ${rows.deals} rows (${(now() - t).toFixed(1)} s${replica ? ', foreign-key trigger off, 0 orphans' : ''})`);
}

async function tableSizes(c: pg.Client, schema: string) {
  const r = await c.query<{ name: string; total: string; heap: string; toast: string; idx: string }>(
    `select c.relname as name, pg_total_relation_size(c.oid)::text as total, pg_relation_size(c.oid)::text as heap,
            (pg_table_size(c.oid) - pg_relation_size(c.oid) - pg_relation_size(c.oid, 'fsm') - pg_relation_size(c.oid, 'vm'))::text as toast,
            pg_indexes_size(c.oid)::text as idx
       from pg_class c where c.relnamespace = $1::regnamespace and c.relkind = 'r' order by c.relname`,
    [schema],
  );
  const out = [];
  for (const t of r.rows) {
    const n = (await c.query<{ n: string }>(`select count(*)::text as n from "${schema}"."${t.name}"`)).rows[0]!.n;
    out.push({ name: t.name, rows: Number(n), totalBytes: Number(t.total), heapBytes: Number(t.heap), toastBytes: Number(t.toast), indexBytes: Number(t.idx) });
  }
  return out;
}

/** count(*) and a sum of row hashes per table: equal before the backup and after the restore. */
async function fingerprint(c: pg.Client, schema: string, tables: string[]) {
  const out: Record<string, string> = {};
  for (const t of tables) {
    const r = await c.query<{ n: string; h: string }>(`select count(*)::text as n, coalesce(sum(hashtext(x::text)::bigint), 0)::text as h from "${schema}"."${t}" x`);
    out[t] = `${r.rows[0]!.n}/${r.rows[0]!.h}`;
  }
  return out;
}

/** Counts what it is given; keeps the first bytes as a sample, or writes everything to a file descriptor. */
class Sink extends Writable {
  bytes = 0;
  constructor(private readonly sample?: { chunks: Buffer[]; max: number; taken: number }, private readonly fd?: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void) {
    this.bytes += chunk.length;
    if (this.sample && this.sample.taken < this.sample.max) {
      const part = chunk.subarray(0, this.sample.max - this.sample.taken);
      this.sample.chunks.push(Buffer.from(part));
      this.sample.taken += part.length;
    }
    if (this.fd === undefined) return cb();
    fs.write(this.fd, chunk, (e) => cb(e));
  }
}

function decompressor(codec: { name: string }) {
  return codec.name === 'zstd' ? zlib.createZstdDecompress({ chunkSize: 256 * 1024 }) : zlib.createGunzip({ chunkSize: 256 * 1024 });
}

/** The archive's codec settings (256 KiB zlib chunks; zstd with its content checksum). */
function compressor(codec: { name: string; level: number }) {
  const chunkSize = 256 * 1024;
  if (codec.name === 'zstd')
    return zlib.createZstdCompress({ chunkSize, params: { [zlib.constants.ZSTD_c_compressionLevel]: codec.level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
  return zlib.createGzip({ level: codec.level, chunkSize });
}

/** The archive's COPY of a table (writeArchive: the table itself, every column; none of these tables has generated ones). */
const COPY_OUT = (schema: string, table: string) => `copy "${schema}"."${table}" to stdout`;

/**
 * COPY of every table, the archive's statement (one REPEATABLE READ snapshot, the archive's session settings), into
 * a sink: the database's read speed; with `codec`, through it (the sink counts the compressed bytes). `samples` keeps the first bytes of each table's COPY text for the codec measurements.
 */
async function copyFloor(
  url: string,
  schema: string,
  tables: string[],
  codec?: { name: string; level: number },
  samples?: Map<string, Buffer>,
  spool?: (table: string) => string,
): Promise<Timed> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('begin isolation level repeatable read read only');
    await c.query(`set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 3; set local bytea_output = 'hex'; set local statement_timeout = 0`);
    const t0 = now();
    const meter = cpuMeter();
    let bytes = 0;
    for (const t of tables) {
      const sample = samples ? { chunks: [] as Buffer[], max: 16 * MiB, taken: 0 } : undefined;
      const fd = spool ? fs.openSync(spool(t), 'w') : undefined;
      const sink = new Sink(sample, fd);
      const copy = c.query(copyTo(COPY_OUT(schema, t)));
      // Through the codec: in 256 KiB batches, as the archive feeds it.
      await (codec ? pipeline(copy, new LineCounter(256 * 1024), compressor(codec), sink) : pipeline(copy, sink));
      if (fd !== undefined) fs.closeSync(fd);
      bytes += sink.bytes;
      if (sample && samples) samples.set(t, Buffer.concat(sample.chunks));
    }
    const seconds = now() - t0;
    const cpu = meter();
    await c.query('commit');
    return { seconds, bytes, cpu };
  } finally {
    await c.end();
  }
}

/**
 * A restore without S3: the compressed parts spooled by the compression floor (local files, page cache) are read,
 * decompressed and loaded with COPY FROM … WITH (FREEZE) into copies of the tables created in the same transaction,
 * one session, as the restore loads (no S3, no hashing, no indexes yet); rolled back.
 */
async function loadFloor(url: string, schema: string, tables: string[], spooled: (table: string) => string): Promise<Timed> {
  const dst = new pg.Client({ connectionString: url });
  await dst.connect();
  try {
    await dst.query('begin');
    await dst.query(`set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 3; set local bytea_output = 'hex'; set local statement_timeout = 0`);
    await dst.query(`create schema bench_load_floor`);
    for (const t of tables) await dst.query(`create table bench_load_floor."${t}" (like "${schema}"."${t}")`);
    const t0 = now();
    const meter = cpuMeter();
    let bytes = 0;
    for (const t of tables) {
      const counter = new LineCounter();
      await pipeline(fs.createReadStream(spooled(t), { highWaterMark: 256 * 1024 }), decompressor(ARCHIVE_CODEC), counter, dst.query(copyFrom(`copy bench_load_floor."${t}" from stdin with (freeze)`)));
      bytes += counter.bytes;
    }
    return { seconds: now() - t0, bytes, cpu: meter() };
  } finally {
    await dst.query('rollback').catch(() => undefined);
    await dst.end();
  }
}

/** Single-thread cost of the codecs and hashes on the sampled COPY text (what one core does per second). */
function codecFloors(sample: Buffer) {
  const out: BackupThroughputResult['floors']['codecs'] = [];
  const time = (what: string, fn: () => Buffer | void) => {
    const t0 = process.cpuUsage();
    const w0 = now();
    const r = fn();
    const cpu = process.cpuUsage(t0);
    const seconds = Math.max((cpu.user + cpu.system) / 1e6, now() - w0);
    out.push({ what, mbPerCpuSecond: rate(sample.length, seconds), ratio: r ? sample.length / r.length : undefined });
    return r;
  };
  for (const level of [1, 3, 6]) {
    const z = time(`gzip -${level}`, () => zlib.gzipSync(sample, { level })) as Buffer;
    if (level === 3) time('gunzip (of -3)', () => void zlib.gunzipSync(z));
  }
  if (typeof zlib.zstdCompressSync === 'function') {
    for (const level of [1, 3]) {
      const z = time(`zstd -${level}`, () => zlib.zstdCompressSync(sample, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } })) as Buffer;
      if (level === 3) time('unzstd (of -3)', () => void zlib.zstdDecompressSync(z));
    }
  }
  time('sha256', () => void crypto.createHash('sha256').update(sample).digest());
  time('md5 (s3rver ETag)', () => void crypto.createHash('md5').update(sample).digest());
  return out;
}

function bytesSource(total: number) {
  const block = crypto.randomBytes(MiB);
  return Readable.from(
    (function* () {
      let off = 0;
      for (let sent = 0; sent < total; ) {
        const n = Math.min(64 * 1024, total - sent, MiB - off);
        yield block.subarray(off, off + n);
        sent += n;
        off = (off + n) % MiB;
      }
    })(),
  );
}

/** The embedded S3 alone: one PutObject, one multipart upload (archive settings), one GetObject + sha256 of `bytes`. */
async function s3Floors(app: RunningApp, bytes: number) {
  const { storage } = app.services;
  const key = `bench/floor-${crypto.randomUUID()}`;
  let t0 = now();
  let meter = cpuMeter();
  await storage.client.send(new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: bytesSource(bytes), ContentLength: bytes }));
  const s3Put = { seconds: now() - t0, bytes, cpu: meter() };
  t0 = now();
  meter = cpuMeter();
  await new Upload({ client: storage.client, params: { Bucket: storage.bucket, Key: key, Body: bytesSource(bytes) }, ...ARCHIVE_UPLOAD }).done();
  const s3Multipart = { seconds: now() - t0, bytes, cpu: meter() };
  t0 = now();
  meter = cpuMeter();
  const r = await storage.client.send(new GetObjectCommand({ Bucket: storage.bucket, Key: key }));
  const hash = crypto.createHash('sha256');
  let got = 0;
  for await (const chunk of r.Body as Readable) {
    hash.update(chunk as Buffer);
    got += (chunk as Buffer).length;
  }
  hash.digest();
  const s3GetHash = { seconds: now() - t0, bytes: got, cpu: meter() };
  if (got !== bytes) throw new Error(`read back ${got} bytes of ${bytes}`);
  await storage.client.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: key }));
  return { s3Put, s3Multipart, s3GetHash };
}

async function profiled<T>(name: string, fn: () => Promise<T>, log: (m: string) => void): Promise<T> {
  const prefix = process.env.BENCH_CPU_PROF;
  if (!prefix) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    const file = `${prefix}-${name}.cpuprofile`;
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`CPU profile of this process during the ${name} written to ${file} (npx tsx bench/profile-summary.ts ${file})`);
  }
}

export async function backupThroughput(url: string, log = console.log): Promise<BackupThroughputResult> {
  const siteMB = Number(process.env.BENCH_SITE_MB ?? 1024);
  const rowCheck = process.env.BENCH_ROW_CHECK !== '0';
  log(`backup throughput: site of ~${siteMB} MB; ${os.cpus().length} cores, load ${load()}, node ${process.version}`);
  await migrate(url);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  readPostgresCpu = await postgresCpu(sql);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tp-bench-backup-'));
  let app: RunningApp | undefined;
  let schema: string | undefined;
  try {
    // A tenant of its own (enterprise plan) and its OWNER; the site, backup and restore go through the API.
    const userId = crypto.randomUUID();
    const tenantId = crypto.randomUUID();
    const slug = `bench-backup-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    await sql.query(`insert into app_public.users (id, email, name) values ($1, $2, 'Backup bench')`, [userId, `${slug}@bench.example`]);
    await sql.query(`insert into app_public.tenants (id, slug, name, plan_id) values ($1, $2, 'Backup bench', 'enterprise')`, [tenantId, slug]);
    await sql.query(`insert into app_public.memberships (tenant_id, user_id, role) values ($1, $2, 'OWNER')`, [tenantId, userId]);

    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: url,
      DATABASE_POOL_SIZE: '5',
      WORKERS: 'true',
      LOG_LEVEL: 'silent',
      DATA_DIR: dataDir,
      EMBEDDED_S3_PORT: '0',
    });
    app = await startApp(config, { migrate: false, log: pino({ level: 'silent' }) });
    const signed = await app.services.tokens.sign(userId);
    const token = typeof signed === 'string' ? signed : (signed as { token: string }).token;
    const tenantGid = (await gql(app, token, `query($s: String!) { tenant(slug: $s) { id } }`, { s: slug })).tenant.id;

    // The site, provisioned by the site-provision job.
    let t0 = now();
    const siteName = `bk${process.pid}`;
    const created = (await gql(app, token, CREATE, { i: { tenantId: tenantGid, name: siteName, displayName: 'Backup bench', apps: ['notes', 'crm'] } })).createSite;
    const site = (await sql.query<{ id: string }>(`select id from app_public.sites where tenant_id = $1 and name = $2`, [tenantId, siteName])).rows[0]!;
    const jobOf = async (type: string) =>
      (await sql.query<{ id: string }>(`select id from app_public.jobs where tenant_id = $1 and site_id = $2 and type = $3 order by created_at desc limit 1`, [tenantId, site.id, type])).rows[0]!.id;
    const provision = await waitForJob(sql, await jobOf('site-provision'), () => ({}));
    if (provision.status !== 'COMPLETED') throw new Error(`provisioning ${provision.status}: ${provision.error}`);
    schema = (await sql.query<{ schema_name: string }>(`select schema_name from app_public.sites where id = $1`, [site.id])).rows[0]!.schema_name;
    log(`site provisioned by the site-provision job in ${f1(now() - t0)} s: schema ${schema}`);

    t0 = now();
    log(`filling to ~${siteMB} MB (load ${load()}):`);
    await fillSite(url, schema, siteMB * MiB, log);
    const fillSeconds = now() - t0;
    const sizes = await tableSizes(sql, schema);
    const tableBytes = sizes.reduce((n, t) => n + t.totalBytes, 0);
    const names = sizes.map((t) => t.name);
    log(`filled in ${f1(fillSeconds)} s: ${f1(mb(tableBytes))} MB of pg_total_relation_size`);
    for (const t of sizes)
      log(`  ${t.name}: ${t.rows} rows, ${f1(mb(t.totalBytes))} MB (heap ${f1(mb(t.heapBytes))}, TOAST ${f1(mb(t.toastBytes))}, indexes ${f1(mb(t.indexBytes))})`);
    const before = rowCheck ? await fingerprint(sql, schema, names) : undefined;

    // Floors: the database's COPY alone, then through the archive's codec.
    const samples = new Map<string, Buffer>();
    log(`floors (load ${load()}):`);
    const copyRead = await copyFloor(url, schema, names, undefined, samples);
    log(`  COPY TO STDOUT → /dev/null: ${f1(mb(copyRead.bytes))} MB of COPY text in ${f1(copyRead.seconds)} s = ${f1(rate(tableBytes, copyRead.seconds))} MB/s of table data; ${cpuText(copyRead.cpu, tableBytes)}`);
    // Its output is kept in local files for the load floor below.
    const spool = (t: string) => path.join(dataDir, `spool-${t}`);
    const copyCompress = await copyFloor(url, schema, names, ARCHIVE_CODEC, undefined, spool);
    log(
      `  COPY TO STDOUT → ${ARCHIVE_CODEC.name} -${ARCHIVE_CODEC.level} → local file: ${f1(mb(copyCompress.bytes))} MB in ${f1(copyCompress.seconds)} s = ` +
        `${f1(rate(tableBytes, copyCompress.seconds))} MB/s of table data; ${cpuText(copyCompress.cpu, tableBytes)}`,
    );
    // A sample in the tables' proportions of COPY text (up to 16 MiB of each).
    const sample = Buffer.concat([...samples.values()]);
    const codecs = codecFloors(sample);
    log(`  codecs on ${f1(mb(sample.length))} MB of COPY text, one thread: ${codecs.map((x) => `${x.what} ${f1(x.mbPerCpuSecond)} MB/s${x.ratio ? ` (${x.ratio.toFixed(2)}×)` : ''}`).join(', ')}`);

    // The backup, by the site-backup job.
    log(`backup (load ${load()})…`);
    const backupReq = (await gql(app, token, BACKUP, { s: created.site.id })).backupSite;
    const backup = await profiled('backup', async () => waitForJob(sql, await jobOf('site-backup'), backupPhases), log);
    if (backup.status !== 'COMPLETED') throw new Error(`backup ${backup.status}: ${backup.error}`);
    const row = (await sql.query<{ status: string; manifest: Manifest }>(`select status, manifest from app_public.backups where tenant_id = $1 and site_id = $2 order by created_at desc limit 1`, [tenantId, site.id]))
      .rows[0]!;
    if (row.status !== 'SUCCESS') throw new Error(`backup row ${row.status}`);
    const copyBytes = row.manifest.tables.reduce((n, t) => n + t.rawBytes, 0);
    const storedBytes = row.manifest.tables.reduce((n, t) => n + t.bytes, 0);
    log(
      `  ${backup.status} in ${f1(backup.seconds)} s = ${f1(rate(tableBytes, backup.seconds))} MB/s of table data (${f1(rate(copyBytes, backup.seconds))} MB/s of COPY text); ` +
        `stored ${f1(mb(storedBytes))} MB (${(copyBytes / storedBytes).toFixed(2)}× of the COPY text, ${(tableBytes / storedBytes).toFixed(2)}× of the table data); ${cpuText(backup.cpu, tableBytes)}`,
    );
    for (const [phase, s] of Object.entries(backup.phases)) log(`    ${phase}: ${f1(s)} s = ${f1(rate(tableBytes, s))} MB/s of table data`);

    // The S3 floors, with as many bytes as the archive stored.
    log(`S3 floors, ${f1(mb(storedBytes))} MB (load ${load()}):`);
    const s3 = await s3Floors(app, storedBytes);
    log(`  PutObject ${f1(rate(storedBytes, s3.s3Put.seconds))} MB/s, multipart upload (${ARCHIVE_UPLOAD.partSize / MiB} MiB × ${ARCHIVE_UPLOAD.queueSize}) ${f1(rate(storedBytes, s3.s3Multipart.seconds))} MB/s, ` +
      `GetObject + sha256 ${f1(rate(storedBytes, s3.s3GetHash.seconds))} MB/s (of stored bytes); CPU ${[s3.s3Put, s3.s3Multipart, s3.s3GetHash].map((x) => f1(x.cpu!.node)).join(' / ')} s`);

    const loadCopy = await loadFloor(url, schema, names, spool);
    for (const t of names) fs.rmSync(spool(t), { force: true });
    log(`  local file → un${ARCHIVE_CODEC.name} → COPY FROM (freeze) into a fresh table: ${f1(loadCopy.seconds)} s = ${f1(rate(tableBytes, loadCopy.seconds))} MB/s of table data; ${cpuText(loadCopy.cpu, tableBytes)}`);

    // The restore, by the site-restore job (verify, load into a fresh schema, swap).
    log(`restore (load ${load()})…`);
    await gql(app, token, RESTORE, { s: created.site.id, b: backupReq.backup.id });
    const restore = await profiled('restore', async () => waitForJob(sql, await jobOf('site-restore'), restorePhases), log);
    if (restore.status !== 'COMPLETED') throw new Error(`restore ${restore.status}: ${restore.error}`);
    log(`  ${restore.status} in ${f1(restore.seconds)} s = ${f1(rate(tableBytes, restore.seconds))} MB/s of table data (${f1(rate(copyBytes, restore.seconds))} MB/s of COPY text); ${cpuText(restore.cpu, tableBytes)}`);
    for (const [phase, s] of Object.entries(restore.phases)) log(`    ${phase}: ${f1(s)} s = ${f1(rate(tableBytes, s))} MB/s of table data`);
    if (before) {
      const after = await fingerprint(sql, schema, names);
      if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`restored rows differ: ${JSON.stringify(before)} vs ${JSON.stringify(after)}`);
      log(`  restored rows identical (count and sum of row hashes per table)`);
    }
    log(`load average at the end: ${load()}`);

    const tables = sizes.map((t) => {
      const m = row.manifest.tables.find((x) => x.name === t.name)!;
      return { ...t, copyBytes: m.rawBytes, storedBytes: m.bytes };
    });
    const result: BackupThroughputResult = {
      siteMB,
      tables,
      tableBytes,
      copyBytes,
      storedBytes,
      backup,
      restore,
      floors: { copyRead, copyCompress, load: loadCopy, ...s3, codecs },
      fillSeconds,
    };
    log(summary(result));
    return result;
  } finally {
    await app?.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (schema) {
      // The site's role is cluster-wide: dropped with its schema so that nothing outlives the benchmark database.
      await sql.query(`drop schema if exists "${schema}" cascade`).catch(() => undefined);
      await sql.query(`drop owned by "${schema}_owner"`).catch(() => undefined);
      await sql.query(`drop role if exists "${schema}_owner"`).catch(() => undefined);
    }
    await sql.end();
  }
}

/** The figures as a markdown table (MB = 2^20 bytes; MB/s of table data = pg_total_relation_size / seconds). */
export function summary(r: BackupThroughputResult) {
  const T = r.tableBytes;
  const cpu = (c?: Cpu) => (c ? `${f1(c.node)} + ${c.postgres === null ? '?' : f1(c.postgres)}` : '');
  const line = (what: string, seconds: number, c?: Cpu, note = '') => `| ${what} | ${f1(seconds)} | **${f1(rate(T, seconds))}** | ${f1(rate(r.copyBytes, seconds))} | ${cpu(c)} | ${note} |`;
  const out = [
    `table data ${f1(mb(T))} MB (pg_total_relation_size), COPY text ${f1(mb(r.copyBytes))} MB, stored ${f1(mb(r.storedBytes))} MB (${(r.copyBytes / r.storedBytes).toFixed(2)}× of COPY text)`,
    '',
    '| what | s | MB/s of table data | MB/s of COPY text | CPU s: node + postgres | |',
    '| --- | --- | --- | --- | --- | --- |',
    line('backup job (site-backup, total)', r.backup.seconds, r.backup.cpu, 'target ≥ 50'),
    ...Object.entries(r.backup.phases).map(([p, s]) => line(`  backup: ${p}`, s)),
    line('restore job (site-restore, total)', r.restore.seconds, r.restore.cpu),
    ...Object.entries(r.restore.phases).map(([p, s]) => line(`  restore: ${p}`, s)),
    line('floor: COPY TO → /dev/null', r.floors.copyRead.seconds, r.floors.copyRead.cpu),
    line(`floor: COPY TO → ${ARCHIVE_CODEC.name} -${ARCHIVE_CODEC.level} → local file`, r.floors.copyCompress.seconds, r.floors.copyCompress.cpu),
    line(`floor: local file → un${ARCHIVE_CODEC.name} → COPY FROM (freeze)`, r.floors.load.seconds, r.floors.load.cpu),
    ...(
      [
        ['PutObject', r.floors.s3Put],
        [`multipart upload (${ARCHIVE_UPLOAD.partSize / MiB} MiB × ${ARCHIVE_UPLOAD.queueSize})`, r.floors.s3Multipart],
        ['GetObject + sha256', r.floors.s3GetHash],
      ] as const
    ).map(([what, x]) => `| floor: ${what} of ${f1(mb(r.storedBytes))} MB | ${f1(x.seconds)} | ${f1(rate(T, x.seconds))} | | ${cpu(x.cpu)} | ${f1(rate(r.storedBytes, x.seconds))} MB/s of bytes |`),
    '',
    `codecs, one thread, on COPY text: ${r.floors.codecs.map((x) => `${x.what} ${f1(x.mbPerCpuSecond)} MB/s${x.ratio ? ` (${x.ratio.toFixed(2)}×)` : ''}`).join('; ')}`,
  ];
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const db = await createBenchDatabase();
  let code = 0;
  try {
    await backupThroughput(db.url);
  } catch (e) {
    console.error(e);
    code = 1;
  } finally {
    await db.stop();
  }
  exitCleanly(code);
}
