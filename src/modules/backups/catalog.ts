import type pg from 'pg';
import { UnsupportedSchemaError, type ColumnEntry, type SequenceEntry, type TableDefinition, type TableEntry } from './manifest.ts';

/**
 * Reading a site schema's table definitions from pg_catalog, and turning them back into DDL.
 *
 * Everything is deparsed with `search_path` set to the schema alone, so PostgreSQL leaves the schema's own objects
 * unqualified (`nextval('t_id_seq'::regclass)`, `REFERENCES contacts(id)`) and qualifies everything else. Replayed with
 * `search_path` set to another schema, the same text builds the tables there: an archive restores under any name.
 *
 * Captured: columns (type, collation, NOT NULL, default, identity with its sequence state, stored/virtual generated
 * columns), primary key, unique, exclusion, check and foreign-key constraints (with NOT VALID / deferrable flags as
 * deparsed), other indexes, UNLOGGED, serial and free-standing sequences with their state.
 * Not captured (listed in the manifest's `omitted`): views, materialized views, functions, triggers, rules, row-level
 * security and policies, grants, comments, types defined in the schema, storage parameters, statistics targets.
 * Refused: partitioned and inherited tables, and columns whose type is defined in the schema itself (the restore
 * could not create them).
 */

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Schema names we create or rename: the same shape as site schemas (lower-case, digits, underscore). */
export function assertSchemaName(schema: string) {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`unsafe schema name: ${JSON.stringify(schema)}`);
  return quoteIdent(schema);
}

export interface SchemaDefinition {
  tables: Array<TableDefinition & { estimatedBytes: number }>;
  sequences: SequenceEntry[];
  omitted: string[];
}

const CONSTRAINT_KINDS: Record<string, TableDefinition['constraints'][number]['kind']> = {
  p: 'primary key',
  u: 'unique',
  x: 'exclusion',
  c: 'check',
  f: 'foreign key',
};

/**
 * Reads the definitions of every table of `schema`. Call it inside the backup's transaction: it sets
 * `search_path` locally (see above) and takes ACCESS SHARE locks on the tables, so no DDL changes them until commit.
 */
