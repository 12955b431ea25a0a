import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';

/**
 * prisma/schema.prisma is kept in step with sql/ by hand (the SQL is the source of truth). This compares Prisma's
 * own reading of the schema (its DMMF, with @map/@@map, nullability and native types) with the migrated database.
 *
 * The DMMF comes from the Prisma CLI's schema WebAssembly module (what `prisma generate` uses): @prisma/internals
 * is not a dependency here, and the generated client only carries a reduced runtime model without nullability.
 */

// ---------------------------------------------------------------------------------------------------------------
// DMMF

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'enum' | 'object' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  isUnique: boolean;
  isId: boolean;
  hasDefaultValue: boolean;
  nativeType?: [string, string[]] | null;
  relationName?: string;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  schema: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
  uniqueFields: string[][];
}
interface DmmfEnum {
  name: string;
  dbName?: string | null;
  schema?: string | null;
  values: { name: string; dbName: string | null }[];
}
interface Datamodel {
  models: DmmfModel[];
  enums: DmmfEnum[];
}

/** get_dmmf of prisma-schema-wasm, with the few wasm-bindgen imports it needs. */
function loadDmmf(schemaText: string): Datamodel {
  const prismaDir = path.dirname(createRequire(import.meta.url).resolve('prisma/package.json'));
  const wasmModule = new WebAssembly.Module(fs.readFileSync(path.join(prismaDir, 'build', 'prisma_schema_build_bg.wasm')));
  let ex: any;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const text = (ptr: number, len: number) => decoder.decode(new Uint8Array(ex.memory.buffer).subarray(ptr >>> 0, (ptr >>> 0) + len));
  const imports: Record<string, Record<string, (...args: any[]) => unknown>> = {};
  for (const imp of WebAssembly.Module.imports(wasmModule)) {
    let fn: (...args: any[]) => unknown;
    if (/_Error_/.test(imp.name)) fn = (p: number, l: number) => new Error(text(p, l));
    else if (/throw/.test(imp.name)) fn = (p: number, l: number) => {
      throw new Error(text(p, l));
    };
    else if (/set_message/.test(imp.name)) fn = (p: number, l: number) => {
      throw new Error(`prisma-schema-wasm panicked: ${text(p, l)}`);
    };
    else if (/init_externref_table/.test(imp.name)) fn = () => {
      const table = ex.__wbindgen_externrefs as WebAssembly.Table;
      const base = table.grow(4);
      table.set(0, undefined);
      table.set(base, undefined);
      table.set(base + 1, null);
      table.set(base + 2, true);
      table.set(base + 3, false);
    };
    else throw new Error(`prisma-schema-wasm (prisma ${prismaDir}) needs an import this test does not provide: ${imp.name}; update loadDmmf`);
    (imports[imp.module] ??= {})[imp.name] = fn;
  }
  ex = new WebAssembly.Instance(wasmModule, imports as WebAssembly.Imports).exports;
  ex.__wbindgen_start();
  const input = new TextEncoder().encode(JSON.stringify({ prismaSchema: [['schema.prisma', schemaText]], noColor: true }));
  const ptr = ex.__wbindgen_malloc(input.length, 1) >>> 0;
  new Uint8Array(ex.memory.buffer).set(input, ptr);
  const [outPtr, outLen, errRef, isErr] = ex.get_dmmf(ptr, input.length) as number[];
  if (isErr) throw ex.__wbindgen_externrefs.get(errRef);
  const json = text(outPtr!, outLen!);
  ex.__wbindgen_free(outPtr, outLen, 1);
  return (JSON.parse(json) as { datamodel: Datamodel }).datamodel;
}

// ---------------------------------------------------------------------------------------------------------------
// Database catalogue

interface Column {
  table: string;
  column: string;
  nullable: boolean;
  dataType: string;
  udtSchema: string;
  udtName: string;
  hasDefault: boolean;
}

const SCHEMA = 'app_public';
let app: TestApp;
let db: pg.Client;
let dm: Datamodel;
let tables: string[];
let columns: Column[];
let enumLabels: Map<string, string[]>;

