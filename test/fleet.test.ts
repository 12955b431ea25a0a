import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, createTenant, signUp, type TestUser } from './support/client.ts';
import { poll } from './support/workers.ts';
import { CLUSTER_FIELDS, CREATE_CLUSTER, CREATE_SERVER, SERVER_FIELDS, fleetName, platformStaff } from './support/fleet.ts';

/**
 * Issue 10 §1, the fleet inventory through GraphQL: platform staff manage clusters and servers; every malformed
 * address, network, host name, socket or prefix is BAD_USER_INPUT naming its field; tenants see enabled clusters by
 * name and nothing of the fleet's internals — in GraphQL and in SQL as the request role.
 */
let app: TestApp;
let db: pg.Client;
let staff: TestUser;
let admin: TestUser;
let tenant: { id: string; slug: string };

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  staff = await platformStaff(app);
  admin = await signUp(app, 'tenant-admin');
  tenant = await createTenant(admin, 'fleet');
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

const uuid = (globalId: string) => decodeGlobalID(globalId).id;

function refusal(r: { errors?: Array<{ extensions?: { code?: string; field?: string }; message: string }> }) {
  expect(r.errors, JSON.stringify(r)).toHaveLength(1);
  const e = r.errors![0]!;
  return { code: e.extensions?.code, field: e.extensions?.field, message: e.message };
}

async function newCluster(networks = ['10.20.0.0/16', 'fd20::/64']) {
  const name = fleetName('cl');
  const data = await staff.gql.ok(CREATE_CLUSTER, { i: { name, title: `Cluster ${name}`, region: 'eu-west-1', networks } });
  return data.createCluster as { id: string; name: string; networks: string[] };
}

function serverInput(clusterId: string, extra: Record<string, unknown> = {}) {
  return { clusterId, type: 'PROXY', name: fleetName('proxy'), hostname: 'proxy1.fleet.example.com', ip: '203.0.113.10', privateIp: '10.20.0.10', ...extra };
}

describe('clusters', () => {
  it('staff create one with its networks (normalised), read it by name, and update it', async () => {
    const name = fleetName('eu');
    const created = await staff.gql.ok(CREATE_CLUSTER, {
      i: { name: name.toUpperCase(), title: '  Europe  ', region: 'eu-west-1', networks: ['10.1.0.0/16', '2001:DB8:0::/48', '10.1.0.0/16'] },
    });
    expect(created.createCluster).toMatchObject({ name, title: 'Europe', region: 'eu-west-1', enabled: true, isDefault: false });
    expect(created.createCluster.networks.sort()).toEqual(['10.1.0.0/16', '2001:db8::/48']);

    const byName = await staff.gql.ok(`query($n: String!) { cluster(name: $n) { ${CLUSTER_FIELDS} storage { id } servers { totalCount } } }`, { n: name });
    expect(byName.cluster).toMatchObject({ id: created.createCluster.id, storage: null, servers: { totalCount: 0 } });

    const updated = await staff.gql.ok(`mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { ${CLUSTER_FIELDS} } }`, {
      i: { clusterId: created.createCluster.id, title: 'Europe West', enabled: false, networks: ['10.2.0.0/16'] },
    });
    expect(updated.updateCluster).toMatchObject({ title: 'Europe West', enabled: false, networks: ['10.2.0.0/16'] });

    const list = await staff.gql.ok(`{ clusters(first: 100) { edges { node { name isDefault enabled } } } }`);
    const names = list.clusters.edges.map((e: any) => e.node.name);
    expect(names).toEqual(expect.arrayContaining(['default', name]));
  });

  it('a taken name is CONFLICT on name; the default cluster cannot be disabled', async () => {
    const c = await newCluster();
    const again = await staff.gql.request(CREATE_CLUSTER, { i: { name: c.name, title: 'again', networks: ['10.9.0.0/16'] } });
    expect(refusal(again)).toMatchObject({ code: 'CONFLICT', field: 'name' });

    const def = await staff.gql.ok(`{ cluster(name: "default") { id isDefault enabled } }`);
    expect(def.cluster).toMatchObject({ isDefault: true, enabled: true });
    const off = await staff.gql.request(`mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { enabled } }`, { i: { clusterId: def.cluster.id, enabled: false } });
    expect(refusal(off)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'enabled' });
    // The database keeps the rule too (sql/0027).
    await expect(db.query(`update app_public.clusters set enabled = false where is_default`)).rejects.toThrow(/clusters_default_enabled/);
  });

  it.each([
    [['10.0.0.1/8'], /host bits set: the network is 10\.0\.0\.0\/8/],
    [['10.0.0.0/33'], /not a network in CIDR notation/],
    [['10.0.0.0'], /not a network in CIDR notation/],
    [['nonsense'], /not a network in CIDR notation/],
    [['fe80::/10', 'fe80::1%eth0/64'], /network 2: .*not a network/],
    [['2001:db8::1/32'], /host bits set: the network is 2001:db8::\/32/],
    [[], /at least one internal network/],
  ])('networks %j are refused naming networks', async (networks, message) => {
    const r = await staff.gql.request(CREATE_CLUSTER, { i: { name: fleetName('bad'), title: 'Bad', networks } });
    const e = refusal(r);
    expect(e).toMatchObject({ code: 'BAD_USER_INPUT', field: 'networks' });
    expect(e.message).toMatch(message);
  });

  it.each([
    ['name', { name: 'Not A Slug!' }],
    ['name', { name: 'two--hyphens' }],
    ['title', { title: '   ' }],
    ['region', { region: 'EU West' }],
  ])('a malformed %s is refused naming it', async (field, bad) => {
    const r = await staff.gql.request(CREATE_CLUSTER, { i: { name: fleetName('bad'), title: 'Bad', networks: ['10.0.0.0/8'], ...bad } });
    expect(refusal(r)).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });
});