export async function readSchema(c: pg.ClientBase, schema: string): Promise<SchemaDefinition> {
  const ns = await c.query<{ oid: number }>(`select oid from pg_namespace where nspname = $1`, [schema]);
  if (!ns.rowCount) throw new Error(`schema ${schema} does not exist`);
  const nsOid = ns.rows[0]!.oid;
  await c.query(`select set_config('search_path', $1, true)`, [quoteIdent(schema)]);

  const tables = await c.query<{ oid: number; relname: string; relkind: string; unlogged: boolean; ispartition: boolean; size: string; inherits: boolean }>(
    `select c.oid, c.relname, c.relkind, c.relpersistence = 'u' as unlogged, c.relispartition as ispartition,
            pg_table_size(c.oid)::text as size,
            exists (select 1 from pg_inherits i where i.inhrelid = c.oid or i.inhparent = c.oid) as inherits
       from pg_class c where c.relnamespace = $1 and c.relkind in ('r', 'p') order by c.relname`,
    [nsOid],
  );
  for (const t of tables.rows) {
    if (t.relkind === 'p' || t.ispartition || t.inherits) throw new UnsupportedSchemaError(`table ${schema}.${t.relname} is partitioned or inherited: the archive format does not support that`);
  }
  // Lock before reading the rest, so what we read stays true until the COPYs are done.
  for (const t of tables.rows) await c.query(`lock table only ${quoteIdent(schema)}.${quoteIdent(t.relname)} in access share mode`);
  const oids = tables.rows.map((t) => t.oid);

  const columns = await c.query<{
    attrelid: number; attname: string; attnum: number; type: string; notnull: boolean; def: string | null; identity: string; generated: string;
    collation: string | null; local_type: boolean; seq: string | null; seqstart: string; seqincrement: string; seqmin: string; seqmax: string; seqcache: string; seqcycle: boolean;
  }>(
    `select a.attrelid, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as notnull,
            pg_get_expr(d.adbin, d.adrelid) as def, a.attidentity as identity, a.attgenerated as generated,
            case when a.attcollation <> 0 and a.attcollation <> t.typcollation then
              (select format('%I.%I', n.nspname, co.collname) from pg_collation co join pg_namespace n on n.oid = co.collnamespace where co.oid = a.attcollation)
            end as collation,
            exists (select 1 from pg_type t2 where t2.oid in (t.oid, t.typelem, t.typbasetype) and t2.typnamespace = $2) as local_type,
            s.relname as seq, q.seqstart::text, q.seqincrement::text, q.seqmin::text, q.seqmax::text, q.seqcache::text, q.seqcycle
       from pg_attribute a
       join pg_type t on t.oid = a.atttypid
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       left join pg_depend dep on a.attidentity <> '' and dep.refclassid = 'pg_class'::regclass and dep.refobjid = a.attrelid
            and dep.refobjsubid = a.attnum and dep.classid = 'pg_class'::regclass and dep.deptype = 'i'
       left join pg_class s on s.oid = dep.objid and s.relkind = 'S'
       left join pg_sequence q on q.seqrelid = s.oid
      where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped
      order by a.attrelid, a.attnum`,
    [oids, nsOid],
  );
  const constraints = await c.query<{ conrelid: number; conname: string; contype: string; def: string; conkey: number[] | null; confrelid: number }>(
    `select conrelid, conname, contype, pg_get_constraintdef(oid) as def, conkey, confrelid
       from pg_constraint where conrelid = any($1) and contype in ('p', 'u', 'x', 'c', 'f')
      order by conrelid, array_position(array['p', 'u', 'x', 'c', 'f']::"char"[], contype), conname`,
    [oids],
  );
  // pg_get_indexdef() always qualifies the table (`ON site_x.deals`): that part is rewritten to the bare name below.
  const indexes = await c.query<{ indrelid: number; relname: string; def: string; qualified: string }>(
    `select x.indrelid, i.relname, pg_get_indexdef(x.indexrelid) as def, format('%I.%I', n.nspname, t.relname) as qualified
       from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid join pg_namespace n on n.oid = t.relnamespace
      where x.indrelid = any($1)
        and not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid and k.conrelid = x.indrelid and k.contype in ('p', 'u', 'x'))
      order by x.indrelid, i.relname`,
    [oids],
  );

  const byOid = new Map(tables.rows.map((t) => [t.oid, t.relname]));
  const defs = tables.rows.map((t) => {
    const cols = columns.rows.filter((col) => col.attrelid === t.oid);
    const local = cols.find((col) => col.local_type);
    if (local) throw new UnsupportedSchemaError(`column ${t.relname}.${local.attname} has a type defined in schema ${schema}: the archive format does not capture types`);
    const cons = constraints.rows.filter((k) => k.conrelid === t.oid);
    const pk = cons.find((k) => k.contype === 'p');
    return {
      oid: t.oid,
      estimatedBytes: Number(t.size),
      refs: cons.filter((k) => k.contype === 'f' && k.confrelid !== t.oid && byOid.has(k.confrelid)).map((k) => byOid.get(k.confrelid)!),
      def: {
        name: t.relname,
        unlogged: t.unlogged,
        columns: cols.map(
          (col): ColumnEntry => ({
            name: col.attname,
            type: col.type,
            notNull: col.notnull,
            default: col.def,
            generated: col.generated === 's' ? 'stored' : col.generated === 'v' ? 'virtual' : null,
            identity: col.identity
              ? { kind: col.identity === 'a' ? 'always' : 'by default', sequence: col.seq!, start: col.seqstart, increment: col.seqincrement, min: col.seqmin, max: col.seqmax, cache: col.seqcache, cycle: col.seqcycle, lastValue: '0', isCalled: false }
              : null,
            collation: col.collation,
          }),
        ),
        primaryKey: pk ? pk.conkey!.map((n) => cols.find((col) => col.attnum === n)!.attname) : [],
        constraints: cons.map((k) => ({ name: k.conname, kind: CONSTRAINT_KINDS[k.contype]!, definition: k.def })),
        indexes: indexes.rows.filter((i) => i.indrelid === t.oid).map((i) => ({ name: i.relname, definition: unqualifyIndex(i.def, i.qualified, t.relname) })),
      },
    };
  });

  const seqs = await c.query<{ relname: string; type: string; seqstart: string; seqincrement: string; seqmin: string; seqmax: string; seqcache: string; seqcycle: boolean; tbl: number | null; col: string | null; identity: boolean }>(
    `select s.relname, format_type(q.seqtypid, null) as type, q.seqstart::text, q.seqincrement::text, q.seqmin::text, q.seqmax::text, q.seqcache::text, q.seqcycle,
            d.refobjid as tbl, a.attname as col, coalesce(d.deptype = 'i', false) as identity
       from pg_class s join pg_sequence q on q.seqrelid = s.oid
       left join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = s.oid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
       left join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
      where s.relnamespace = $1 and s.relkind = 'S' order by s.relname`,
    [nsOid],
  );
  const state = async (seq: string) => {
    const r = await c.query<{ last_value: string; is_called: boolean }>(`select last_value::text, is_called from ${quoteIdent(schema)}.${quoteIdent(seq)}`);
    return { lastValue: r.rows[0]!.last_value, isCalled: r.rows[0]!.is_called };
  };
  for (const d of defs) for (const col of d.def.columns) if (col.identity) Object.assign(col.identity, await state(col.identity.sequence));
  const sequences: SequenceEntry[] = [];
  for (const s of seqs.rows.filter((s) => !s.identity)) {
    if (!['smallint', 'integer', 'bigint'].includes(s.type)) throw new UnsupportedSchemaError(`sequence ${s.relname} has type ${s.type}`);
    sequences.push({
      name: s.relname,
      type: s.type as SequenceEntry['type'],
      start: s.seqstart,
      increment: s.seqincrement,
      min: s.seqmin,
      max: s.seqmax,
      cache: s.seqcache,
      cycle: s.seqcycle,
      ...(await state(s.relname)),
      ownedBy: s.tbl && byOid.has(s.tbl) && s.col ? { table: byOid.get(s.tbl)!, column: s.col } : null,
    });
  }

  return { tables: dependencyOrder(defs).map((d) => ({ ...d.def, estimatedBytes: d.estimatedBytes })), sequences, omitted: await omittedObjects(c, nsOid, oids) };
}