beforeAll(async () => {
  dm = loadDmmf(fs.readFileSync(path.resolve(import.meta.dirname, '../prisma/schema.prisma'), 'utf8'));
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  tables = (
    await db.query(`select table_name from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE' order by 1`, [SCHEMA])
  ).rows.map((r) => r.table_name);
  columns = (
    await db.query(
      `select table_name as table, column_name as column, is_nullable = 'YES' as nullable, data_type as "dataType",
              udt_schema as "udtSchema", udt_name as "udtName", (column_default is not null or is_identity = 'YES') as "hasDefault"
         from information_schema.columns where table_schema = $1 order by table_name, ordinal_position`,
      [SCHEMA],
    )
  ).rows;
  enumLabels = new Map();
  for (const r of (
    await db.query(
      `select t.typname as name, array_agg(e.enumlabel::text order by e.enumsortorder) as labels
         from pg_type t join pg_namespace n on n.oid = t.typnamespace join pg_enum e on e.enumtypid = t.oid
        where n.nspname = $1 group by t.typname`,
      [SCHEMA],
    )
  ).rows) {
    enumLabels.set(r.name, r.labels);
  }
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

const tableOf = (m: DmmfModel) => m.dbName ?? m.name;
const columnOf = (f: DmmfField) => f.dbName ?? f.name;
const enumDbName = (e: DmmfEnum) => e.dbName ?? e.name;
const scalarFields = (m: DmmfModel) => m.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum' || f.kind === 'unsupported');
const modelByName = (name: string) => dm.models.find((m) => m.name === name)!;

/** The PostgreSQL type (udt_name) Prisma expects for a scalar field, from its native type or Prisma's default mapping. */
function expectedUdt(f: DmmfField): string {
  if (f.kind === 'enum') return enumDbName(dm.enums.find((e) => e.name === f.type)!);
  const native = f.nativeType?.[0];
  if (native) {
    const byNative: Record<string, string> = {
      Uuid: 'uuid', Text: 'text', VarChar: 'varchar', Char: 'bpchar', Citext: 'citext', Inet: 'inet',
      Timestamptz: 'timestamptz', Timestamp: 'timestamp', Date: 'date', Time: 'time', Timetz: 'timetz',
      Integer: 'int4', SmallInt: 'int2', BigInt: 'int8', Oid: 'oid', DoublePrecision: 'float8', Real: 'float4',
      Decimal: 'numeric', Money: 'money', Boolean: 'bool', JsonB: 'jsonb', Json: 'json', ByteA: 'bytea', Xml: 'xml', Bit: 'bit', VarBit: 'varbit',
    };
    if (!byNative[native]) throw new Error(`no mapping for native type @db.${native} (${f.name}); extend expectedUdt`);
    return byNative[native];
  }
  // Prisma's default PostgreSQL type per scalar. DateTime defaults to timestamp WITHOUT time zone: our columns are
  // timestamptz, so a DateTime field missing @db.Timestamptz is reported here as a mismatch, which is intended.
  const byScalar: Record<string, string> = {
    String: 'text', Int: 'int4', BigInt: 'int8', Float: 'float8', Decimal: 'numeric', Boolean: 'bool',
    DateTime: 'timestamp', Json: 'jsonb', Bytes: 'bytea',
  };
  if (!byScalar[f.type]) throw new Error(`no mapping for Prisma type ${f.type} (${f.name}); extend expectedUdt`);
  return byScalar[f.type];
}

describe('prisma/schema.prisma against the migrated database (schema app_public)', () => {
  it('the DMMF was read (sanity)', () => {
    expect(dm.models.length).toBeGreaterThan(0);
    expect(tables.length).toBeGreaterThan(0);
    for (const m of dm.models) expect(m.schema, m.name).toBe(SCHEMA);
  });

  it('has one model per table and one table per model', () => {
    expect(dm.models.map(tableOf).sort()).toEqual([...tables].sort());
  });

  it('has the same columns, table by table', () => {
    const mismatches: string[] = [];
    for (const m of dm.models) {
      const inPrisma = scalarFields(m).map(columnOf).sort();
      const inSql = columns.filter((c) => c.table === tableOf(m)).map((c) => c.column).sort();
      for (const c of inSql) if (!inPrisma.includes(c)) mismatches.push(`${tableOf(m)}.${c}: column has no field in model ${m.name}`);
      for (const c of inPrisma) if (!inSql.includes(c)) mismatches.push(`${m.name} field mapped to ${tableOf(m)}.${c}: no such column`);
    }
    expect(mismatches).toEqual([]);
  });

  it('agrees on nullability, type and the presence of a default', () => {
    const mismatches: string[] = [];
    for (const m of dm.models) {
      for (const f of scalarFields(m)) {
        const c = columns.find((c) => c.table === tableOf(m) && c.column === columnOf(f));
        if (!c) continue; // reported by the column test
        const where = `${m.name}.${f.name} (${c.table}.${c.column})`;
        // Scalar lists (String[]) are NOT NULL arrays: Prisma marks them not required, and their udt is `_<element>`.
        if (f.isList ? c.nullable : f.isRequired === c.nullable) mismatches.push(`${where}: Prisma ${f.isRequired ? 'required' : 'optional'}, column ${c.nullable ? 'nullable' : 'NOT NULL'}`);
        const udt = f.isList ? `_${expectedUdt(f)}` : expectedUdt(f);
        if (c.udtName !== udt) mismatches.push(`${where}: Prisma ${f.type}${f.nativeType ? ` @db.${f.nativeType[0]}` : ''} expects ${udt}, column is ${c.udtName}`);
        if (f.kind === 'enum' && (c.dataType !== 'USER-DEFINED' || c.udtSchema !== SCHEMA)) mismatches.push(`${where}: enum column is ${c.dataType} in ${c.udtSchema}`);
        // A Prisma default the database lacks breaks inserts through Prisma; the reverse forces needless values.
        if (f.hasDefaultValue !== c.hasDefault) mismatches.push(`${where}: Prisma ${f.hasDefaultValue ? 'has' : 'has no'} default, column ${c.hasDefault ? 'has' : 'has no'} default`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('has the same enums with the same labels', () => {
    const inPrisma = new Map(dm.enums.map((e) => [enumDbName(e), e.values.map((v) => v.dbName ?? v.name)]));
    expect([...inPrisma.keys()].sort()).toEqual([...enumLabels.keys()].sort());
    for (const [name, labels] of inPrisma) {
      // The order matters to SQL (`role >= 'ADMIN'`), not to Prisma: compare as sets.
      expect([...labels].sort(), name).toEqual([...(enumLabels.get(name) ?? [])].sort());
    }
  });

  it('has the same primary keys and unique constraints', async () => {
    const { rows } = await db.query(
      `select c.relname as table, i.indisprimary as primary, array_agg(a.attname::text order by k.ord) as columns
         from pg_index i
         join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
         cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
         join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
        where n.nspname = $1 and i.indisunique and i.indpred is null and i.indexprs is null
        group by c.relname, i.indexrelid, i.indisprimary`,
      [SCHEMA],
    );
    const key = (table: string, cols: string[]) => `${table}(${[...cols].sort().join(',')})`;
    const sqlPrimary = rows.filter((r) => r.primary).map((r) => key(r.table, r.columns)).sort();
    const sqlUnique = rows.filter((r) => !r.primary).map((r) => key(r.table, r.columns)).sort();
    const prismaPrimary: string[] = [];
    const prismaUnique: string[] = [];
    for (const m of dm.models) {
      const col = (name: string) => columnOf(m.fields.find((f) => f.name === name)!);
      const idFields = m.primaryKey?.fields ?? m.fields.filter((f) => f.isId).map((f) => f.name);
      prismaPrimary.push(key(tableOf(m), idFields.map(col)));
      for (const f of m.fields.filter((f) => f.isUnique)) prismaUnique.push(key(tableOf(m), [columnOf(f)]));
      for (const u of m.uniqueFields) prismaUnique.push(key(tableOf(m), u.map(col)));
    }
    expect(prismaPrimary.sort()).toEqual(sqlPrimary);
    expect(prismaUnique.sort()).toEqual(sqlUnique);
  });

  it('has the same foreign keys, with the same ON DELETE', async () => {
    const actions: Record<string, string> = { a: 'NoAction', r: 'Restrict', c: 'Cascade', n: 'SetNull', d: 'SetDefault' };
    const { rows } = await db.query(
      `select c.conrelid::regclass::text as from_table, c.confrelid::regclass::text as to_table, c.confdeltype::text as on_delete,
              (select array_agg(a.attname::text order by k.ord) from unnest(c.conkey) with ordinality k(n, ord)
                 join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n) as from_columns,
              (select array_agg(a.attname::text order by k.ord) from unnest(c.confkey) with ordinality k(n, ord)
                 join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n) as to_columns
         from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = $1`,
      [SCHEMA],
    );
    const strip = (t: string) => t.replace(/^app_public\./, '');
    const fk = (from: string, fromCols: string[], to: string, toCols: string[], onDelete: string) =>
      `${from}(${fromCols.join(',')}) -> ${to}(${toCols.join(',')}) on delete ${onDelete}`;
    const inSql = rows.map((r) => fk(strip(r.from_table), r.from_columns, strip(r.to_table), r.to_columns, actions[r.on_delete]!)).sort();
    const inPrisma: string[] = [];
    for (const m of dm.models) {
      for (const f of m.fields.filter((f) => f.kind === 'object' && f.relationFromFields?.length)) {
        const target = modelByName(f.type);
        const from = f.relationFromFields!.map((n) => columnOf(m.fields.find((x) => x.name === n)!));
        const to = f.relationToFields!.map((n) => columnOf(target.fields.find((x) => x.name === n)!));
        // Prisma's default when onDelete is not written: Restrict for a required relation, SetNull for an optional one.
        const onDelete = f.relationOnDelete ?? (f.isRequired ? 'Restrict' : 'SetNull');
        inPrisma.push(fk(tableOf(m), from, tableOf(target), to, onDelete));
      }
    }
    expect(inPrisma.sort()).toEqual(inSql);
  });

  it('the generated client was generated from this datamodel (run `npm run generate` if not)', () => {
    // The client embeds the schema it was generated from; compare datamodels, not text (formatting may differ).
    const generated = fs.readFileSync(path.resolve(import.meta.dirname, '../src/db/generated/prisma/internal/class.ts'), 'utf8');
    const match = /^\s*"inlineSchema": ("(?:[^"\\]|\\.)*"),?$/m.exec(generated);
    expect(match, 'inlineSchema not found in the generated client: update this test').not.toBeNull();
    expect(loadDmmf(JSON.parse(match![1]!) as string)).toEqual(dm);
  });
});