describe('servers', () => {
  it('staff create a proxy (PENDING), activate it through a job, and move it ACTIVE ⇄ MAINTENANCE', async () => {
    const c = await newCluster();
    const created = await staff.gql.ok(CREATE_SERVER, {
      i: serverInput(c.id, { hostname: 'Proxy1.Fleet.Example.COM', ip: '2001:0DB8:0000::10', containerPrefix: 'erp-saas-cloud-c16', dockerSocket: '/var/run/docker.sock' }),
    });
    const server = created.createServer;
    expect(server).toMatchObject({
      hostname: 'proxy1.fleet.example.com',
      ip: '2001:db8::10',
      privateIp: '10.20.0.10',
      type: 'PROXY',
      status: 'PENDING',
      containerPrefix: 'erp-saas-cloud-c16',
      dockerSocket: '/var/run/docker.sock',
      reachable: null,
      cluster: { name: c.name },
    });

    // PENDING → MAINTENANCE is no move of the lifecycle.
    const early = await staff.gql.request(`mutation($s: ID!) { setServerMaintenance(serverId: $s, maintenance: true) { status } }`, { s: server.id });
    expect(refusal(early)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'serverId' });
    // Nor may a request make it ACTIVE itself: PENDING → ACTIVE is maintenance code's (sql/0025), checked in SQL too.
    await expect(asRequest(staff.id, () => db.query(`update app_public.servers set status = 'ACTIVE' where id = $1`, [uuid(server.id)]))).rejects.toThrow(
      /cannot move a server from PENDING to ACTIVE: only maintenance does/,
    );

    const asked = await staff.gql.ok(`mutation($s: ID!) { activateServer(serverId: $s) { status } }`, { s: server.id });
    expect(asked.activateServer.status).toBe('PENDING');
    await poll(async () => (await staff.gql.ok(`query($s: ID!) { node(id: $s) { ... on Server { status } } }`, { s: server.id })).node.status === 'ACTIVE', 15_000, 'the proxy activated');
    const again = await staff.gql.request(`mutation($s: ID!) { activateServer(serverId: $s) { status } }`, { s: server.id });
    expect(refusal(again)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'serverId' });

    const down = await staff.gql.ok(`mutation($s: ID!) { setServerMaintenance(serverId: $s, maintenance: true) { status } }`, { s: server.id });
    expect(down.setServerMaintenance.status).toBe('MAINTENANCE');
    const up = await staff.gql.ok(`mutation($s: ID!) { setServerMaintenance(serverId: $s, maintenance: false) { status } }`, { s: server.id });
    expect(up.setServerMaintenance.status).toBe('ACTIVE');

    const listed = await staff.gql.ok(`query($c: ID!) { servers(clusterId: $c, type: PROXY, status: ACTIVE) { totalCount edges { node { id } } } }`, { c: c.id });
    expect(listed.servers.edges.map((e: any) => e.node.id)).toEqual([server.id]);
    const none = await staff.gql.ok(`query($c: ID!) { servers(clusterId: $c, status: PENDING) { totalCount } }`, { c: c.id });
    expect(none.servers.totalCount).toBe(0);
  });

  it.each([
    ['ip', { ip: '300.1.2.3' }],
    ['ip', { ip: '10.0.0.1/32' }],
    ['ip', { ip: '010.0.0.1' }],
    ['ip', { ip: 'fe80::1%eth0' }],
    ['ip', { ip: 'example.com' }],
    ['privateIp', { privateIp: '10.20.0' }],
    ['privateIp', { privateIp: '::ffff:zz' }],
    ['hostname', { hostname: 'not a host' }],
    ['hostname', { hostname: 'localhost' }],
    ['hostname', { hostname: '-bad.example.com' }],
    ['hostname', { hostname: 'under_score.example.com' }],
    ['hostname', { hostname: 'trailing.example.com.' }],
    ['dockerSocket', { dockerSocket: 'var/run/docker.sock' }],
    ['dockerSocket', { dockerSocket: '/var/run/../docker.sock' }],
    ['dockerSocket', { dockerSocket: '/var/run/' }],
    ['containerPrefix', { containerPrefix: 'Erp-c1' }],
    ['containerPrefix', { containerPrefix: 'erp-saas' }],
    ['containerPrefix', { containerPrefix: 'erp-c12345' }],
    ['containerPrefix', { containerPrefix: 'erp--saas-c1' }],
    ['containerPrefix', { containerPrefix: '1erp-c1' }],
    ['name', { name: 'Bad_Name' }],
    ['type', { type: 'DATABASE' }],
  ])('a malformed %s (%j) is BAD_USER_INPUT naming it', async (field, bad) => {
    const c = await clusterForValidation();
    const r = await staff.gql.request(CREATE_SERVER, { i: serverInput(c, bad) });
    expect(refusal(r)).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('a private ip outside the cluster’s networks is refused naming privateIp (the trigger’s TPIN0 mapped), on create and update', async () => {
    const c = await newCluster(['10.30.0.0/16']);
    const outside = await staff.gql.request(CREATE_SERVER, { i: serverInput(c.id, { privateIp: '10.31.0.1' }) });
    const e = refusal(outside);
    expect(e).toMatchObject({ code: 'BAD_USER_INPUT', field: 'privateIp' });
    expect(e.message).toMatch(/the private ip 10\.31\.0\.1 is outside the internal networks of its cluster/);
    const v6 = await staff.gql.request(CREATE_SERVER, { i: serverInput(c.id, { privateIp: 'fd00::1' }) });
    expect(refusal(v6)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'privateIp' });

    const ok = await staff.gql.ok(CREATE_SERVER, { i: serverInput(c.id, { privateIp: '10.30.1.2' }) });
    const update = `mutation($i: UpdateServerInput!) { updateServer(input: $i) { privateIp containerPrefix dockerSocket hostname } }`;
    const moved = await staff.gql.request(update, { i: { serverId: ok.createServer.id, privateIp: '192.0.2.1' } });
    expect(refusal(moved)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'privateIp' });

    const changed = await staff.gql.ok(update, { i: { serverId: ok.createServer.id, hostname: 'edge2.fleet.example.com', containerPrefix: 'edge-c2', dockerSocket: '/run/docker.sock' } });
    expect(changed.updateServer).toEqual({ privateIp: '10.30.1.2', containerPrefix: 'edge-c2', dockerSocket: '/run/docker.sock', hostname: 'edge2.fleet.example.com' });
    const cleared = await staff.gql.ok(update, { i: { serverId: ok.createServer.id, containerPrefix: null, dockerSocket: null } });
    expect(cleared.updateServer).toMatchObject({ privateIp: '10.30.1.2', containerPrefix: null, dockerSocket: null });
    const badUpdate = await staff.gql.request(update, { i: { serverId: ok.createServer.id, dockerSocket: 'relative.sock' } });
    expect(refusal(badUpdate)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'dockerSocket' });

    // A network still holding a server's private ip cannot be removed (sql/0027): the refusal names networks.
    const strand = await staff.gql.request(`mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { networks } }`, { i: { clusterId: c.id, networks: ['10.40.0.0/16'] } });
    const s = refusal(strand);
    expect(s).toMatchObject({ code: 'BAD_USER_INPUT', field: 'networks' });
    expect(s.message).toMatch(/holds the private ip 10\.30\.1\.2/);
    const widened = await staff.gql.ok(`mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { networks } }`, { i: { clusterId: c.id, networks: ['10.0.0.0/8'] } });
    expect(widened.updateCluster.networks).toEqual(['10.0.0.0/8']);
  });

  it('a taken server name is CONFLICT on name; an unknown or malformed cluster id is refused naming clusterId', async () => {
    const c = await clusterForValidation();
    const input = serverInput(c);
    await staff.gql.ok(CREATE_SERVER, { i: input });
    expect(refusal(await staff.gql.request(CREATE_SERVER, { i: input }))).toMatchObject({ code: 'CONFLICT', field: 'name' });
    expect(refusal(await staff.gql.request(CREATE_SERVER, { i: serverInput('nope') }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'clusterId' });
    const unknown = Buffer.from(`Cluster:${crypto.randomUUID()}`).toString('base64');
    expect(refusal(await staff.gql.request(CREATE_SERVER, { i: serverInput(unknown) }))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'clusterId' });
  });
});

