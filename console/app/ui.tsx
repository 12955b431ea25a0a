/** What every page of the console shares: the API client, our typed errors in words, form helpers. */
import { useCallback, useEffect, useState, type DependencyList, type FormEvent } from 'react';
import { createTenantplaneClient, JobUpdatedDocument, TenantplaneError, type JobFieldsFragment } from '../../src/sdk/index.ts';
import { currentToken } from './session.ts';

export const client = createTenantplaneClient({ url: new URL('/graphql', location.href).toString(), accessToken: () => currentToken() });

/** Our typed errors in words a person can act on. */
export function describeError(e: unknown): string {
  if (e instanceof TenantplaneError) {
    const field = e.errors[0]?.extensions?.field;
    const prefix = e.code === 'QUOTA_EXCEEDED' ? 'Limit reached: ' : e.code === 'FORBIDDEN' ? 'Not allowed: ' : '';
    // The API's own words, without the SDK's "(CODE)" suffix.
    return `${prefix}${e.errors[0]?.message ?? e.message}${field && e.code === 'BAD_USER_INPUT' ? ` (${String(field)})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

export function ErrorText({ error }: { error: string | null }) {
  return error ? (
    <p role="alert" className="error">
      {error}
    </p>
  ) : null;
}

export function Field({ label, name, type = 'text', autoComplete, required = true }: { label: string; name: string; type?: string; autoComplete?: string; required?: boolean }) {
  return (
    <label className="field">
      <span>{label}</span>
      <input name={name} type={type} autoComplete={autoComplete} required={required} />
    </label>
  );
}

export function useAction<T>(fn: (form: FormData) => Promise<T>) {
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

export const bytes = (n: unknown) => {
  const v = Number(n ?? 0);
  return v >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MB` : v >= 1024 ? `${Math.round(v / 1024)} KB` : `${v} B`;
};


/**
 * A page's data: fetched on mount and whenever `deps` change; `act` runs a change (a mutation), then fetches again,
 * and shows the API's words when either fails.
 */
export function useLoad<T>(fetcher: () => Promise<T>, deps: DependencyList) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  // eslint-disable-next-line react-hooks/exhaustive-deps -- the caller names what the fetcher depends on
  const load = useCallback(async () => {
    try {
      setData(await fetcher());
    } catch (e) {
      setError(describeError(e));
    }
  }, deps);
  useEffect(() => void load(), [load]);
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };
  return { data, error, load, act };
}

/** A job's live progress over graphql-ws (jobUpdated), from its state now. */
export function JobProgress({ job: initial, onDone }: { job: JobFieldsFragment; onDone?: (job: JobFieldsFragment) => void }) {
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
        {job.status === 'FAILED' ? `failed: ${job.error ?? 'see the log'}` : job.status === 'COMPLETED' ? 'done' : job.status === 'CANCELLED' ? 'cancelled' : job.cancelRequestedAt ? 'cancelling…' : `${job.progress}% ${job.step ?? 'waiting for a worker'}`}
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

