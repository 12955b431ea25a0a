/**
 * The platform staff's pages (issue 12 §2): every tenant, suspended or not, with suspend (a reason) and reactivate;
 * the fleet — clusters with their storage, servers with their heartbeats, database servers with their checks. Shown
 * only to users whose platformRole is not NONE; what each of them may read or change is still the API's decision
 * (platform.* permissions in SQL), so a VIEWER sees the buttons refused in words.
 */
import type { FormEvent } from 'react';
import {
  CheckDatabaseServerDocument,
  CheckRegistryDocument,
  CheckStorageConfigDocument,
  CreateRegistryDocument,
  ClustersDocument,
  PlatformTenantsDocument,
  ReactivateTenantDocument,
  ServersDocument,
  SuspendTenantDocument,
  type ClustersQuery,
  type PlatformTenantsQuery,
  type ServersQuery,
} from '../../src/sdk/index.ts';
import { client, ErrorText, Field, useAction, useLoad } from './ui.tsx';

const fetchTenants = () => client.request(PlatformTenantsDocument, { first: 100 });

export function PlatformTenants() {
  const { data, error, act } = useLoad<PlatformTenantsQuery>(fetchTenants, []);
  const suspend = (tenantId: string) => (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const reason = String(new FormData(e.currentTarget).get('reason'));
    void act(() => client.request(SuspendTenantDocument, { tenantId, reason }));
  };
  return (
    <section aria-labelledby="platform-tenants-title">
      <h2 id="platform-tenants-title">Platform: tenants</h2>
      <ErrorText error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Plan</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {data?.platformTenants.edges.map(({ node: t }) => (
            <tr key={t.id} data-tenant={t.slug}>
              <td>
                {t.name} <small>{t.slug}</small>
              </td>
              <td>{t.plan.name}</td>
              <td className="status">
                {t.status}
                {t.suspensionReason && <small> — {t.suspensionReason}</small>}
              </td>
              <td>{new Date(t.createdAt).toLocaleString()}</td>
              <td className="actions">
                {t.status === 'ACTIVE' && (
                  <form className="inline" onSubmit={suspend(t.id)} aria-label={`Suspend ${t.slug}`}>
                    <label className="field">
                      <span>Reason</span>
                      <input name="reason" required />
                    </label>
                    <button type="submit" className="danger">
                      Suspend
                    </button>
                  </form>
                )}
                {t.status === 'SUSPENDED' && (
                  <button type="button" onClick={() => void act(() => client.request(ReactivateTenantDocument, { tenantId: t.id }))}>
                    Reactivate
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// Clusters and servers at once (two requests side by side, not one after the other).
const fetchFleet = () => Promise.all([client.request(ClustersDocument, { first: 100 }), client.request(ServersDocument, { first: 100 })]);

export function PlatformFleet() {
  const { data, error, act } = useLoad<[ClustersQuery, ServersQuery]>(fetchFleet, []);
  const servers = data?.[1].servers.edges.map((e) => e.node) ?? [];
  return (
    <section aria-labelledby="fleet-title">
      <h2 id="fleet-title">Platform: fleet</h2>
      <p>
        <small>A check runs as a job: its outcome shows here once it has run (Refresh).</small>
      </p>
      <ErrorText error={error} />
      {data?.[0].clusters.edges.map(({ node: c }) => (
        <article key={c.id} className="role" data-cluster={c.name} aria-labelledby={`cluster-${c.id}`}>
          <h3 id={`cluster-${c.id}`}>
            {c.title} <small>{c.name}</small>
          </h3>
          <p>
            {c.region} · {c.enabled ? 'enabled' : 'disabled'}
            {c.isDefault ? ' · default' : ''} · networks {c.networks.join(', ') || '—'}
          </p>
          <p>
            Storage:{' '}
            {c.storage ? (
              <span data-storage-check={c.storage.checkStatus}>
                <code>{c.storage.endpoint}</code> {c.storage.defaultBucket} — {c.storage.checkStatus}
                {c.storage.checkError && <small> {c.storage.checkError}</small>}{' '}
                <button type="button" onClick={() => void act(() => client.request(CheckStorageConfigDocument, { storageConfigId: c.storage!.id }))}>
                  Check storage
                </button>
              </span>
            ) : (
              'none'
            )}
          </p>
          <RegistryOf cluster={c} act={act} />
          <table>
            <thead>
              <tr>
                <th scope="col">Server</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Heartbeat</th>
                <th scope="col">Database</th>
              </tr>
            </thead>
            <tbody>
              {servers
                .filter((s) => s.cluster.id === c.id)
                .map((s) => (
                  <tr key={s.id} data-server={s.name}>
                    <td>
                      {s.name} <small>{s.hostname}</small>
                    </td>
                    <td>{s.type}</td>
                    <td>{s.status}</td>
                    <td>{s.type === 'APP' ? (s.reachable ? `reachable, ${s.lastHeartbeatAt ? new Date(s.lastHeartbeatAt).toLocaleTimeString() : ''}` : 'unreachable') : '—'}</td>
                    <td>
                      {s.database ? (
                        <span data-database-check={s.database.checkStatus} data-checked-at={s.database.checkedAt ?? ''}>
                          <code>
                            {s.database.host}:{s.database.port}
                          </code>{' '}
                          {s.database.version ?? ''} capacity {s.database.capacity} — {s.database.checkStatus}
                          {s.database.checkError && <small> {s.database.checkError}</small>}
                          {s.database.checkedAt && <small> (checked {new Date(s.database.checkedAt).toLocaleTimeString()})</small>}{' '}
                          <button type="button" onClick={() => void act(() => client.request(CheckDatabaseServerDocument, { serverId: s.id }))}>
                            Check
                          </button>
                        </span>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </article>
      ))}
      <button type="button" onClick={() => void act(async () => undefined)}>
        Refresh
      </button>
    </section>
  );
}

/** The cluster's OCI registry (issue 11): where its deploy candidates go; the password is write-only. */
function RegistryOf({ cluster, act }: { cluster: ClustersQuery['clusters']['edges'][number]['node']; act: (fn: () => Promise<unknown>) => Promise<void> }) {
  const add = useAction(async (f) => {
    await act(() =>
      client.request(CreateRegistryDocument, {
        input: { clusterId: cluster.id, url: String(f.get('url')), namespace: String(f.get('namespace')), username: String(f.get('username')), password: String(f.get('password')) },
      }),
    );
  });
  const r = cluster.registry;
  if (r)
    return (
      <p data-registry-check={r.checkStatus}>
        Registry: <code>{r.url}</code> {r.namespace} ({r.username}) — {r.checkStatus}
        {r.checkError && <small> {r.checkError}</small>}{' '}
        <button type="button" onClick={() => void act(() => client.request(CheckRegistryDocument, { registryId: r.id }))}>
          Check registry
        </button>
      </p>
    );
  return (
    <details>
      <summary>Add a registry</summary>
      <form onSubmit={add.onSubmit} aria-label={`Registry of ${cluster.name}`} className="inline">
        <Field label="Registry URL" name="url" />
        <Field label="Namespace" name="namespace" />
        <Field label="Username" name="username" autoComplete="off" />
        <Field label="Password" name="password" type="password" autoComplete="new-password" />
        <button type="submit" disabled={add.busy}>
          Add registry
        </button>
        <ErrorText error={add.error} />
      </form>
    </details>
  );
}