function unqualifyIndex(def: string, qualified: string, table: string) {
  const on = ` ON ${qualified} USING `;
  const at = def.indexOf(on);
  if (at < 0) throw new UnsupportedSchemaError(`cannot read the definition of an index of ${table}: ${def}`);
  return `${def.slice(0, at)} ON ${quoteIdent(table)} USING ${def.slice(at + on.length)}`;
}

/** Referenced tables first (depth-first); a cycle is broken by name order. Constraints are added after the data anyway. */
function dependencyOrder<T extends { def: { name: string }; refs: string[] }>(defs: T[]): T[] {
  const byName = new Map(defs.map((d) => [d.def.name, d]));
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: T) => {
    if (state.get(d.def.name)) return;
    state.set(d.def.name, 'visiting');
    for (const r of [...d.refs].sort()) visit(byName.get(r)!);
    state.set(d.def.name, 'done');
    out.push(d);
  };
  for (const d of defs) visit(d);
  return out;
}

/** Objects of the schema that the archive does not reproduce, described for people (the manifest's `omitted`). */
async function omittedObjects(c: pg.ClientBase, nsOid: number, tableOids: number[]): Promise<string[]> {
  const r = await c.query<{ what: string }>(
    `select what from (
       select case c.relkind when 'v' then 'view ' when 'm' then 'materialized view ' when 'f' then 'foreign table ' when 'c' then 'composite type ' end || c.relname as what
         from pg_class c where c.relnamespace = $1 and c.relkind in ('v', 'm', 'f', 'c')
       union all
       select 'type ' || t.typname from pg_type t
        where t.typnamespace = $1 and t.typtype in ('e', 'd', 'r', 'm', 'b') and t.typelem = 0 and t.typrelid = 0
       union all
       select case p.prokind when 'p' then 'procedure ' when 'a' then 'aggregate ' else 'function ' end || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
         from pg_proc p where p.pronamespace = $1
       union all
       select 'trigger ' || g.tgname || ' on ' || g.tgrelid::regclass::text from pg_trigger g where g.tgrelid = any($2) and not g.tgisinternal
       union all
       select 'rule ' || w.rulename || ' on ' || w.ev_class::regclass::text from pg_rewrite w where w.ev_class = any($2)
       union all
       select 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text from pg_policy p where p.polrelid = any($2)
       union all
       select 'row level security on ' || c.relname from pg_class c where c.oid = any($2) and c.relrowsecurity
       union all
       select 'grants on ' || c.relname from pg_class c where c.relnamespace = $1 and c.relacl is not null
       union all
       select 'comment on ' || c.relname from pg_description d join pg_class c on c.oid = d.objoid and d.classoid = 'pg_class'::regclass where c.relnamespace = $1
     ) o order by what`,
    [nsOid, tableOids],
  );
  return r.rows.map((x) => x.what);
}

