import type pg from 'pg';

/**
 * How the control-plane tables would be spread over a Citus cluster, derived from the migrated catalogue (no table
 * list here): every table with a `tenant_id` is distributed by it, co-located with the tenants themselves
 * (distributed by `id`); what those tables reference or read next to their rows is a reference table; the rest stays
 * on the coordinator. `test/distribution.test.ts` checks the keys against it and keeps docs/scale-out.md current.
 */

/** Schemas of infrastructure that stays on the coordinator whatever it holds, and why. */
export const COORDINATOR_SCHEMAS: Record<string, string> = {
  pgboss: "pg-boss's queue: polled with SKIP LOCKED, one queue for the whole deployment",
  migrations: "node-pg-migrate's ledger",
};

export const TENANT_COLUMN = 'tenant_id';

export interface Table {
  table: string;
  schema: string;
  /** Columns in order, with their types (format_type) and nullability. */
  columns: Array<{ name: string; type: string; notNull: boolean; identity: boolean }>;
}
export interface Constraint {
  table: string;
  name: string;
  /** p primary key, u unique, f foreign key, x exclusion. */
  kind: 'p' | 'u' | 'f' | 'x';
  columns: string[];
  refTable: string | null;
  refColumns: string[];
}
export interface UniqueIndex {
  table: string;
  name: string;
  /** Key columns; null where the key is an expression. */
  columns: Array<string | null>;
  definition: string;
}
export interface CatalogueFacts {
  tables: Table[];
  constraints: Constraint[];
  /** Unique indexes that back no constraint (expression and partial ones included). */
  uniqueIndexes: UniqueIndex[];
  policies: Array<{ table: string; name: string; expression: string }>;
  triggers: Array<{ table: string; name: string; fn: string }>;
  /** Functions of the app's schemas by qualified name; the bodies of overloads are joined. */
  functions: Array<{ name: string; body: string }>;
}

