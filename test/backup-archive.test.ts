import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Storage } from '../src/storage/s3.ts';
import { withDatabase } from './support/global-setup.ts';
import {
  ArchiveCorruptError,
  UnsupportedSchemaError,
  restoreArchive,
  restoreFiles,
  swapSchemas,
  verifyArchive,
  writeArchive,
  type Manifest,
} from '../src/modules/backups/archive.ts';
import { listObjects } from '../src/modules/backups/objects.ts';

/**
 * The backup archive library against a real PostgreSQL and a real S3 endpoint (s3rver unless S3_ENDPOINT is set):
 * write → verify → restore row for row, restore + swap, corruption and missing parts refused before anything is
 * touched, aborts that leave nothing behind, and a throughput line for a ~27 MB table (figures belong in bench/).
 */

const rand = () => crypto.randomBytes(4).toString('hex');
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let pool: pg.Pool;
let storage: Storage;
const tenant = crypto.randomUUID();
const siteId = crypto.randomUUID();
const schema = `site_test_${rand()}`;
const ownerRole = `tp_backup_owner_${rand()}`;
const filesPrefix = `tenants/${tenant}/sites/${siteId}/files/`;
const prefix = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;
const meta = { siteId, siteName: 'shop', apps: [{ name: 'crm', version: '1.0.0' }] };
/** Every S3 command that completed, in order (a middleware on the client): proves the order of writes and reads. */
const ops: Array<{ op: string; key?: string }> = [];
const opWatchers: Array<(op: { op: string; key?: string }) => void> = [];
let manifest: Manifest;
/** The rows of every table at backup time (row_to_json text, ordered by primary key). */
let snapshot: Record<string, string[]>;

const TABLES: Record<string, string> = { contacts: 'id', deals: 'id', tickets: 'id', log: 'at, line' };
const FILES: Record<string, Buffer> = {
  '.keep': Buffer.alloc(0),
  'docs/résumé 1.txt': Buffer.from('Zoë — 日本語 🚀\n', 'utf8'),
  'media/big.bin': crypto.randomBytes(9 * 1024 * 1024 + 123), // more than one 8 MiB part: a multipart copy
};
const TRICKY = 'Zoë 日本語 🚀 \t tab \n newline \r cr \\ backslash \\N "quote" \'single\' , comma';

async function q<T extends pg.QueryResultRow = any>(sql: string, params: unknown[] = []) {
  return (await pool.query<T>(sql, params)).rows;
}

async function schemaExists(name: string) {
  return (await q(`select 1 from pg_namespace where nspname = $1`, [name])).length > 0;
}

/** Each table's rows as JSON text in primary-key order: equal strings mean equal values (floats, bytea, unicode…). */
async function rowsOf(s: string) {
  const out: Record<string, string[]> = {};
  for (const [t, order] of Object.entries(TABLES)) {
    out[t] = (await q<{ j: string }>(`select row_to_json(x)::text as j from "${s}"."${t}" x order by ${order}`)).map((r) => r.j);
  }
  return out;
}

/** Columns, constraints, indexes and sequences as PostgreSQL deparses them with search_path = the schema. */
async function catalogOf(s: string) {
  const c = await pool.connect();
  try {
    await c.query('begin');
    await c.query(`select set_config('search_path', $1, true)`, [`"${s}"`]);
    const cols = await c.query(
      `select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) as def,
              a.attidentity, a.attgenerated, a.attcollation::regcollation::text as coll
         from pg_attribute a join pg_class c on c.oid = a.attrelid left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relnamespace = $1::regnamespace and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped order by 1, a.attnum`,
      [s],
    );
    const cons = await c.query(
      `select c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) as def from pg_constraint k join pg_class c on c.oid = k.conrelid
        where c.relnamespace = $1::regnamespace order by 1, 2`,
      [s],
    );
    const idx = await c.query(
      `select i.relname, pg_get_indexdef(x.indexrelid) as def from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class c on c.oid = x.indrelid
        where c.relnamespace = $1::regnamespace order by 1`,
      [s],
    );
    const seqs = await c.query(`select relname from pg_class where relnamespace = $1::regnamespace and relkind = 'S' order by 1`, [s]);
    // pg_get_indexdef() qualifies the table whatever the search_path: that name differs by design.
    const indexes = idx.rows.map((r) => ({ ...r, def: r.def.replace(` ON ${s}.`, ' ON ') }));
    return { columns: cols.rows, constraints: cons.rows, indexes, sequences: seqs.rows };
  } finally {
    await c.query('rollback');
    c.release();
  }
}

