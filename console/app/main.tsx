/**
 * The Tenantplane console (issue 12 §2): the reference web client. It talks to the API with the typed SDK only
 * (src/sdk: one TypedDocumentNode per operation of schema/operations/), over HTTP and graphql-ws, and needs no
 * privilege the API would not give the same user over plain GraphQL. Bundled by console/build.mjs, served at
 * /console by the API itself (src/graphql/console.ts).
 */
import { StrictMode, useCallback, useEffect, useState, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import {
  AcceptInvitationDocument,
  BackupSiteDocument,
  CancelJobDocument,
  TenantJobsDocument,
  TenantJobsUpdatedDocument,
  TenantUsageDocument,
  CreateSiteDocument,
  CreateTenantDocument,
  DeleteSiteDocument,
  InviteMemberDocument,
  MeasureSiteDocument,
  MySessionsDocument,
  RevokeOtherSessionsDocument,
  RevokeSessionDocument,
  ResumeSiteDocument,
  RestoreSiteDocument,
  SiteBackupsDocument,
  SuspendSiteDocument,
  TenantDocument,
  TenantRole,
  LogInDocument,
  MeDocument,
  SignUpDocument,
  TenantSitesDocument,
  FirstTenantSitesDocument,
  TenantsDocument,
  type BackupFieldsFragment,
  type JobFieldsFragment,
  type SiteFieldsFragment,
  type TenantFieldsFragment,
} from '../../src/sdk/index.ts';
import { endSession, onSessionChange, refresh, startSession } from './session.ts';
import { bytes, client, describeError, ErrorText, Field, JobProgress, useAction, useLoad } from './ui.tsx';
import { Releases } from './releases.tsx';
import { Documents } from './documents.tsx';
import { Roles } from './roles.tsx';
import { PlatformFleet, PlatformTenants } from './platform.tsx';
import './console.css';

/** The label of the OIDC provider's button, when the server has OIDC sign-in configured (a meta tag of the page). */
const oidcProvider = document.querySelector<HTMLMetaElement>('meta[name="tenantplane-oidc"]')?.content;

function SignIn() {
  const [mode, setMode] = useState<'logIn' | 'signUp'>('logIn');
  // A failed OIDC sign-in comes back as /console#oidc-error=<words>.
  const [oidcError] = useState(() => {
    const message = new URLSearchParams(location.hash.slice(1)).get('oidc-error');
    if (message) history.replaceState(null, '', location.pathname);
    return message;
  });
  const action = useAction(async (f) => {
    const email = String(f.get('email'));
    const password = String(f.get('password'));
    const pair =
      mode === 'signUp'
        ? (await client.request(SignUpDocument, { input: { email, password, name: String(f.get('name')) } })).signUp
        : (await client.request(LogInDocument, { input: { email, password } })).logIn;
    const started = startSession({ ...pair, expiresAt: String(pair.expiresAt) });
    // The first page's data is asked for now, beside the cookie hand-over, not once the page has rendered after it.
    prefetchHome();
    if (!(await started)) throw new Error('could not start the session: try again');
  });
  return (
    <main className="narrow">
      <h1>Tenantplane</h1>
      <h2>{mode === 'signUp' ? 'Create an account' : 'Log in'}</h2>
      <form onSubmit={action.onSubmit} aria-label={mode === 'signUp' ? 'Sign up' : 'Log in'}>
        {mode === 'signUp' && <Field label="Name" name="name" autoComplete="name" />}
        <Field label="Email" name="email" type="email" autoComplete="email" />
        <Field label="Password" name="password" type="password" autoComplete={mode === 'signUp' ? 'new-password' : 'current-password'} />
        <ErrorText error={action.error} />
        <button type="submit" disabled={action.busy}>
          {mode === 'signUp' ? 'Sign up' : 'Log in'}
        </button>
      </form>
      {oidcProvider && (
        <p className="oidc">
          {/* A navigation, not a fetch: the server runs the code flow and comes back here signed in. */}
          <a className="button" href="/auth/oidc/start">
            Log in with {oidcProvider}
          </a>
        </p>
      )}
      <ErrorText error={oidcError} />
      <p>
        <button type="button" className="link" onClick={() => setMode(mode === 'signUp' ? 'logIn' : 'signUp')}>
          {mode === 'signUp' ? 'I have an account: log in' : 'No account yet: sign up'}
        </button>
      </p>
    </main>
  );
}

/** The site's last measure against its plan's storage limit, drawn as a bar. */
function Usage({ site }: { site: SiteFieldsFragment }) {
  if (!site.usage) return <small>not measured yet</small>;
  const u = site.usage;
  return (
    <span className="usage">
      <meter min={0} max={1} value={Math.min(1, u.fraction)} high={0.9} aria-label={`storage used by ${site.name}`} />
      <small>
        {bytes(u.totalBytes)} of {bytes(u.limitBytes)}
        {u.overStorageLimit ? ' — over the limit: writes refused' : ''}
      </small>
    </span>
  );
}

/** Suspend / resume / delete, back up now, and the site's backups with restore — each long one a live job. */
function SiteActions({ site, onChange }: { site: SiteFieldsFragment; onChange: () => void }) {
  const [job, setJob] = useState<JobFieldsFragment | null>(null);
  const [backups, setBackups] = useState<BackupFieldsFragment[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      onChange();
    } catch (e) {
      setError(describeError(e));
    }
  };
  const loadBackups = async () => {
    const r = await client.request(SiteBackupsDocument, { id: site.id, first: 20 });
    setBackups(r.node && 'backups' in r.node ? r.node.backups.edges.map((e) => e.node) : []);
  };
  const done = () => {
    onChange();
    if (backups) void loadBackups();
  };
  return (
    <div className="actions">
      {(site.status === 'HEALTHY' || site.status === 'RUNNING') && (
        <>
          <button type="button" onClick={() => run(async () => setJob((await client.request(BackupSiteDocument, { siteId: site.id })).backupSite.job))}>
            Back up now
          </button>
          <button type="button" onClick={() => run(async () => setJob((await client.request(MeasureSiteDocument, { siteId: site.id })).measureSite.job))}>
            Measure usage
          </button>
          <button type="button" onClick={() => run(() => client.request(SuspendSiteDocument, { siteId: site.id }))}>
            Suspend
          </button>
        </>
      )}
      {site.status === 'SUSPENDED' && (
        <button type="button" onClick={() => run(() => client.request(ResumeSiteDocument, { siteId: site.id }))}>
          Resume
        </button>
      )}
      {site.status !== 'SOFT_DELETED' && site.status !== 'DELETED' && (
        <button
          type="button"
          className="danger"
          onClick={() => confirm(`Delete ${site.name}? It is purged after the retention period.`) && run(() => client.request(DeleteSiteDocument, { siteId: site.id }))}
        >
          Delete
        </button>
      )}
      <details onToggle={(e) => (e.currentTarget as HTMLDetailsElement).open && backups === null && void loadBackups().catch((err) => setError(describeError(err)))}>
        <summary>Backups</summary>
        {backups === null ? (
          <p>Loading…</p>
        ) : backups.length === 0 ? (
          <p>No backup yet.</p>
        ) : (
          <ul className="backups">
            {backups.map((b) => (
              <li key={b.id} data-backup-status={b.status}>
                {new Date(b.createdAt).toLocaleString()} — {b.status} {b.sizeBytes ? bytes(b.sizeBytes) : ''}
                {b.status === 'SUCCESS' && (
                  <button
                    type="button"
                    onClick={() =>
                      confirm(`Restore ${site.name} to this backup? Its current data is replaced.`) &&
                      run(async () => setJob((await client.request(RestoreSiteDocument, { siteId: site.id, backupId: b.id })).restoreSite.job))
                    }
                  >
                    Restore
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
      </details>
      {job && <JobProgress key={job.id} job={job} onDone={done} />}
      <ErrorText error={error} />
    </div>
  );
}

function Members({ tenant }: { tenant: TenantFieldsFragment }) {
  const [data, setData] = useState<Awaited<ReturnType<typeof loadTenant>> | null>(null);
  const [link, setLink] = useState<string | null>(null);
  const load = useCallback(() => loadTenant(tenant.slug).then(setData), [tenant.slug]);
  useEffect(() => void load(), [load]);
  const invite = useAction(async (f) => {
    const r = await client.request(InviteMemberDocument, { input: { tenantId: tenant.id, email: String(f.get('inviteEmail')), role: String(f.get('role')) as TenantRole } });
    setLink(`${location.origin}/console#invite=${encodeURIComponent(r.inviteMember.token ?? "")}`);
    await load();
  });
  return (
    <section aria-labelledby="members-title">
      <h2 id="members-title">Members</h2>
      <form onSubmit={invite.onSubmit} aria-label="Invite a member" className="inline">
        <Field label="Email" name="inviteEmail" type="email" />
        <label className="field">
          <span>Role</span>
          <select name="role" defaultValue="MEMBER">
            {['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'].map((r) => (
              <option key={r} value={r}>
                {r.toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={invite.busy}>
          Invite
        </button>
        <ErrorText error={invite.error} />
      </form>
      {link && (
        <p className="invite-link">
          Invitation link (shown once): <code>{link}</code>{' '}
          <button type="button" onClick={() => void navigator.clipboard?.writeText(link)}>
            Copy link
          </button>
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Member</th>
            <th scope="col">Role</th>
          </tr>
        </thead>
        <tbody>
          {data?.members.map((m) => (
            <tr key={m.id}>
              <td>{m.user.email}</td>
              <td>{m.role.toLowerCase()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Every job of the tenant, the running ones live, each cancellable while it has not finished. */
function Jobs({ tenant }: { tenant: TenantFieldsFragment }) {
  const { data: jobs, error, load, act } = useLoad(
    async () => (await client.request(TenantJobsDocument, { slug: tenant.slug, first: 50 })).tenant?.jobs.edges.map((e) => e.node) ?? [],
    [tenant.slug],
  );
  useEffect(() => {
    // A job started elsewhere (another member, another tab) appears at once.
    const sub = client.subscribe(TenantJobsUpdatedDocument, { tenantId: tenant.id });
    let known = new Set<string>();
    void (async () => {
      try {
        for await (const e of sub) {
          if (!known.has(e.tenantJobs.id)) {
            known = new Set([...known, e.tenantJobs.id]);
            void load();
          }
        }
      } catch {
        // closed
      }
    })();
    return () => sub.dispose();
  }, [load, tenant.id]);
  const cancel = (id: string) => act(() => client.request(CancelJobDocument, { jobId: id }));
  return (
    <section aria-labelledby="jobs-title">
      <h2 id="jobs-title">Jobs</h2>
      <ErrorText error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            <th scope="col">Started</th>
          </tr>
        </thead>
        <tbody>
          {jobs?.map((j) => (
            <tr key={j.id} data-job={j.type}>
              <td>{j.type}</td>
              <td>{j.status}</td>
              <td>
                <JobProgress job={j} onDone={() => void load()} />
                {(j.status === 'PENDING' || j.status === 'RUNNING') && (
                  <button type="button" onClick={() => void cancel(j.id)}>
                    Cancel
                  </button>
                )}
              </td>
              <td>{new Date(j.createdAt).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Bar({ label, used, limit, format = String }: { label: string; used: number; limit: number; format?: (n: number) => string }) {
  return (
    <div className="bar">
      <span>{label}</span>
      <meter min={0} max={limit} value={Math.min(used, limit)} high={limit * 0.9} aria-label={`${label} used`} />
      <small>
        {format(used)} of {format(limit)}
      </small>
    </div>
  );
}

/** What the tenant uses against its plan's quotas. */
function TenantUsage({ tenant }: { tenant: TenantFieldsFragment }) {
  const [usage, setUsage] = useState<{ members: number; documents: number; storageBytes: number; sites: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    client
      .request(TenantUsageDocument, { slug: tenant.slug })
      .then((r) => r.tenant && setUsage({ members: r.tenant.usage.members, documents: r.tenant.usage.documents, storageBytes: Number(r.tenant.usage.storageBytes), sites: r.tenant.sites.totalCount }))
      .catch((e) => setError(describeError(e)));
  }, [tenant.slug]);
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage of the {tenant.plan.name} plan</h2>
      <ErrorText error={error} />
      {usage && (
        <>
          <Bar label="Members" used={usage.members} limit={tenant.plan.maxMembers} />
          <Bar label="Sites" used={usage.sites} limit={tenant.plan.maxSites} />
          <Bar label="Storage" used={usage.storageBytes} limit={Number(tenant.plan.maxStorageBytes)} format={bytes} />
          <p>{usage.documents} documents</p>
        </>
      )}
    </section>
  );
}

/** Your sign-ins (every device and browser), each revocable; all but this one at once. */
function Sessions() {
  const { data: sessions, error, act } = useLoad(async () => (await client.request(MySessionsDocument)).me?.sessions ?? [], []);
  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Your sessions</h2>
      <ErrorText error={error} />
      <button type="button" onClick={() => void act(() => client.request(RevokeOtherSessionsDocument))}>
        Log out all other sessions
      </button>
      <table>
        <thead>
          <tr>
            <th scope="col">Signed in</th>
            <th scope="col">Last used</th>
            <th scope="col">From</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sessions?.map((x) => (
            <tr key={x.id} data-session={x.current ? 'current' : 'other'}>
              <td>{new Date(x.createdAt).toLocaleString()}</td>
              <td>{x.lastUsedAt ? new Date(x.lastUsedAt).toLocaleString() : '—'}</td>
              <td>
                {x.ip ?? '—'} <small>{x.userAgent ?? ''}</small>
              </td>
              <td>
                {x.current ? (
                  <small>this browser</small>
                ) : (
                  <button type="button" onClick={() => void act(() => client.request(RevokeSessionDocument, { id: x.id }))}>
                    Revoke
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

async function loadTenant(slug: string) {
  const r = await client.request(TenantDocument, { slug, membersFirst: 100, auditLogFirst: 50 });
  return { members: r.tenant?.members.edges.map((e) => e.node) ?? [], audit: r.tenant?.auditLog.edges.map((e) => e.node) ?? [] };
}

function AuditLog({ tenant }: { tenant: TenantFieldsFragment }) {
  const [audit, setAudit] = useState<Awaited<ReturnType<typeof loadTenant>>['audit'] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    loadTenant(tenant.slug)
      .then((d) => setAudit(d.audit))
      .catch((e) => setError(describeError(e)));
  }, [tenant.slug]);
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <ErrorText error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {audit?.map((a) => (
            <tr key={a.id}>
              <td>{new Date(a.createdAt).toLocaleString()}</td>
              <td>{a.actor?.email ?? '—'}</td>
              <td>{a.action}</td>
              <td>{a.outcome}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/**
 * The sites the first page shows, asked for together with the account and its tenants (the remembered tenant's, or
 * on a first visit the first tenant's): after a reload or a log-in no page waits on more than two requests in a row.
 */
type SitesAnswer = { slug: string; sites: SiteFieldsFragment[] };
let sitesPrefetch: Promise<SitesAnswer | null> | null = null;
let prefetched = false;
const fetchSites = async (slug: string): Promise<SitesAnswer> => {
  const r = await client.request(TenantSitesDocument, { slug, first: 50 });
  return { slug, sites: r.tenant?.sites.edges.map((e) => e.node) ?? [] };
};
const fetchHome = () => Promise.all([client.request(MeDocument), client.request(TenantsDocument, { first: 100 })]);
let homePrefetch: ReturnType<typeof fetchHome> | null = null;
/** The account, its tenants and the first page's sites, asked for at once (once: later loads ask again). */
function prefetchHome() {
  if (prefetched) return;
  homePrefetch = fetchHome();
  prefetchSites(localStorage.getItem('tenantplane.tenant'));
}
function prefetchSites(remembered: string | null) {
  if (prefetched) return;
  prefetched = true;
  const first = async () => {
    const t = (await client.request(FirstTenantSitesDocument, { first: 50 })).tenants.edges[0]?.node;
    return t ? { slug: t.slug, sites: t.sites.edges.map((e) => e.node) } : null;
  };
  sitesPrefetch = (remembered ? fetchSites(remembered) : first()).catch(() => null);
}

function Sites({ tenant }: { tenant: TenantFieldsFragment }) {
  const [sites, setSites] = useState<SiteFieldsFragment[] | null>(null);
  const [jobs, setJobs] = useState<Record<string, JobFieldsFragment>>({});
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const pending = sitesPrefetch;
      sitesPrefetch = null;
      const early = pending && (await pending);
      setSites((early?.slug === tenant.slug ? early : await fetchSites(tenant.slug)).sites);
    } catch (e) {
      setError(describeError(e));
    }
  }, [tenant.slug]);
  useEffect(() => void load(), [load]);
  const create = useAction(async (f) => {
    const r = await client.request(CreateSiteDocument, {
      input: { tenantId: tenant.id, name: String(f.get('name')), displayName: String(f.get('displayName')), apps: f.get('notes') ? ['notes'] : [] },
    });
    setJobs((j) => ({ ...j, [r.createSite.site.id]: r.createSite.job }));
    await load();
  });
  return (
    <section aria-labelledby="sites-title">
      <h2 id="sites-title">Sites</h2>
      <ErrorText error={error} />
      <form onSubmit={create.onSubmit} aria-label="Create a site" className="inline">
        <Field label="Name (DNS-safe)" name="name" />
        <Field label="Display name" name="displayName" />
        <label className="check">
          <input type="checkbox" name="notes" defaultChecked /> notes app
        </label>
        <button type="submit" disabled={create.busy}>
          Create site
        </button>
        <ErrorText error={create.error} />
      </form>
      {sites === null ? (
        <p>Loading…</p>
      ) : sites.length === 0 ? (
        <p>No site yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Site</th>
              <th scope="col">Status</th>
              <th scope="col">Isolation</th>
              <th scope="col">Connection</th>
              <th scope="col">Usage</th>
            </tr>
          </thead>
          <tbody>
            {sites.map((s) => (
              <tr key={s.id} data-site={s.name}>
                <td>
                  {s.displayName} <small>{s.name}</small>
                  {jobs[s.id] && <JobProgress job={jobs[s.id]!} onDone={() => void load()} />}
                  <SiteActions site={s} onChange={() => void load()} />
                </td>
                <td className="status">{s.status}</td>
                <td>{s.isolation}</td>
                <td>
                  <code>{s.connection ? `${s.connection.user}@${s.connection.host}:${s.connection.port}/${s.connection.database}` : '—'}</code>
                </td>
                <td>
                  <Usage site={s} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** An invitation link (#invite=<token>) opened while signed in. */
function AcceptInvitation({ token, onAccepted }: { token: string; onAccepted: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const accept = async () => {
    try {
      await client.request(AcceptInvitationDocument, { token });
      history.replaceState(null, '', location.pathname);
      onAccepted();
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <div className="invitation" role="region" aria-label="Invitation">
      <p>You have been invited to a tenant.</p>
      <button type="button" onClick={() => void accept()}>
        Accept invitation
      </button>
      <ErrorText error={error} />
    </div>
  );
}

const TENANT_PAGES = ['Sites', 'Releases', 'Documents', 'Members', 'Roles', 'Jobs', 'Usage', 'Audit log', 'Your sessions'] as const;
/** Platform staff only (platformRole other than NONE). */
const STAFF_PAGES = ['Platform: tenants', 'Platform: fleet'] as const;
type TenantPage = (typeof TENANT_PAGES)[number];
type StaffPage = (typeof STAFF_PAGES)[number];

function Console() {
  const [me, setMe] = useState<{ email: string; name: string; staff: boolean } | null>(null);
  const [tenants, setTenants] = useState<TenantFieldsFragment[]>([]);
  const [current, setCurrent] = useState<string | null>(() => localStorage.getItem('tenantplane.tenant'));
  const [error, setError] = useState<string | null>(null);
  const [pageName, setPageName] = useState<TenantPage | StaffPage>('Sites');
  const [invitation, setInvitation] = useState<string | null>(() => new URLSearchParams(location.hash.slice(1)).get('invite'));
  useEffect(() => {
    const onHash = () => setInvitation(new URLSearchParams(location.hash.slice(1)).get('invite'));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const load = useCallback(async () => {
    try {
      prefetchHome();
      const pending = homePrefetch;
      homePrefetch = null;
      const [m, t] = await (pending ?? fetchHome());
      setMe(m.me ? { email: m.me.email, name: m.me.name, staff: m.me.platformRole !== 'NONE' } : null);
      setTenants(t.tenants.edges.map((e) => e.node));
    } catch (e) {
      setError(describeError(e));
    }
  }, []);
  useEffect(() => void load(), [load]);
  const tenant = tenants.find((t) => t.slug === current) ?? tenants[0];
  const choose = (slug: string) => {
    localStorage.setItem('tenantplane.tenant', slug);
    setCurrent(slug);
  };
  const createTenant = useAction(async (f) => {
    const r = await client.request(CreateTenantDocument, { input: { name: String(f.get('tenantName')), slug: String(f.get('slug')) } });
    await load();
    choose(r.createTenant.slug);
  });
  return (
    <>
      <header>
        <strong>Tenantplane</strong>
        {tenants.length > 0 && (
          <label className="switcher">
            <span>Tenant</span>
            <select value={tenant?.slug} onChange={(e) => choose(e.target.value)}>
              {tenants.map((t) => (
                <option key={t.id} value={t.slug}>
                  {t.name} ({t.viewerRole?.toLowerCase()})
                </option>
              ))}
            </select>
          </label>
        )}
        <span className="me">{me?.email}</span>
        <button type="button" onClick={() => void endSession()}>
          Log out
        </button>
      </header>
      <main>
        <ErrorText error={error} />
        <details open={tenants.length === 0}>
          <summary>New tenant</summary>
          <form onSubmit={createTenant.onSubmit} aria-label="Create a tenant" className="inline">
            <Field label="Name" name="tenantName" />
            <Field label="Slug" name="slug" />
            <button type="submit" disabled={createTenant.busy}>
              Create tenant
            </button>
            <ErrorText error={createTenant.error} />
          </form>
        </details>
        {invitation && <AcceptInvitation token={invitation} onAccepted={() => void load()} />}
        {(tenant || me?.staff) && (
          <nav aria-label="Pages" className="pages">
            {[...(tenant ? TENANT_PAGES : me?.staff ? (['Your sessions'] as const) : []), ...(me?.staff ? STAFF_PAGES : [])].map((p) => (
              <button key={p} type="button" aria-pressed={pageName === p} onClick={() => setPageName(p)}>
                {p}
              </button>
            ))}
          </nav>
        )}
        {tenant && (
          <>
            {pageName === 'Sites' && <Sites key={tenant.id} tenant={tenant} />}
            {pageName === 'Releases' && <Releases key={tenant.id} tenant={tenant} />}
            {pageName === 'Documents' && <Documents key={tenant.id} tenant={tenant} />}
            {pageName === 'Members' && <Members key={tenant.id} tenant={tenant} />}
            {pageName === 'Roles' && <Roles key={tenant.id} tenant={tenant} />}
            {pageName === 'Jobs' && <Jobs key={tenant.id} tenant={tenant} />}
            {pageName === 'Usage' && <TenantUsage key={tenant.id} tenant={tenant} />}
            {pageName === 'Audit log' && <AuditLog key={tenant.id} tenant={tenant} />}
          </>
        )}
        {(tenant || me?.staff) && pageName === 'Your sessions' && <Sessions />}
        {me?.staff && pageName === 'Platform: tenants' && <PlatformTenants />}
        {me?.staff && pageName === 'Platform: fleet' && <PlatformFleet />}
        {!tenant && (me?.staff ? pageName !== 'Your sessions' && !(STAFF_PAGES as readonly string[]).includes(pageName) && <p>No tenant of your own: create one, or open a platform page.</p> : <p>Create a tenant to start.</p>)}
      </main>
    </>
  );
}

function App() {
  const [state, setState] = useState<'loading' | 'in' | 'out'>('loading');
  useEffect(() => {
    const off = onSessionChange((signedIn) => setState(signedIn ? 'in' : 'out'));
    // A reload: the cookie alone gets a new access token.
    void refresh();
    return () => void off();
  }, []);
  let page: ReactNode;
  if (state === 'loading') page = <p className="narrow">Loading…</p>;
  else if (state === 'out') page = <SignIn />;
  else page = <Console />;
  return page;
}

createRoot(document.getElementById('console')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