const USER_SCHEMAS = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`;

/** Reads CatalogueFacts (any role that can see the catalogue; function bodies need no privilege). */
export async function readCatalogue(db: pg.ClientBase | pg.Pool): Promise<CatalogueFacts> {
  const q = async <T>(sql: string) => (await db.query(sql)).rows as T[];
  const tables = await q<{ table: string; schema: string; columns: Table['columns'] }>(
    `select n.nspname || '.' || c.relname as table, n.nspname as schema,
            coalesce((select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                        'notNull', a.attnotnull, 'identity', a.attidentity <> '') order by a.attnum)
                        from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and not c.relispartition and ${USER_SCHEMAS}
      order by 1`,
  );
  const constraints = await q<Constraint>(
    `select n.nspname || '.' || r.relname as table, k.conname as name, k.contype::text as kind,
            (select array_agg(a.attname::text order by x.i) from unnest(k.conkey) with ordinality x(n, i)
               join pg_attribute a on a.attrelid = k.conrelid and a.attnum = x.n) as columns,
            case when k.confrelid <> 0 then (select fn.nspname || '.' || f.relname from pg_class f join pg_namespace fn on fn.oid = f.relnamespace where f.oid = k.confrelid) end as "refTable",
            coalesce((select array_agg(a.attname::text order by x.i) from unnest(k.confkey) with ordinality x(n, i)
               join pg_attribute a on a.attrelid = k.confrelid and a.attnum = x.n), '{}') as "refColumns"
       from pg_constraint k join pg_class r on r.oid = k.conrelid join pg_namespace n on n.oid = r.relnamespace
      where k.contype in ('p', 'u', 'f', 'x') and not r.relispartition and ${USER_SCHEMAS}
      order by 1, 2`,
  );
  const uniqueIndexes = await q<UniqueIndex>(
    `select n.nspname || '.' || r.relname as table, ic.relname as name,
            (select array_agg(case when x.n = 0 then null else a.attname::text end order by x.i)
               from unnest(i.indkey[0:i.indnkeyatts - 1]) with ordinality x(n, i)
               left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = x.n) as columns,
            pg_get_indexdef(i.indexrelid) as definition
       from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class r on r.oid = i.indrelid
       join pg_namespace n on n.oid = r.relnamespace
      where i.indisunique and r.relkind in ('r', 'p') and not r.relispartition and ${USER_SCHEMAS}
        and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
      order by 1, 2`,
  );
  const policies = await q<{ table: string; name: string; expression: string }>(
    `select schemaname || '.' || tablename as table, policyname as name,
            coalesce(qual, '') || ' ' || coalesce(with_check, '') as expression
       from pg_policies order by 1, 2`,
  );
  const triggers = await q<{ table: string; name: string; fn: string }>(
    `select n.nspname || '.' || r.relname as table, t.tgname as name, pn.nspname || '.' || p.proname as fn
       from pg_trigger t join pg_class r on r.oid = t.tgrelid join pg_namespace n on n.oid = r.relnamespace
       join pg_proc p on p.oid = t.tgfoid join pg_namespace pn on pn.oid = p.pronamespace
      where not t.tgisinternal and ${USER_SCHEMAS}
      order by 1, 2`,
  );
  const functions = await q<{ name: string; body: string }>(
    `select n.nspname || '.' || p.proname as name, string_agg(p.prosrc, E'\\n' order by p.oid) as body
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${USER_SCHEMAS} and n.nspname not in (${Object.keys(COORDINATOR_SCHEMAS).map((s) => `'${s}'`).join(', ')})
      group by 1 order by 1`,
  );
  return { tables, constraints, uniqueIndexes, policies, triggers, functions };
}

export type Placement =
  | { kind: 'distributed'; column: string; root: boolean }
  | { kind: 'reference'; why: string }
  | { kind: 'local'; why: string };

export interface DistributionPlan {
  /** The table every tenant_id points at, distributed by its key. */
  root: string;
  rootColumn: string;
  placements: Map<string, Placement>;
  /** Tables the rules cannot place: each names the table and what makes it ambiguous. */
  ambiguous: string[];
  /** Foreign keys from distributed tables to reference tables: `table (cols) → target (cols)`. */
  referenceReferences: string[];
  /** Distributed and reference tables in an order create_*_table accepts (what a table references comes first). */
  order: { reference: string[]; distributed: string[] };
  /** The functions run by the policies and triggers of distributed tables, and the tables each one reads. */
  shardFunctions: Map<string, string[]>;
}

const hasColumn = (t: Table, column: string) => t.columns.some((c) => c.name === column);
const quotedName = (name: string) => new RegExp(`(?<![\\w.$"])${name.replace('.', '\\.')}(?![\\w$])`, 'i');

/** Orders tables so that each comes after the tables of the set it references (ties by name). */
function topological(tables: string[], constraints: Constraint[]): string[] {
  const set = new Set(tables);
  const needs = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const k of constraints) if (k.kind === 'f' && set.has(k.table) && k.refTable && set.has(k.refTable) && k.refTable !== k.table) needs.get(k.table)!.add(k.refTable);
  const out: string[] = [];
  const done = new Set<string>();
  while (out.length < tables.length) {
    const ready = [...tables].sort().filter((t) => !done.has(t) && [...needs.get(t)!].every((d) => done.has(d)));
    // A cycle of foreign keys: emit the rest by name (Citus would need one FK added after both tables exist).
    const next = ready.length ? ready : [...tables].sort().filter((t) => !done.has(t));
    for (const t of next) {
      done.add(t);
      out.push(t);
    }
  }
  return out;
}

/** Derives where every table would live on Citus. Deterministic for a given catalogue. */
export function planDistribution(facts: CatalogueFacts): DistributionPlan {
  const byName = new Map(facts.tables.map((t) => [t.table, t]));
  const fks = facts.constraints.filter((k) => k.kind === 'f');
  const ambiguous: string[] = [];
  const placements = new Map<string, Placement>();
  const coordinator = (t: Table) => t.schema in COORDINATOR_SCHEMAS;
  const tenantTables = facts.tables.filter((t) => !coordinator(t) && hasColumn(t, TENANT_COLUMN)).map((t) => t.table);
  const tenant = new Set(tenantTables);

  // The root: what `tenant_id` alone references (app_public.tenants → its id).
  const roots = new Map<string, string>();
  for (const k of fks) if (tenant.has(k.table) && k.columns.length === 1 && k.columns[0] === TENANT_COLUMN && k.refTable && !tenant.has(k.refTable)) roots.set(k.refTable, k.refColumns[0]!);
  if (roots.size !== 1) throw new Error(`expected every ${TENANT_COLUMN} to reference one table, found: ${[...roots.keys()].join(', ') || 'none'}`);
  const [root, rootColumn] = [...roots][0]!;
  placements.set(root, { kind: 'distributed', column: rootColumn, root: true });
  for (const t of tenantTables) placements.set(t, { kind: 'distributed', column: TENANT_COLUMN, root: false });
  const distributed = (t: string) => placements.get(t)?.kind === 'distributed';

  // Functions run next to a shard: the policies and triggers of distributed tables, and what those call.
  const fnNames = facts.functions.map((f) => f.name);
  const bodies = new Map(facts.functions.map((f) => [f.name, f.body]));
  const calls = (text: string) => fnNames.filter((f) => quotedName(f).test(text));
  const shardTexts = [
    ...facts.policies.filter((p) => distributed(p.table)).map((p) => p.expression),
    ...facts.triggers.filter((t) => distributed(t.table)).map((t) => bodies.get(t.fn) ?? ''),
  ];
  const reached = new Set<string>(facts.triggers.filter((t) => distributed(t.table) && bodies.has(t.fn)).map((t) => t.fn));
  for (const text of shardTexts) for (const f of calls(text)) reached.add(f);
  for (let grew = true; grew; ) {
    grew = false;
    for (const f of [...reached]) for (const g of calls(bodies.get(f)!)) if (!reached.has(g)) reached.add(g), (grew = true);
  }
  const shardFunctions = new Map<string, string[]>();
  for (const f of [...reached].sort()) {
    const reads = facts.tables.map((t) => t.table).filter((t) => quotedName(t).test(bodies.get(f)!));
    if (reads.length) shardFunctions.set(f, reads);
  }

  // Reference tables: referenced by a distributed or reference table (Citus allows no other target), or read next
  // to tenant rows by the functions above. The first reason found is the one given.
  const reference = new Map<string, string>();
  const readNextToShards = new Map<string, string>();
  for (const [f, reads] of shardFunctions) {
    for (const t of reads) if (!distributed(t) && !coordinator(byName.get(t)!) && !readNextToShards.has(t)) readNextToShards.set(t, `read by ${f}, which runs next to the shards`);
  }
  const referenceOrRead = (t: string) => reference.has(t) || readNextToShards.has(t);
  for (let grew = true; grew; ) {
    grew = false;
    for (const k of fks) {
      if (!k.refTable || reference.has(k.refTable) || distributed(k.refTable)) continue;
      if (distributed(k.table) || referenceOrRead(k.table)) {
        if (coordinator(byName.get(k.refTable)!)) ambiguous.push(`${k.table} references ${k.refTable} (${k.name}), which stays on the coordinator`);
        else reference.set(k.refTable, `referenced by ${k.table} (${k.name})`), (grew = true);
      }
    }
  }
  for (const [t, why] of readNextToShards) if (!reference.has(t)) reference.set(t, why);
  for (const [t, why] of reference) placements.set(t, { kind: 'reference', why });

  for (const t of facts.tables) {
    if (placements.has(t.table)) continue;
    const toReference = fks.filter((k) => k.table === t.table && k.refTable && reference.has(k.refTable)).map((k) => k.refTable!);
    const why = coordinator(t)
      ? COORDINATOR_SCHEMAS[t.schema]!
      : `used on the coordinator only${toReference.length ? ` (a Citus local table: it references ${[...new Set(toReference)].join(', ')})` : ''}`;
    placements.set(t.table, { kind: 'local', why });
  }

  // No tenant_id, yet pointing at tenant rows: neither a reference table (it would point into shards) nor local.
  for (const k of fks) {
    if (k.refTable && distributed(k.refTable) && !distributed(k.table)) {
      ambiguous.push(`${k.table} has no ${TENANT_COLUMN} but references ${k.refTable} (${k.name}): add ${TENANT_COLUMN} (distributed) or drop the reference`);
    }
  }

  const referenceReferences = fks
    .filter((k) => distributed(k.table) && k.refTable && placements.get(k.refTable)?.kind === 'reference')
    .map((k) => `${k.table} (${k.columns.join(', ')}) → ${k.refTable} (${k.refColumns.join(', ')})`);
  const ofKind = (kind: Placement['kind']) => [...placements].filter(([, p]) => p.kind === kind).map(([t]) => t);
  return {
    root,
    rootColumn,
    placements,
    ambiguous: [...new Set(ambiguous)].sort(),
    referenceReferences,
    order: {
      reference: topological(ofKind('reference'), facts.constraints),
      distributed: [root, ...topological(ofKind('distributed').filter((t) => t !== root), facts.constraints)],
    },
    shardFunctions,
  };
}

/** Distribution column of a distributed table, else undefined. */
export function distributionColumn(plan: DistributionPlan, table: string): string | undefined {
  const p = plan.placements.get(table);
  return p?.kind === 'distributed' ? p.column : undefined;
}

/** Primary keys of distributed tables that do not lead with their distribution column (or are missing). */
export function primaryKeyViolations(facts: CatalogueFacts, plan: DistributionPlan): string[] {
  const out: string[] = [];
  for (const t of facts.tables) {
    const column = distributionColumn(plan, t.table);
    if (!column) continue;
    const pk = facts.constraints.find((k) => k.table === t.table && k.kind === 'p');
    if (!pk) out.push(`${t.table}: no primary key`);
    else if (pk.columns[0] !== column) out.push(`${t.table}: primary key (${pk.columns.join(', ')}) does not lead with ${column}`);
  }
  return out;
}

/** The distribution column of every distributed table: NOT NULL and of the root key's type (co-location needs both). */
export function distributionColumnViolations(facts: CatalogueFacts, plan: DistributionPlan): string[] {
  const rootType = facts.tables.find((t) => t.table === plan.root)!.columns.find((c) => c.name === plan.rootColumn)!.type;
  const out: string[] = [];
  for (const t of facts.tables) {
    const column = distributionColumn(plan, t.table);
    if (!column) continue;
    const c = t.columns.find((x) => x.name === column)!;
    if (!c.notNull) out.push(`${t.table}.${column} is nullable`);
    if (c.type !== rootType) out.push(`${t.table}.${column} is ${c.type}, not ${rootType} like ${plan.root}.${plan.rootColumn}`);
  }
  return out;
}

/**
 * Foreign keys between distributed tables that do not join on the distribution column in first position on both
 * sides (Citus needs the distribution columns equated; leading with them keeps the index usable for it).
 */
export function foreignKeyViolations(facts: CatalogueFacts, plan: DistributionPlan): string[] {
  const out: string[] = [];
  for (const k of facts.constraints) {
    if (k.kind !== 'f' || !k.refTable) continue;
    const from = distributionColumn(plan, k.table);
    const to = distributionColumn(plan, k.refTable);
    if (!from || !to) continue;
    if (k.columns[0] !== from || k.refColumns[0] !== to) {
      out.push(`${k.table} ${k.name}: (${k.columns.join(', ')}) → ${k.refTable} (${k.refColumns.join(', ')}) does not lead with ${from} → ${to}`);
    }
  }
  return out;
}

/**
 * Unique constraints, exclusion constraints and unique indexes of distributed tables whose key lacks the
 * distribution column as a plain column: Citus refuses them (a shard can only check its own rows).
 * Keyed `table (columns)`, an expression shown as `expr`.
 */
export function uniquenessViolations(facts: CatalogueFacts, plan: DistributionPlan): Array<{ key: string; name: string }> {
  const out: Array<{ key: string; name: string }> = [];
  const check = (table: string, name: string, columns: Array<string | null>) => {
    const column = distributionColumn(plan, table);
    if (column && !columns.includes(column)) out.push({ key: `${table} (${columns.map((c) => c ?? 'expr').join(', ')})`, name });
  };
  for (const k of facts.constraints) if (k.kind === 'p' || k.kind === 'u' || k.kind === 'x') check(k.table, k.name, k.columns);
  for (const i of facts.uniqueIndexes) check(i.table, i.name, i.columns);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Policies with a sub-select on tables Citus would manage (Citus: "Subqueries are not supported in policies on distributed tables"). */
export function subSelectPolicies(facts: CatalogueFacts, plan: DistributionPlan, kind: 'distributed' | 'reference') {
  return facts.policies.filter((p) => plan.placements.get(p.table)?.kind === kind && /\bselect\b/i.test(p.expression));
}

export interface DocException {
  /** What makes the value global. */
  why: string;
  /** What Citus would need instead. */
  citus: string;
}

/** The generated part of docs/scale-out.md (between its markers). Deterministic: the same catalogue gives the same bytes. */
export function renderDistribution(facts: CatalogueFacts, plan: DistributionPlan, exceptions: Record<string, DocException>): string {
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  const pad = (s: string, n: number) => s + ' '.repeat(Math.max(1, n - s.length));
  const ref = plan.order.reference;
  const dist = plan.order.distributed;
  const local = [...plan.placements].filter(([, p]) => p.kind === 'local').map(([t]) => t).sort();
  out('```sql');
  out(`-- Reference tables (${ref.length}): one copy on every node; what a table references comes first.`);
  const statement = (t: string) => `select create_reference_table('${t}');`;
  const w = Math.max(0, ...ref.map((t) => statement(t).length)) + 1;
  for (const t of ref) out(pad(statement(t), w) + `-- ${(plan.placements.get(t) as { why: string }).why}`);
  out();
  out(`-- Distributed tables (${dist.length}): the tenants by ${plan.rootColumn}, every table with a ${TENANT_COLUMN} by it, all co-located.`);
  for (const t of dist) {
    const column = distributionColumn(plan, t)!;
    out(t === plan.root ? `select create_distributed_table('${t}', '${column}');` : `select create_distributed_table('${t}', '${column}', colocate_with => '${plan.root}');`);
  }
  out();
  out(`-- Stay on the coordinator (${local.length}):`);
  const rows: Array<[string, string]> = [];
  for (const t of local) if (!(t.split('.')[0]! in COORDINATOR_SCHEMAS)) rows.push([t, (plan.placements.get(t) as { why: string }).why]);
  for (const schema of Object.keys(COORDINATOR_SCHEMAS).sort()) {
    const names = local.filter((t) => t.startsWith(`${schema}.`)).map((t) => t.slice(schema.length + 1));
    if (names.length) rows.push([names.length === 1 ? `${schema}.${names[0]}` : `${schema}.{${names.join(', ')}}`, COORDINATOR_SCHEMAS[schema]!]);
  }
  const lw = Math.max(0, ...rows.filter(([t]) => !t.includes('{')).map(([t]) => t.length)) + 2;
  for (const [t, why] of rows) out(t.includes('{') ? `--   ${t}:\n--   ${' '.repeat(lw)}${why}` : `--   ${pad(t, lw)}${why}`);
  out('```');
  out();
  out(`Foreign keys from distributed tables to reference tables (${plan.referenceReferences.length}; allowed):`);
  out();
  for (const r of plan.referenceReferences) out(`- ${r}`);
  out();
  const unique = uniquenessViolations(facts, plan);
  out(`Unique keys Citus would refuse as they are (${unique.length}: no distribution column in them):`);
  out();
  out('| key | constraint or index | why it is global | what Citus would need |');
  out('| --- | --- | --- | --- |');
  for (const u of unique) {
    const e = exceptions[u.key];
    out(`| \`${u.key}\` | \`${u.name}\` | ${e?.why ?? '**not documented**'} | ${e?.citus ?? ''} |`);
  }
  out();
  const policies = (kind: 'distributed' | 'reference') => {
    const list = subSelectPolicies(facts, plan, kind);
    return `${list.length} on ${new Set(list.map((p) => p.table)).size} ${kind} tables`;
  };
  out(`Policies with a sub-select, which Citus refuses on the tables it manages: ${policies('distributed')}, ${policies('reference')}.`);
  out();
  out('Functions that the policies and triggers of distributed tables run (directly or through each other), by the tables they name:');
  out();
  out('| function | distributed tables it names | reference tables | coordinator-only tables |');
  out('| --- | --- | --- | --- |');
  for (const [f, reads] of plan.shardFunctions) {
    const of = (kind: Placement['kind']) => reads.filter((t) => plan.placements.get(t)?.kind === kind).map((t) => `\`${t}\``).join(', ');
    out(`| \`${f}\` | ${of('distributed')} | ${of('reference')} | ${of('local')} |`);
  }
  const identity = facts.tables.flatMap((t) => (distributionColumn(plan, t.table) ? t.columns.filter((c) => c.identity).map((c) => `\`${t.table}.${c.name}\` (${c.type})`) : []));
  if (identity.length) {
    out();
    out(`Identity columns on distributed tables: ${identity.join(', ')}.`);
  }
  return lines.join('\n');
}

export const DOC_BEGIN = '<!-- BEGIN distribution: generated by test/distribution.test.ts (UPDATE_DOCS=1 rewrites it) -->';
export const DOC_END = '<!-- END distribution -->';

/** The document with its generated part replaced. */
export function spliceDoc(doc: string, generated: string): string {
  const begin = doc.indexOf(DOC_BEGIN);
  const end = doc.indexOf(DOC_END);
  if (begin < 0 || end < begin) throw new Error(`docs/scale-out.md lacks the markers ${DOC_BEGIN} … ${DOC_END}`);
  return `${doc.slice(0, begin + DOC_BEGIN.length)}\n${generated}\n${doc.slice(end)}`;
}