async function getBytes(key: string) {
  return storage.read(key, 64 * 1024 * 1024);
}
async function putBytes(key: string, body: Buffer) {
  await storage.client.send(new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: body }));
}
async function keysUnder(p: string) {
  return (await listObjects(storage, p)).map((o) => o.key.slice(p.length)).sort();
}

async function createSiteSchema(s: string) {
  await pool.query(`
    create schema "${s}";
    create table "${s}".contacts (
      id         bigint generated by default as identity primary key,
      name       text not null,
      email      text unique,
      score      numeric(14, 2),
      ratio      float8,
      meta       jsonb,
      avatar     bytea,
      tags       text[] not null default '{}',
      born       date,
      span       interval,
      uid        uuid,
      created_at timestamptz not null default now()
    );
    create table "${s}".deals (
      id         bigint generated always as identity primary key,
      contact_id bigint not null references "${s}".contacts (id) on delete cascade,
      amount     numeric(14, 2) not null default 0 check (amount >= 0),
      cents      bigint generated always as ((amount * 100)::bigint) stored,
      stage      text not null default 'lead',
      note       text collate "C",
      created_at timestamptz
    );
    create index deals_stage on "${s}".deals (stage, created_at desc);
    create table "${s}".tickets (id serial primary key, body text not null, closed boolean);
    create table "${s}".log (at timestamptz not null, line text);
    create view "${s}".big_deals as select * from "${s}".deals where amount > 1000;

    insert into "${s}".contacts (name, email, score, ratio, meta, avatar, tags, born, span, uid, created_at)
    select 'name ' || g, case when g % 7 = 0 then null else 'u' || g || '@example.com' end, (g * 1.37)::numeric(14, 2),
           case when g % 5 = 0 then null else g / 7.0::float8 end, jsonb_build_object('g', g, 'nested', jsonb_build_array(g, 'x', null)),
           case when g % 3 = 0 then null else decode(md5(g::text), 'hex') end, array['t' || (g % 5), 'all'], date '2000-01-01' + g,
           make_interval(secs => g * 61.5), md5(g::text)::uuid, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute 1.123456 second'
      from generate_series(1, 3000) g;
    insert into "${s}".deals (contact_id, amount, stage, note, created_at)
    select 1 + (g * 7) % 3000, (g * 13.5)::numeric(14, 2), (array['lead', 'won', 'lost'])[1 + g % 3], case when g % 4 = 0 then null else 'n' || g end,
           case when g % 9 = 0 then null else timestamptz '2024-06-01 12:00:00+02' + g * interval '1 hour' end
      from generate_series(1, 2000) g;
    insert into "${s}".tickets (body, closed) select 'ticket ' || g, g % 2 = 0 from generate_series(1, 12) g;
    delete from "${s}".tickets where id > 10;
    insert into "${s}".log values ('2024-01-01T00:00:00Z', 'same'), ('2024-01-01T00:00:00Z', 'same'), ('2024-01-02T00:00:00Z', null), ('2024-01-03T00:00:00Z', '');
  `);
  // Values a text-format COPY must escape or keep exact: control characters, backslashes, \N, every byte, float edges.
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const tricky = [
    [TRICKY, '', 'NaN', { k: 'ü', arr: [1, 'two', null, { deep: true }] }, every, ['a,b', 'c"d', 'e\\f', '', 'NULL'], 'infinity'],
    ['floats', null, 'Infinity', null, Buffer.alloc(0), [], '0001-01-01', null],
    ['more floats', 'x@y', '-0', { n: 1e-300 }, null, ['\n'], null, null],
  ];
  for (const [name, email, ratio, metaValue, avatar, tags, born] of tricky) {
    await pool.query(`insert into "${s}".contacts (name, email, ratio, meta, avatar, tags, born) values ($1, $2, $3::float8, $4, $5, $6, $7::date)`, [
      name,
      email,
      ratio,
      metaValue === null ? null : JSON.stringify(metaValue),
      avatar,
      tags,
      born,
    ]);
  }
  await pool.query(`insert into "${s}".contacts (name, ratio, score) values ('precise', 0.1 + 0.2, 123456789012.34), ('tiny', 1e-300, -0.01)`);
}