/** Columns whose values are in the COPY stream (generated columns are computed again on restore). */
export const dataColumns = (t: Pick<TableEntry, 'columns'>) => t.columns.filter((col) => !col.generated).map((col) => col.name);

export function copyColumnList(t: Pick<TableEntry, 'columns'>) {
  const cols = dataColumns(t);
  return cols.length ? ` (${cols.map(quoteIdent).join(', ')})` : '';
}

const sequenceClauses = (s: { start: string; increment: string; min: string; max: string; cache: string; cycle: boolean }) =>
  `start with ${BigInt(s.start)} increment by ${BigInt(s.increment)} minvalue ${BigInt(s.min)} maxvalue ${BigInt(s.max)} cache ${BigInt(s.cache)} ${s.cycle ? 'cycle' : 'no cycle'}`;

export function createSequenceSql(s: SequenceEntry) {
  return `create sequence ${quoteIdent(s.name)} as ${s.type} ${sequenceClauses(s)}`;
}

/** CREATE TABLE with the columns only: constraints and indexes come after the data (as pg_dump does). */
export function createTableSql(t: TableEntry) {
  const cols = t.columns.map((col) => {
    let sql = `${quoteIdent(col.name)} ${col.type}`;
    if (col.collation) sql += ` collate ${col.collation}`;
    if (col.generated) sql += ` generated always as (${col.default}) ${col.generated}`;
    else if (col.default !== null) sql += ` default ${col.default}`;
    if (col.notNull) sql += ' not null';
    if (col.identity) sql += ` generated ${col.identity.kind} as identity (sequence name ${quoteIdent(col.identity.sequence)} ${sequenceClauses(col.identity)})`;
    return sql;
  });
  return `create ${t.unlogged ? 'unlogged ' : ''}table ${quoteIdent(t.name)} (\n  ${cols.join(',\n  ')}\n)`;
}

/** Constraints other than foreign keys, then the other indexes. */
export function postDataSql(t: TableEntry) {
  return [
    ...t.constraints.filter((k) => k.kind !== 'foreign key').map((k) => `alter table ${quoteIdent(t.name)} add constraint ${quoteIdent(k.name)} ${k.definition}`),
    ...t.indexes.map((i) => i.definition),
  ];
}

export function foreignKeySql(t: TableEntry) {
  return t.constraints.filter((k) => k.kind === 'foreign key').map((k) => `alter table ${quoteIdent(t.name)} add constraint ${quoteIdent(k.name)} ${k.definition}`);
}

/** setval() for every sequence (identity ones included) and OWNED BY for serial-style ones. */
export function sequenceStateSql(tables: TableEntry[], sequences: SequenceEntry[]) {
  const setval = (seq: string, v: { lastValue: string; isCalled: boolean }) => `select setval(${quoteLiteral(quoteIdent(seq))}::regclass, ${BigInt(v.lastValue)}, ${v.isCalled})`;
  return [
    ...sequences.flatMap((s) => [
      ...(s.ownedBy ? [`alter sequence ${quoteIdent(s.name)} owned by ${quoteIdent(s.ownedBy.table)}.${quoteIdent(s.ownedBy.column)}`] : []),
      setval(s.name, s),
    ]),
    ...tables.flatMap((t) => t.columns.flatMap((col) => (col.identity ? [setval(col.identity.sequence, col.identity)] : []))),
  ];
}
