/**
 * The Tenantplane console (issue 12 §2): the reference web client. It talks to the API with the typed SDK only
 * (src/sdk: one TypedDocumentNode per operation of schema/operations/), over HTTP and graphql-ws, and needs no
 * privilege the API would not give the same user over plain GraphQL. Bundled by scripts/build-web.mjs, served at
 * /console by the API itself (src/graphql/console.ts).
 */
import { StrictMode, useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import {
  createTenantplaneClient,
  TenantplaneError,
  CreateSiteDocument,
  CreateTenantDocument,
  JobUpdatedDocument,
  LogInDocument,
  MeDocument,
  SignUpDocument,
  TenantSitesDocument,
  TenantsDocument,
  type JobFieldsFragment,
  type SiteFieldsFragment,
  type TenantFieldsFragment,
} from '../../src/sdk/index.ts';
import { currentToken, endSession, onSessionChange, refresh, startSession } from './session.ts';
import './console.css';

const client = createTenantplaneClient({ url: new URL('/graphql', location.href).toString(), accessToken: () => currentToken() });

/** Our typed errors in words a person can act on. */
function describeError(e: unknown): string {
  if (e instanceof TenantplaneError) {
    const field = e.errors[0]?.extensions?.field;
    const prefix = e.code === 'QUOTA_EXCEEDED' ? 'Limit reached: ' : e.code === 'FORBIDDEN' ? 'Not allowed: ' : '';
    return `${prefix}${e.message}${field && e.code === 'BAD_USER_INPUT' ? ` (${String(field)})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

function ErrorText({ error }: { error: string | null }) {
  return error ? (
    <p role="alert" className="error">
      {error}
    </p>
  ) : null;
}

function Field({ label, name, type = 'text', autoComplete, required = true }: { label: string; name: string; type?: string; autoComplete?: string; required?: boolean }) {
  return (
    <label className="field">
      <span>{label}</span>
      <input name={name} type={type} autoComplete={autoComplete} required={required} />
    </label>
  );
}

function useAction<T>(fn: (form: FormData) => Promise<T>) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    setBusy(true);
    setError(null);
    try {
      await fn(new FormData(form));
      form.reset();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, onSubmit };
}

function SignIn() {
  const [mode, setMode] = useState<'logIn' | 'signUp'>('logIn');
  const action = useAction(async (f) => {
    const email = String(f.get('email'));
    const password = String(f.get('password'));
    const pair =
      mode === 'signUp'
        ? (await client.request(SignUpDocument, { input: { email, password, name: String(f.get('name')) } })).signUp
        : (await client.request(LogInDocument, { input: { email, password } })).logIn;
    if (!(await startSession(pair.refreshToken))) throw new Error('could not start the session: try again');
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
      <p>
        <button type="button" className="link" onClick={() => setMode(mode === 'signUp' ? 'logIn' : 'signUp')}>
          {mode === 'signUp' ? 'I have an account: log in' : 'No account yet: sign up'}
        </button>
      </p>
    </main>
  );
}

/** A job's live progress over graphql-ws (jobUpdated), from its state now. */
function JobProgress({ job: initial, onDone }: { job: JobFieldsFragment; onDone?: (job: JobFieldsFragment) => void }) {
  const [job, setJob] = useState(initial);
  useEffect(() => {
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(initial.status)) return;
    const sub = client.subscribe(JobUpdatedDocument, { jobId: initial.id });
    void (async () => {
      try {
        for await (const event of sub) {
          setJob(event.jobUpdated);
          if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(event.jobUpdated.status)) {
            onDone?.(event.jobUpdated);
            break;
          }
        }
      } catch {
        // The socket closed (a reload, a log-out): the list shows the job's last state.
      }
    })();
    return () => sub.dispose();
  }, [initial.id]);
  return (
    <div className="job">
      <progress max={100} value={job.progress} aria-label={`${job.type} progress`} />
      <span className="job-step">
        {job.status === 'FAILED' ? `failed: ${job.error ?? 'see the log'}` : job.status === 'COMPLETED' ? 'done' : `${job.progress}% ${job.step ?? 'waiting for a worker'}`}
      </span>
      {job.logs.length > 0 && (
        <details>
          <summary>Log</summary>
          <pre>{job.logs.join('\n')}</pre>
        </details>
      )}
    </div>
  );
}

function Sites({ tenant }: { tenant: TenantFieldsFragment }) {
  const [sites, setSites] = useState<SiteFieldsFragment[] | null>(null);
  const [jobs, setJobs] = useState<Record<string, JobFieldsFragment>>({});
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const r = await client.request(TenantSitesDocument, { slug: tenant.slug, first: 50 });
      setSites(r.tenant?.sites.edges.map((e) => e.node) ?? []);
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
            </tr>
          </thead>
          <tbody>
            {sites.map((s) => (
              <tr key={s.id} data-site={s.name}>
                <td>
                  {s.displayName} <small>{s.name}</small>
                  {jobs[s.id] && <JobProgress job={jobs[s.id]!} onDone={() => void load()} />}
                </td>
                <td className="status">{s.status}</td>
                <td>{s.isolation}</td>
                <td>
                  <code>{s.connection ? `${s.connection.user}@${s.connection.host}:${s.connection.port}/${s.connection.database}` : '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Console() {
  const [me, setMe] = useState<{ email: string; name: string } | null>(null);
  const [tenants, setTenants] = useState<TenantFieldsFragment[]>([]);
  const [current, setCurrent] = useState<string | null>(() => localStorage.getItem('tenantplane.tenant'));
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const [m, t] = await Promise.all([client.request(MeDocument), client.request(TenantsDocument, { first: 100 })]);
      setMe(m.me ? { email: m.me.email, name: m.me.name } : null);
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
        {tenant ? <Sites key={tenant.id} tenant={tenant} /> : <p>Create a tenant to start.</p>}
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
