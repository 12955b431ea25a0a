/**
 * Releases (issue 11): app sources, release groups (the tenant's own and the public ones), their deploy candidates
 * and benches, and the sites running them with their apps as modules. Every long step — a build, a deploy, a site's
 * provisioning, an update, an app change, a module job — is a job whose progress shows live (JobProgress).
 */
import { useState } from 'react';
import {
  BuildDeployCandidateDocument,
  CreateAppSourceDocument,
  CreateReleaseGroupDocument,
  CreateSiteDocument,
  DeployBenchDocument,
  DisableSiteAppDocument,
  EnableSiteAppDocument,
  InstallSiteAppDocument,
  RemoveSiteAppDocument,
  RunModuleJobDocument,
  TenantReleasesDocument,
  UpdateReleaseGroupDocument,
  UpdateSiteDocument,
  type JobFieldsFragment,
  type ReleaseGroupFieldsFragment,
  type ReleasedSiteFieldsFragment,
  type TenantFieldsFragment,
  type TenantReleasesQuery,
} from '../../src/sdk/index.ts';
import { client, ErrorText, Field, JobProgress, useAction, useLoad } from './ui.tsx';

type AppSource = NonNullable<TenantReleasesQuery['tenant']>['appSources']['edges'][number]['node'];
type Jobs = Record<string, JobFieldsFragment>;

const shortDigest = (d?: string | null) => (d ? `${d.slice(0, 19)}…` : '—');
const sourceLabel = (s: AppSource) => `${s.repositoryUrl}${s.path !== '.' ? ` (${s.path})` : ''} @ ${s.version}`;

export function Releases({ tenant }: { tenant: TenantFieldsFragment }) {
  const { data, error, load, act } = useLoad(() => client.request(TenantReleasesDocument, { slug: tenant.slug }), [tenant.slug]);
  // The job last started for a group, candidate, site or app (key), shown live where it was started.
  const [jobs, setJobs] = useState<Jobs>({});
  const started = (key: string) => (job: JobFieldsFragment) => setJobs((j) => ({ ...j, [key]: job }));
  const sources = data?.tenant?.appSources.edges.map((e) => e.node) ?? [];
  const groups = data?.tenant?.releaseGroups.edges.map((e) => e.node) ?? [];
  const ownIds = new Set(groups.map((g) => g.id));
  const publicGroups = (data?.publicReleaseGroups ?? []).filter((g) => !ownIds.has(g.id));
  const sites = (data?.tenant?.sites.edges.map((e) => e.node) ?? []).filter((s) => s.bench);
  const addSource = useAction(async (f) => {
    await client.request(CreateAppSourceDocument, {
      input: { tenantId: tenant.id, repositoryUrl: String(f.get('repositoryUrl')), branch: String(f.get('branch') || 'main'), version: String(f.get('version')), path: String(f.get('path') || '.') },
    });
    await load();
  });
  const addGroup = useAction(async (f) => {
    await client.request(CreateReleaseGroupDocument, { input: { tenantId: tenant.id, name: String(f.get('groupName')), title: String(f.get('title')), apps: f.getAll('app').map(String) } });
    await load();
  });
  return (
    <section aria-labelledby="releases-title">
      <h2 id="releases-title">Releases</h2>
      <ErrorText error={error} />
      {data === null ? (
        <p>Loading…</p>
      ) : (
        <>
          <h3>App sources</h3>
          {sources.length === 0 ? (
            <p>No app source yet.</p>
          ) : (
            <ul className="sources">
              {sources.map((s) => (
                <li key={s.id}>
                  <code>{sourceLabel(s)}</code> <small>branch {s.branch}</small>
                </li>
              ))}
            </ul>
          )}
          <form onSubmit={addSource.onSubmit} aria-label="Add an app source" className="inline">
            <label className="field">
              <span>Repository</span>
              <input name="repositoryUrl" required list="builtin-apps" placeholder="https://… or builtin:notes" />
            </label>
            <datalist id="builtin-apps">
              {data.builtinApps.map((a) => (
                <option key={a.name} value={a.repositoryUrl}>
                  {a.description} ({a.versions.join(', ')})
                </option>
              ))}
            </datalist>
            <label className="field">
              <span>Branch</span>
              <input name="branch" defaultValue="main" required />
            </label>
            <Field label="Version (tag or commit)" name="version" />
            <Field label="Folder" name="path" required={false} />
            <button type="submit" disabled={addSource.busy}>
              Add source
            </button>
            <ErrorText error={addSource.error} />
          </form>

          <h3>Release groups</h3>
          {groups.map((g) => (
            <Group key={g.id} group={g} sources={sources} tenant={tenant} jobs={jobs} started={started} reload={load} act={act} />
          ))}
          <form onSubmit={addGroup.onSubmit} aria-label="Create a release group" className="inline">
            <Field label="Group name (DNS-safe)" name="groupName" />
            <Field label="Title" name="title" />
            <fieldset>
              <legend>Apps, in order</legend>
              {sources.map((s) => (
                <label key={s.id} className="check">
                  <input type="checkbox" name="app" value={s.id} /> {sourceLabel(s)}
                </label>
              ))}
            </fieldset>
            <button type="submit" disabled={addGroup.busy}>
              Create group
            </button>
            <ErrorText error={addGroup.error} />
          </form>

          {publicGroups.length > 0 && (
            <>
              <h3>Public release groups</h3>
              {publicGroups.map((g) => (
                <article key={g.id} className="role" aria-labelledby={`group-${g.id}`}>
                  <h4 id={`group-${g.id}`}>
                    {g.title} <small>public</small>
                  </h4>
                  <p>{g.apps.map((a) => `${a.repositoryUrl} @ ${a.version}`).join(', ')}</p>
                  <NewSite group={g} tenant={tenant} jobs={jobs} started={started} reload={load} />
                </article>
              ))}
            </>
          )}

          <h3>Sites on releases</h3>
          {sites.length === 0 ? <p>No site runs a release yet.</p> : sites.map((s) => <ReleasedSite key={s.id} site={s} groups={[...groups, ...publicGroups]} jobs={jobs} started={started} act={act} reload={load} />)}
        </>
      )}
    </section>
  );
}