beforeAll(async () => {
  const adminUrl = inject('adminUrl');
  const template = inject('templateDb');
  const db = `tp_test_${template.replace('tp_template_', '')}_${rand()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${db} template ${template}`);
  await admin.query(`create role ${ownerRole} nologin`);
  await admin.end();
  pool = new pg.Pool({ connectionString: withDatabase(adminUrl, db), max: 8 });
  storage = new Storage({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    accessKeyId: process.env.S3_ACCESS_KEY_ID ?? 'S3RVER',
    secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    bucket: `tp-test-${crypto.randomBytes(6).toString('hex')}`,
  });
  await storage.ensureBucket();
  storage.client.middlewareStack.add(
    (next: any, context: any) => async (args: any) => {
      const op = { op: String(context.commandName).replace(/Command$/, ''), key: args.input?.Key as string | undefined };
      try {
        const result = await next(args);
        ops.push(op);
        for (const w of opWatchers) w(op);
        return result;
      } catch (e) {
        ops.push({ ...op, op: `${op.op} failed: ${(e as Error).name}` });
        throw e;
      }
    },
    { step: 'initialize', name: 'recordOperations' },
  );
  await createSiteSchema(schema);
  for (const [k, v] of Object.entries(FILES)) await putBytes(filesPrefix + k, v);
  snapshot = await rowsOf(schema);
}, 120_000);