let validationCluster: string | undefined;
async function clusterForValidation() {
  validationCluster ??= (await newCluster()).id;
  return validationCluster;
}

/** Runs fn in a transaction as the request role with a user's context (and a tenant's, when given), rolled back. */
async function asRequest<T>(userGlobalId: string, fn: () => Promise<T>, tenantId = ''): Promise<T> {
  await db.query('begin');
  try {
    await db.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true), set_config('app.tenant_id', $2, true)`, [
      uuid(userGlobalId),
      tenantId,
    ]);
    return await fn();
  } finally {
    await db.query('rollback');
  }
}

describe('what a tenant admin sees of the fleet', () => {
  let hidden: { clusterId: string; enabledCluster: string; serverId: string };
  beforeAll(async () => {
    const c = await newCluster(['10.50.0.0/16']);
    const s = await staff.gql.ok(CREATE_SERVER, { i: serverInput(c.id, { privateIp: '10.50.0.5' }) });
    const off = await newCluster(['10.60.0.0/16']);
    await staff.gql.ok(`mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { enabled } }`, { i: { clusterId: off.id, enabled: false } });
    hidden = { clusterId: off.id, enabledCluster: c.name, serverId: s.createServer.id };
  });

  it('GraphQL: enabled clusters by name, title and region; no networks, servers or storage; servers FORBIDDEN; nodes null', async () => {
    const r = await admin.gql.ok(`{ clusters(first: 100) { edges { node { id name title region networks storage { id } servers { totalCount edges { node { id } } } } } } }`);
    const nodes = r.clusters.edges.map((e: any) => e.node);
    expect(nodes.map((n: any) => n.name)).toEqual(expect.arrayContaining(['default', hidden.enabledCluster]));
    expect(nodes.map((n: any) => n.id)).not.toContain(hidden.clusterId);
    for (const n of nodes) expect(n).toMatchObject({ networks: [], storage: null, servers: { totalCount: 0, edges: [] } });

    expect(refusal(await admin.gql.request(`{ servers { totalCount } }`))).toMatchObject({ code: 'FORBIDDEN' });
    const node = await admin.gql.ok(`query($s: ID!, $c: ID!) { s: node(id: $s) { id } c: node(id: $c) { id } }`, { s: hidden.serverId, c: hidden.clusterId });
    expect(node).toEqual({ s: null, c: null });
    const withTenant = await admin.gql.request(`{ servers { totalCount } }`, {}, { 'x-tenant': tenant.slug });
    expect(refusal(withTenant)).toMatchObject({ code: 'FORBIDDEN' });

    for (const [q, v] of [
      [CREATE_CLUSTER, { i: { name: fleetName('x'), title: 'x', networks: ['10.0.0.0/8'] } }],
      [`mutation($s: ID!) { setServerMaintenance(serverId: $s, maintenance: true) { id } }`, { s: hidden.serverId }],
      [`mutation($s: ID!) { activateServer(serverId: $s) { id } }`, { s: hidden.serverId }],
    ] as const) {
      expect(refusal(await admin.gql.request(q, v))).toMatchObject({ code: 'FORBIDDEN' });
    }
    // Site plans are for everyone, signed in or not.
    const plans = await new Gql(app).ok(`{ sitePlans { name title priceCents currency storageLimitBytes connectionLimit isolation isDefault features } }`);
    expect(plans.sitePlans.map((p: any) => p.name)).toEqual(['site-free', 'site-pro', 'site-dedicated']);
    expect(plans.sitePlans[0]).toMatchObject({ isDefault: true, isolation: 'SCHEMA', storageLimitBytes: 104857600 });
    // Anonymous callers see no cluster at all.
    expect((await new Gql(app).ok(`{ clusters { edges { node { name } } } }`)).clusters.edges).toEqual([]);
  });

  it('SQL as tenantplane_app with the tenant’s context: no server, network, database server, storage config or platform audit entry', async () => {
    const counts = await asRequest(
      admin.id,
      async () =>
        (
          await db.query(`select (select count(*)::int from app_public.servers) as servers, (select count(*)::int from app_public.cluster_networks) as networks,
                                 (select count(*)::int from app_public.database_servers) as database_servers, (select count(*)::int from app_public.storage_configs) as storage,
                                 (select count(*)::int from app_public.platform_audit_events) as audit,
                                 (select count(*)::int from app_public.clusters where not enabled) as disabled,
                                 (select count(*)::int from app_public.clusters) as clusters`)
        ).rows[0],
      uuid(tenant.id),
    );
    expect(counts).toMatchObject({ servers: 0, networks: 0, database_servers: 0, storage: 0, audit: 0, disabled: 0 });
    expect(counts.clusters).toBeGreaterThanOrEqual(2);
    // The owner sees the rows are there.
    const all = (await db.query(`select (select count(*)::int from app_public.servers) as servers, (select count(*)::int from app_public.cluster_networks) as networks`)).rows[0];
    expect(all.servers).toBeGreaterThan(0);
    expect(all.networks).toBeGreaterThan(0);
    // Writes find nothing or are refused; the check function refuses; the secrets are out of reach.
    expect(await asRequest(admin.id, async () => (await db.query(`update app_public.servers set hostname = 'x.example.com'`)).rowCount, uuid(tenant.id))).toBe(0);
    await expect(asRequest(admin.id, () => db.query(`insert into app_public.clusters (name, title) values ('evil', 'Evil')`), uuid(tenant.id))).rejects.toThrow(/row-level security/);
    await expect(asRequest(admin.id, () => db.query(`select app.request_fleet_check('server', $1)`, [uuid(hidden.serverId)]), uuid(tenant.id))).rejects.toThrow(/platform.fleet:write/);
    await expect(asRequest(admin.id, () => db.query(`select * from app_private.secrets`), uuid(tenant.id))).rejects.toThrow(/permission denied/);
  });
});

describe('the platform audit log', () => {
  it('records fleet mutations and failures, readable by staff with platform.audit:read only', async () => {
    const c = await newCluster(['10.70.0.0/16']);
    await staff.gql.request(CREATE_SERVER, { i: serverInput(c.id, { ip: 'bogus' }) });
    const r = await staff.gql.ok(`{ platformAuditEvents(first: 20) { edges { node { action outcome targetType targetId details actor { email } } } } }`);
    const events = r.platformAuditEvents.edges.map((e: any) => e.node);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'createCluster', outcome: 'SUCCESS', targetType: 'Cluster', targetId: uuid(c.id), actor: { email: staff.email } }),
        expect.objectContaining({ action: 'createServer', outcome: 'FAILURE', details: expect.objectContaining({ error: 'BAD_USER_INPUT', field: 'ip' }) }),
      ]),
    );
    expect(refusal(await admin.gql.request(`{ platformAuditEvents { edges { node { action } } } }`))).toMatchObject({ code: 'FORBIDDEN' });
    // A refused non-staff attempt leaves no entry (the insert policy admits staff recording their own acts only).
    const before = (await db.query(`select count(*)::int as n from app_public.platform_audit_events`)).rows[0].n;
    await admin.gql.request(CREATE_CLUSTER, { i: { name: fleetName('no'), title: 'no', networks: ['10.0.0.0/8'] } });
    expect((await db.query(`select count(*)::int as n from app_public.platform_audit_events`)).rows[0].n).toBe(before);
  });

  it('an OPERATOR reads the fleet (platform.fleet:read) but may not change it', async () => {
    const operator = await platformStaff(app, 'OPERATOR', 'operator');
    const r = await operator.gql.ok(`{ servers(first: 5) { totalCount } clusters { edges { node { networks } } } }`);
    expect(r.servers.totalCount).toBeGreaterThan(0);
    expect(r.clusters.edges.some((e: any) => e.node.networks.length > 0)).toBe(true);
    expect(refusal(await operator.gql.request(CREATE_CLUSTER, { i: { name: fleetName('op'), title: 'op', networks: ['10.0.0.0/8'] } }))).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('the app server of this process', () => {
  it('npm start’s workers registered this process as an ACTIVE, reachable APP server of the default cluster', async () => {
    const r = await staff.gql.ok(`{ servers(type: APP, first: 50) { edges { node { ${SERVER_FIELDS} } } } }`);
    const mine = r.servers.edges.map((e: any) => e.node).find((s: any) => s.process?.pid === process.pid);
    expect(mine, JSON.stringify(r)).toBeTruthy();
    expect(mine).toMatchObject({ type: 'APP', status: 'ACTIVE', reachable: true, cluster: { name: 'default' } });
    expect(mine.process.queues).toEqual(expect.arrayContaining(['database-server-check', 'storage-check', 'server-activate', 'site-provision']));
    expect(mine.lastHeartbeatAt).toBeTruthy();
  });
});