interface GroupProps {
  group: ReleaseGroupFieldsFragment;
  sources: AppSource[];
  tenant: TenantFieldsFragment;
  jobs: Jobs;
  started: (key: string) => (job: JobFieldsFragment) => void;
  reload: () => Promise<void>;
  act: (fn: () => Promise<unknown>) => Promise<void>;
}

/** One release group: its apps (changeable), Build, its candidates (Deploy) and benches, and a new site on it. */
function Group({ group: g, sources, tenant, jobs, started, reload, act }: GroupProps) {
  const candidates = g.candidates.edges.map((e) => e.node);
  const benches = g.benches.edges.map((e) => e.node);
  const setApps = useAction(async (f) => {
    await client.request(UpdateReleaseGroupDocument, { groupId: g.id, input: { apps: f.getAll('app').map(String) } });
    await reload();
  });
  return (
    <article className="role" data-group={g.name} aria-labelledby={`group-${g.id}`}>
      <h4 id={`group-${g.id}`}>
        {g.title} <small>{g.name}{g.public ? ' · public' : ''} · {g.clusters.map((c) => c.name).join(', ')}</small>
      </h4>
      <details>
        <summary>Apps: {g.apps.map((a) => `${a.repositoryUrl} @ ${a.version}`).join(', ')}</summary>
        <form onSubmit={setApps.onSubmit} aria-label={`Apps of ${g.name}`} className="inline">
          {sources.map((s) => (
            <label key={s.id} className="check">
              <input type="checkbox" name="app" value={s.id} defaultChecked={g.apps.some((a) => a.id === s.id)} /> {sourceLabel(s)}
            </label>
          ))}
          <button type="submit" disabled={setApps.busy}>
            Save apps
          </button>
          <ErrorText error={setApps.error} />
        </form>
      </details>
      <button type="button" onClick={() => void act(async () => started(g.id)((await client.request(BuildDeployCandidateDocument, { groupId: g.id })).buildDeployCandidate.job))}>
        Build {g.name}
      </button>
      {jobs[g.id] && <JobProgress key={jobs[g.id]!.id} job={jobs[g.id]!} onDone={() => void reload()} />}
      <table>
        <caption>Deploy candidates</caption>
        <thead>
          <tr>
            <th scope="col">Built</th>
            <th scope="col">Status</th>
            <th scope="col">Apps</th>
            <th scope="col">Manifest digest</th>
            <th scope="col">Deploy</th>
          </tr>
        </thead>
        <tbody>
          {candidates.map((c) => (
            <tr key={c.id} data-candidate-status={c.status}>
              <td>{new Date(c.createdAt).toLocaleString()}</td>
              <td className="status">
                {c.status}
                {c.error && <small> {c.error}</small>}
              </td>
              <td>{c.apps.map((a) => `${a.name} ${a.version}`).join(', ') || '—'}</td>
              <td>
                <code title={c.manifestDigest ?? ''}>{shortDigest(c.manifestDigest)}</code>
              </td>
              <td>
                {c.status === 'SUCCESS' && (
                  <button type="button" onClick={() => void act(async () => started(c.id)((await client.request(DeployBenchDocument, { candidateId: c.id })).deployBench.job))}>
                    Deploy
                  </button>
                )}
                {jobs[c.id] && <JobProgress key={jobs[c.id]!.id} job={jobs[c.id]!} onDone={() => void reload()} />}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {benches.length > 0 && (
        <ul className="benches">
          {benches.map((b) => (
            <li key={b.id} data-bench-status={b.status}>
              Bench of {b.candidate.imageTag?.slice(0, 8)} — {b.status}
              {b.reason && <small> {b.reason}</small>}
              {b.servers.length > 0 && <small> · {b.servers.map((s) => `${s.serverName}: ${s.status}`).join(', ')}</small>}
            </li>
          ))}
        </ul>
      )}
      <NewSite group={g} tenant={tenant} jobs={jobs} started={started} reload={reload} />
    </article>
  );
}

function NewSite({ group: g, tenant, jobs, started, reload }: Omit<GroupProps, 'sources' | 'act' | 'group'> & { group: Pick<ReleaseGroupFieldsFragment, 'id' | 'name' | 'latestActiveBench'> }) {
  const create = useAction(async (f) => {
    const r = await client.request(CreateSiteDocument, { input: { tenantId: tenant.id, name: String(f.get('name')), displayName: String(f.get('displayName')), releaseGroup: g.id } });
    started(`new-site-${g.id}`)(r.createSite.job);
    await reload();
  });
  if (!g.latestActiveBench) return <p><small>No active bench yet: build, then deploy a candidate to create sites on it.</small></p>;
  return (
    <>
      <form onSubmit={create.onSubmit} aria-label={`Create a site on ${g.name}`} className="inline">
        <Field label="Site name (DNS-safe)" name="name" />
        <Field label="Display name" name="displayName" />
        <button type="submit" disabled={create.busy}>
          Create site on {g.name}
        </button>
        <ErrorText error={create.error} />
      </form>
      {jobs[`new-site-${g.id}`] && <JobProgress key={jobs[`new-site-${g.id}`]!.id} job={jobs[`new-site-${g.id}`]!} onDone={() => void reload()} />}
    </>
  );
}

/** An app's lifecycle changes, each answering its job. */
const CHANGES = {
  install: async (siteId: string, app: string) => (await client.request(InstallSiteAppDocument, { siteId, app })).installSiteApp,
  enable: async (siteId: string, app: string) => (await client.request(EnableSiteAppDocument, { siteId, app })).enableSiteApp,
  disable: async (siteId: string, app: string) => (await client.request(DisableSiteAppDocument, { siteId, app })).disableSiteApp,
  remove: async (siteId: string, app: string) => (await client.request(RemoveSiteAppDocument, { siteId, app })).removeSiteApp,
};

/** A site running a release: its bench, Update when the group has a newer bench, its apps as modules and their jobs. */
function ReleasedSite({ site, groups, jobs, started, act, reload }: { site: ReleasedSiteFieldsFragment; groups: Array<Pick<ReleaseGroupFieldsFragment, 'id' | 'latestActiveBench'>>; jobs: Jobs; started: GroupProps['started']; act: GroupProps['act']; reload: () => Promise<void> }) {
  const group = groups.find((g) => g.id === site.bench?.group.id);
  const newer = group?.latestActiveBench && group.latestActiveBench.id !== site.bench?.id;
  const offered = site.bench?.candidate.apps ?? [];
  const missing = offered.filter((a) => !site.modules.some((m) => m.name === a.name));
  const change = (kind: keyof typeof CHANGES, app: string) => act(async () => started(`${site.id}/${app}`)(await CHANGES[kind](site.id, app)));
  return (
    <article className="role" data-released-site={site.name} aria-labelledby={`released-${site.id}`}>
      <h4 id={`released-${site.id}`}>
        {site.displayName} <small>{site.name} · {site.status} · {site.bench?.group.title} {site.bench?.candidate.imageTag?.slice(0, 8)}</small>
      </h4>
      {newer && site.status === 'HEALTHY' && (
        <button type="button" onClick={() => void act(async () => started(site.id)((await client.request(UpdateSiteDocument, { siteId: site.id })).updateSite))}>
          Update {site.name} to the latest bench
        </button>
      )}
      {jobs[site.id] && <JobProgress key={jobs[site.id]!.id} job={jobs[site.id]!} onDone={() => void reload()} />}
      <table>
        <caption>Apps of {site.name}</caption>
        <thead>
          <tr>
            <th scope="col">App</th>
            <th scope="col">Status</th>
            <th scope="col">Version</th>
            <th scope="col">Module jobs</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {site.modules.map((m) => (
            <tr key={m.name} data-module={m.name}>
              <td>{m.name}</td>
              <td className="status">
                {m.status}
                {m.error && <small> {m.error}</small>}
              </td>
              <td>{m.version ?? '—'}</td>
              <td>
                {m.jobs.map((j) => (
                  <button key={j.name} type="button" onClick={() => void act(async () => started(`${site.id}/${m.name}/${j.name}`)((await client.request(RunModuleJobDocument, { siteId: site.id, app: m.name, job: j.name })).runModuleJob))}>
                    Run {j.name}
                  </button>
                ))}
                {m.jobs.length > 0 && <small> {m.jobs.map((j) => `${j.name}: ${j.schedule} UTC`).join(', ')}</small>}
                {m.jobs.map((j) => {
                  const job = jobs[`${site.id}/${m.name}/${j.name}`];
                  return job && <JobProgress key={job.id} job={job} onDone={() => void reload()} />;
                })}
              </td>
              <td>
                {m.status === 'ENABLED' && (
                  <button type="button" onClick={() => void change('disable', m.name)}>
                    Disable {m.name}
                  </button>
                )}
                {m.status === 'DISABLED' && (
                  <button type="button" onClick={() => void change('enable', m.name)}>
                    Enable {m.name}
                  </button>
                )}
                {(m.status === 'ENABLED' || m.status === 'DISABLED') && (
                  <button type="button" className="danger" onClick={() => confirm(`Remove ${m.name} from ${site.name}? Its tables are dropped.`) && void change('remove', m.name)}>
                    Remove {m.name}
                  </button>
                )}
                {jobs[`${site.id}/${m.name}`] && <JobProgress key={jobs[`${site.id}/${m.name}`]!.id} job={jobs[`${site.id}/${m.name}`]!} onDone={() => void reload()} />}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {missing.map((a) => (
        <button key={a.name} type="button" onClick={() => void change('install', a.name)}>
          Install {a.name} {a.version}
        </button>
      ))}
      {missing.map((a) => {
        const job = jobs[`${site.id}/${a.name}`];
        return job && <JobProgress key={job.id} job={job} onDone={() => void reload()} />;
      })}
    </article>
  );
}