afterAll(async () => {
  if (pool) {
    await pool.query(`drop owned by ${ownerRole} cascade`).catch(() => undefined);
    await pool.end();
    const admin = new pg.Client({ connectionString: inject('adminUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${ownerRole}`).catch(() => undefined);
    await admin.end();
  }
});

describe('writeArchive', () => {
  it('uploads one zstd COPY per table and the files, verifies every part, and writes the manifest last', async () => {
    ops.length = 0;
    const progress: Array<[number, string]> = [];
    manifest = await writeArchive({ pool, storage, schema, prefix, meta, files: { prefix: filesPrefix }, onProgress: (pct, step) => void progress.push([pct, step]) });

    expect(await keysUnder(prefix)).toEqual(
      ['manifest.json', 'tables/contacts.copy.zst', 'tables/deals.copy.zst', 'tables/log.copy.zst', 'tables/tickets.copy.zst', ...Object.keys(FILES).map((k) => `files/${k}`)].sort(),
    );
    // Referenced tables come first; the manifest describes what it could not capture.
    expect(manifest.tables.map((t) => t.name).indexOf('contacts')).toBeLessThan(manifest.tables.map((t) => t.name).indexOf('deals'));
    expect(manifest.omitted).toEqual(['view big_deals']);
    expect(manifest).toMatchObject({ formatVersion: 2, schema, site: { id: siteId, name: 'shop' }, apps: meta.apps, copy: { format: 'text', encoding: 'UTF8', compression: 'zstd' } });
    expect(manifest.tables.find((t) => t.name === 'contacts')!.primaryKey).toEqual(['id']);
    expect(manifest.tables.find((t) => t.name === 'log')!.primaryKey).toEqual([]);
    expect(manifest.sequences.map((s) => [s.name, s.ownedBy])).toEqual([['tickets_id_seq', { table: 'tickets', column: 'id' }]]);

    // Row counts, sizes and hashes are those of the objects as stored and of the rows in the database.
    for (const t of manifest.tables) {
      expect(t.rowCount).toBe(Number((await q(`select count(*) from "${schema}"."${t.name}"`))[0].count));
      const stored = await getBytes(prefix + t.key);
      expect([stored.length, sha256(stored)]).toEqual([t.bytes, t.sha256]);
    }
    for (const f of manifest.files) {
      const original = FILES[f.key.slice('files/'.length)]!;
      expect([f.bytes, f.sha256]).toEqual([original.length, sha256(original)]);
    }
    expect(manifest.totalBytes).toBe([...manifest.tables, ...manifest.files].reduce((n, p) => n + p.bytes, 0));
    expect(JSON.parse((await getBytes(prefix + 'manifest.json')).toString())).toEqual(manifest);

    // Order: every part is uploaded, then read back in full (verification), and only then is the manifest written.
    const writes = ops.filter((o) => ['PutObject', 'CompleteMultipartUpload'].includes(o.op) && o.key?.startsWith(prefix));
    expect(writes.at(-1)!.key).toBe(prefix + 'manifest.json');
    const manifestPut = ops.findIndex((o) => o.op === 'PutObject' && o.key === prefix + 'manifest.json');
    for (const p of [...manifest.tables, ...manifest.files]) {
      const written = ops.findIndex((o) => o.key === prefix + p.key && ['PutObject', 'CompleteMultipartUpload'].includes(o.op));
      const head = ops.findIndex((o, i) => i > written && o.op === 'HeadObject' && o.key === prefix + p.key);
      const reread = ops.findIndex((o, i) => i > written && o.op === 'GetObject' && o.key === prefix + p.key);
      expect(written).toBeGreaterThanOrEqual(0);
      expect(head).toBeGreaterThan(written);
      expect(reread).toBeGreaterThan(written);
      expect(reread).toBeLessThan(manifestPut);
    }
    // The 9 MiB file went up in 8 MiB parts.
    expect(ops.filter((o) => o.op === 'UploadPart' && o.key === prefix + 'files/media/big.bin')).toHaveLength(2);

    expect(progress.at(-1)).toEqual([100, 'done']);
    expect(progress.map(([p]) => p)).toEqual([...progress.map(([p]) => p)].sort((a, b) => a - b));
    expect(progress.map(([, s]) => s)).toEqual(expect.arrayContaining(['reading schema', 'table contacts', 'file docs/résumé 1.txt', 'verifying', 'writing manifest']));
  });

  it('gzip table parts (the compression option) restore the same rows', async () => {
    const p = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;
    const m = await writeArchive({ pool, storage, schema, prefix: p, meta, compression: { codec: 'gzip', level: 3 } });
    expect(m.copy.compression).toBe('gzip');
    expect((await keysUnder(p)).filter((k) => k.startsWith('tables/'))).toEqual(['tables/contacts.copy.gz', 'tables/deals.copy.gz', 'tables/log.copy.gz', 'tables/tickets.copy.gz']);
    const target = `${schema}_gz`;
    await restoreArchive({ pool, storage, prefix: p, targetSchema: target });
    expect(await rowsOf(target)).toEqual(snapshot);
    await pool.query(`drop schema "${target}" cascade`);
  });

  it('refuses a prefix that already holds objects, and a schema it could not restore faithfully', async () => {
    await expect(writeArchive({ pool, storage, schema, prefix, meta })).rejects.toThrow(/already there/);
    const odd = `site_test_${rand()}`;
    await pool.query(`create schema ${odd}; create type ${odd}.mood as enum ('ok'); create table ${odd}.t (id int primary key, m ${odd}.mood)`);
    const p = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;
    await expect(writeArchive({ pool, storage, schema: odd, prefix: p, meta })).rejects.toBeInstanceOf(UnsupportedSchemaError);
    expect(await keysUnder(p)).toEqual([]);
    await pool.query(`drop schema ${odd} cascade`);
  });
});

describe('verifyArchive and restoreArchive', () => {
  it('restores into a fresh schema: the same rows, columns, constraints, indexes and sequences, owned by the owner', async () => {
    expect((await verifyArchive({ storage, prefix })).checksum).toBe(manifest.checksum);
    const target = `${schema}_r1`;
    const steps: string[] = [];
    const result = await restoreArchive({ pool, storage, prefix, targetSchema: target, owner: ownerRole, onProgress: (_p, s) => void steps.push(s) });
    expect(steps[0]).toBe('verifying');
    expect(steps.at(-1)).toBe('done');
    expect(result.tables).toEqual(manifest.tables.map((t) => ({ name: t.name, rowCount: t.rowCount })));
    expect(result.files).toEqual(manifest.files);

    const restored = await rowsOf(target);
    for (const t of Object.keys(TABLES)) expect(restored[t], t).toEqual(snapshot[t]);
    expect(restored.contacts!.length).toBe(3005);
    expect(restored.contacts!.some((r) => r.includes('"ratio":"NaN"'))).toBe(true);
    expect(await catalogOf(target)).toEqual(await catalogOf(schema));

    const owners = await q(`select distinct pg_get_userbyid(relowner) as o from pg_class where relnamespace = $1::regnamespace`, [target]);
    expect(owners).toEqual([{ o: ownerRole }]);
    expect((await q(`select pg_get_userbyid(nspowner) as o from pg_namespace where nspname = $1`, [target]))[0].o).toBe(ownerRole);

    // Sequences carry on where the source's were, and belong to the restored schema.
    const nextContact = await q(`insert into "${target}".contacts (name) values ('new') returning id`);
    const sourceMax = await q(`select max(id) as m from "${schema}".contacts`);
    expect(Number(nextContact[0].id)).toBeGreaterThan(Number(sourceMax[0].m));
    expect((await q(`select pg_get_serial_sequence($1, 'id') as s`, [`"${target}".tickets`]))[0].s).toBe(`${target}.tickets_id_seq`);
    expect((await q(`insert into "${target}".tickets (body) values ('x') returning id`))[0].id).toBe(13);
    await expect(pool.query(`insert into "${target}".deals (id, contact_id) values (1, 1)`)).rejects.toThrow(/non-DEFAULT value/);
    // Constraints hold in the copy, and act on the copy only.
    await expect(pool.query(`insert into "${target}".deals (contact_id, amount) values (1, -1)`)).rejects.toThrow(/check constraint/);
    await pool.query(`delete from "${target}".contacts where id = 8`);
    expect(await q(`select count(*)::int as n from "${target}".deals where contact_id = 8`)).toEqual([{ n: 0 }]);
    expect((await q(`select count(*)::int as n from "${schema}".deals where contact_id = 8`))[0].n).toBeGreaterThan(0);
    await pool.query(`drop schema "${target}" cascade`);
  });

  it('restores the site files, byte for byte', async () => {
    const to = `tenants/${tenant}/sites/${siteId}/restored/`;
    await putBytes(`${to}stale.txt`, Buffer.from('not in the backup'));
    const keys = await restoreFiles({ storage, prefix, toPrefix: to, exact: true });
    expect(keys).toEqual(Object.keys(FILES).map((k) => to + k).sort());
    expect(await keysUnder(to)).toEqual(Object.keys(FILES).sort());
    for (const [k, v] of Object.entries(FILES)) expect(sha256(await getBytes(to + k))).toBe(sha256(v));
  });

  it('after more writes, restoring the backup and swapping it in gives back exactly the data of the backup', async () => {
    await pool.query(`
      insert into "${schema}".contacts (name) select 'later ' || g from generate_series(1, 500) g;
      update "${schema}".contacts set name = name || ' (edited)' where id % 10 = 0;
      delete from "${schema}".deals where id % 3 = 0;
      insert into "${schema}".log values (now(), 'after the backup');
      insert into "${schema}".tickets (body) values ('after');`);
    const changed = await rowsOf(schema);
    expect(changed).not.toEqual(snapshot);

    const incoming = `${schema}_in`;
    await restoreArchive({ pool, storage, prefix, targetSchema: incoming, owner: ownerRole });
    // Joining a caller's transaction: a rollback undoes the swap.
    const c = await pool.connect();
    try {
      await c.query('begin');
      await swapSchemas({ client: c, live: schema, incoming });
      await c.query('rollback');
      expect(await rowsOf(schema)).toEqual(changed);
      const { old } = await swapSchemas({ client: c, live: schema, incoming, now: new Date(1700000000000) });
      expect(old).toBe(`${schema}_old_1700000000000`);
      expect(await rowsOf(schema)).toEqual(snapshot);
      expect(await rowsOf(old!)).toEqual(changed);
      expect(await schemaExists(incoming)).toBe(false);
      // Defaults and sequences follow the renamed schema.
      expect((await q(`insert into "${schema}".tickets (body) values ('again') returning id`))[0].id).toBe(13);
      await c.query(`drop schema "${old}" cascade`);
    } finally {
      c.release();
    }
  });

  const flip = (part: string, bytes: Buffer) => {
    const out = Buffer.from(bytes);
    if (part === 'manifest.json') {
      // A digit of a row count: still valid JSON of the right shape, only the checksum can tell.
      const at = out.indexOf('"rowCount": ') + '"rowCount": '.length;
      out[at] = out[at] === 0x39 ? 0x38 : out[at]! + 1;
    } else out[out.length >> 1] ^= 0x01;
    return out;
  };

  it.each(['tables/deals.copy.zst', 'tables/contacts.copy.zst', 'files/docs/résumé 1.txt', 'files/media/big.bin', 'manifest.json'])(
    'one flipped byte in %s: verify and restore refuse, naming the part, and no schema appears',
    async (part) => {
      const original = await getBytes(prefix + part);
      await putBytes(prefix + part, flip(part, original));
      try {
        const verified = await verifyArchive({ storage, prefix }).catch((e) => e);
        expect(verified).toBeInstanceOf(ArchiveCorruptError);
        expect(verified.part).toBe(part);
        const target = `${schema}_bad_${rand()}`;
        const restored = await restoreArchive({ pool, storage, prefix, targetSchema: target }).catch((e) => e);
        expect(restored).toBeInstanceOf(ArchiveCorruptError);
        expect(restored.part).toBe(part);
        expect(await schemaExists(target)).toBe(false);
      } finally {
        await putBytes(prefix + part, original);
      }
      await verifyArchive({ storage, prefix });
    },
  );

  it('a part changed after verification is caught while it streams, and the transaction rolls back', async () => {
    const part = 'tables/deals.copy.zst';
    const original = await getBytes(prefix + part);
    const target = `${schema}_toctou`;
    try {
      const restored = await restoreArchive({
        pool,
        storage,
        prefix,
        targetSchema: target,
        onProgress: async (_p, step) => {
          if (step === 'table deals') await putBytes(prefix + part, flip(part, original));
        },
      }).catch((e) => e);
      expect(restored).toBeInstanceOf(ArchiveCorruptError);
      expect(restored.part).toBe(part);
      expect(await schemaExists(target)).toBe(false);
    } finally {
      await putBytes(prefix + part, original);
    }
  });

  it('an archive without its manifest is refused, as is an empty prefix; an existing target schema too', async () => {
    const body = await getBytes(prefix + 'manifest.json');
    await storage.delete(prefix + 'manifest.json');
    try {
      const target = `${schema}_nomanifest`;
      for (const p of [prefix, `tenants/${tenant}/backups/${crypto.randomUUID()}/`]) {
        const e = await verifyArchive({ storage, prefix: p }).catch((x) => x);
        expect(e).toBeInstanceOf(ArchiveCorruptError);
        expect(e.part).toBe('manifest.json');
        await expect(restoreArchive({ pool, storage, prefix: p, targetSchema: target })).rejects.toBeInstanceOf(ArchiveCorruptError);
        expect(await schemaExists(target)).toBe(false);
      }
    } finally {
      await putBytes(prefix + 'manifest.json', body);
    }
    await expect(restoreArchive({ pool, storage, prefix, targetSchema: schema })).rejects.toThrow(/already exists/);
  });
});

describe('aborting writeArchive', () => {
  it('between tables: nothing is left under the prefix, and the prefix can be used again', async () => {
    const p = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;
    const ac = new AbortController();
    const e = await writeArchive({
      pool,
      storage,
      schema,
      prefix: p,
      meta,
      signal: ac.signal,
      onProgress: async (_pct, step) => {
        if (step === 'table deals') {
          expect(await keysUnder(p)).not.toEqual([]); // the first table is there already
          ac.abort();
        }
      },
    }).catch((x) => x);
    expect(e.name).toBe('AbortError');
    expect(await keysUnder(p)).toEqual([]);
    const m = await writeArchive({ pool, storage, schema, prefix: p, meta });
    expect(m.tables.length).toBe(4);
  });

  it('in the middle of a multipart upload: the upload is aborted and nothing is left', async () => {
    const p = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;
    const ac = new AbortController();
    const watch = (o: { op: string; key?: string }) => {
      if (o.op === 'UploadPart' && o.key === `${p}files/media/big.bin`) ac.abort();
    };
    opWatchers.push(watch);
    try {
      const e = await writeArchive({ pool, storage, schema, prefix: p, meta, files: { prefix: filesPrefix }, signal: ac.signal }).catch((x) => x);
      expect(e.name).toBe('AbortError');
    } finally {
      opWatchers.splice(opWatchers.indexOf(watch), 1);
    }
    // Either the multipart upload was aborted, or (both parts already read) it completed and was deleted.
    expect(await keysUnder(p)).toEqual([]);
  });
});

describe('a large table (multipart COPY stream)', () => {
  // 400k rows: ~54 MB of COPY text, ~23 MB compressed, so 3+ parts of 8 MiB. With 2 parts in flight (queueSize 2)
  // the third cannot be read before the first is uploaded: an abort then always finds the COPY still streaming.
  const ROWS = 400_000;
  const big = `site_big_${rand()}`;
  const p = `tenants/${tenant}/backups/${crypto.randomUUID()}/`;

  beforeAll(async () => {
    await pool.query(`create schema ${big};
      create table ${big}.big (id bigint primary key, a text not null, b text, n numeric, at timestamptz);
      insert into ${big}.big select g, md5(g::text), md5((g * 7)::text) || md5((g * 13)::text), g * 3.14159, timestamptz '2024-01-01' + g * interval '1 second'
        from generate_series(1, ${ROWS}) g;
      analyze ${big}.big;`);
  }, 120_000);

  it('aborted while its COPY streams into a multipart upload: no object and no open transaction are left', async () => {
    const ac = new AbortController();
    const watch = (o: { op: string; key?: string }) => {
      if (o.op === 'UploadPart' && o.key === `${p}tables/big.copy.zst`) ac.abort();
    };
    opWatchers.push(watch);
    try {
      const e = await writeArchive({ pool, storage, schema: big, prefix: p, meta, signal: ac.signal }).catch((x) => x);
      expect(e.name).toBe('AbortError');
    } finally {
      opWatchers.splice(opWatchers.indexOf(watch), 1);
    }
    // More parts were still to come: lib-storage aborted the multipart upload instead of completing it (s3rver
    // answers AbortMultipartUpload with MethodNotAllowed, so only the attempt shows here; S3 drops the parts).
    expect(ops.some((o) => o.op.startsWith('AbortMultipartUpload') && o.key === `${p}tables/big.copy.zst`)).toBe(true);
    expect(ops.some((o) => o.op === 'CompleteMultipartUpload' && o.key === `${p}tables/big.copy.zst`)).toBe(false);
    expect(await keysUnder(p)).toEqual([]);
    // The connection that was mid-COPY was discarded and its backend terminated: no snapshot or lock stays behind.
    const lingering = `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and (state like 'idle in transaction%' or query ilike 'copy (%')`;
    await expect.poll(async () => (await q(lingering))[0].n, { timeout: 5000 }).toBe(0);
    expect(await q(`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'big'`)).toEqual([{ n: 0 }]);
  }, 120_000);

  it('round-trips, and reports its throughput', async () => {
    const t0 = performance.now();
    let uploaded = 0;
    const m = await writeArchive({ pool, storage, schema: big, prefix: p, meta, onProgress: (_pct, step) => void (step === 'verifying' && (uploaded = performance.now())) });
    const written = (performance.now() - t0) / 1000;
    const dumped = (uploaded - t0) / 1000;
    const table = m.tables[0]!;
    expect(table.rowCount).toBe(ROWS);
    expect(table.rawBytes).toBeGreaterThan(48 * 1024 * 1024);
    expect(table.bytes).toBeGreaterThan(16 * 1024 * 1024);
    expect(ops.filter((o) => o.op === 'UploadPart' && o.key === `${p}tables/big.copy.zst`).length).toBeGreaterThan(1);

    const t1 = performance.now();
    await restoreArchive({ pool, storage, prefix: p, targetSchema: `${big}_r` });
    const restored = (performance.now() - t1) / 1000;
    const same = await q(
      `select (select count(*) from ${big}_r.big) as n,
              (select md5(string_agg(x::text, ',' order by id)) from ${big}.big x) = (select md5(string_agg(x::text, ',' order by id)) from ${big}_r.big x) as same`,
    );
    expect(same).toEqual([{ n: String(ROWS), same: true }]);

    const mb = table.rawBytes / 1024 / 1024;
    console.log(
      `backup archive throughput: ${mb.toFixed(1)} MB of COPY text (${(table.bytes / 1024 / 1024).toFixed(1)} MB compressed) — ` +
        `COPY+zstd+upload ${dumped.toFixed(2)} s = ${(mb / dumped).toFixed(1)} MB/s, with verification ${written.toFixed(2)} s = ${(mb / written).toFixed(1)} MB/s; ` +
        `verify+restore ${restored.toFixed(2)} s = ${(mb / restored).toFixed(1)} MB/s`,
    );
  }, 180_000);

  it('a restore aborted while its COPY FROM streams leaves no schema and a usable connection', async () => {
    const ac = new AbortController();
    const target = `${big}_aborted`;
    const e = await restoreArchive({
      pool,
      storage,
      prefix: p,
      targetSchema: target,
      signal: ac.signal,
      onProgress: (_pct, step) => void (step === 'table big' && setTimeout(() => ac.abort(), 300)),
    }).catch((x) => x);
    expect(e.name).toBe('AbortError');
    expect(await schemaExists(target)).toBe(false);
    expect(await q(`select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`)).toEqual([{ n: 0 }]);
    await Promise.all(Array.from({ length: 8 }, () => q('select 1')));
  }, 60_000);
});
