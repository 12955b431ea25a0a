/**
 * Documents (issue 12 §2): upload straight to object storage with a progress bar — the sha256 computed in a Worker
 * (hash-worker.ts), then createUpload's presigned PUT, or a PUT of each presigned part above the multipart threshold,
 * then completeUpload, which checks the stored bytes. Bytes the tenant already stores are not sent again ("already
 * stored"). Processing shows live (tenantJobs over graphql-ws); download, rename and delete per document.
 */
import { useEffect, useRef, useState, type ChangeEvent } from 'react';
import {
  CompleteUploadDocument,
  CreateUploadDocument,
  DeleteDocumentDocument,
  RenameDocumentDocument,
  TenantDocumentsDocument,
  TenantJobsUpdatedDocument,
  type TenantFieldsFragment,
} from '../../src/sdk/index.ts';
import pMap from 'p-map';
import pRetry, { AbortError } from 'p-retry';
import type { HashReply } from './hash-worker.ts';
import { bytes, client, describeError, ErrorText, useLoad } from './ui.tsx';

/** One Worker for the page, started on the first upload; requests are told apart by id. */
let hasher: Worker | null = null;
let nextHashId = 0;
function sha256Of(file: Blob, onProgress: (fraction: number) => void): Promise<string> {
  if (!hasher) {
    const url = document.querySelector<HTMLMetaElement>('meta[name="tenantplane-hash-worker"]')!.content;
    hasher = new Worker(url, { type: 'module' });
  }
  const worker = hasher;
  const id = nextHashId++;
  return new Promise((resolve, reject) => {
    const onMessage = (e: MessageEvent<HashReply>) => {
      if (e.data.id !== id) return;
      if ('progress' in e.data) return onProgress(e.data.progress);
      worker.removeEventListener('message', onMessage);
      if ('sha256' in e.data) resolve(e.data.sha256);
      else reject(new Error(`could not read the file: ${e.data.error}`));
    };
    worker.addEventListener('message', onMessage);
    worker.postMessage({ id, file });
  });
}

/** A PUT of `body` to a presigned URL with upload progress (fetch reports none); resolves to the ETag S3 answered. */
function putOnce(url: string, body: Blob, headers: Array<{ name: string; value: string }>, onProgress: (loaded: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const h of headers) xhr.setRequestHeader(h.name, h.value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.getResponseHeader('etag') ?? '');
      const refused = new Error(`object storage refused the upload (HTTP ${xhr.status}): try again`);
      // A 4xx is an answer (an expired or refused URL): sending the same bytes again would get the same one.
      reject(xhr.status >= 400 && xhr.status < 500 ? new AbortError(refused) : refused);
    };
    xhr.onerror = () => reject(new Error('the upload to object storage failed (network or CORS): try again'));
    xhr.send(body);
  });
}

/** putOnce, again after a dropped connection or a 5xx (three more tries, backing off): a flaky network loses nothing. */
const put = (url: string, body: Blob, headers: Array<{ name: string; value: string }>, onProgress: (loaded: number) => void) =>
  pRetry(
    () => {
      onProgress(0);
      return putOnce(url, body, headers, onProgress);
    },
    { retries: 3, minTimeout: 500, factor: 2 },
  );

/** Parts in flight at once: enough to fill the link, few enough for the browser's six connections per host. */
const PART_CONCURRENCY = 3;

type Transfer = { key: number; name: string; phase: 'reading' | 'uploading' | 'checking' | 'done' | 'failed'; fraction: number; note?: string };

async function upload(tenantId: string, file: File, report: (t: Partial<Transfer>) => void) {
  const sha256 = await sha256Of(file, (f) => report({ phase: 'reading', fraction: f }));
  const ticket = (
    await client.request(CreateUploadDocument, {
      input: { tenantId, filename: file.name, mimeType: file.type || 'application/octet-stream', sha256, sizeBytes: file.size },
    })
  ).createUpload;
  let parts: Array<{ partNumber: number; etag: string }> | undefined;
  if (ticket.alreadyStored) {
    // Nothing to send: the tenant holds these bytes already.
  } else if (ticket.url) {
    await put(ticket.url, file, ticket.headers, (n) => report({ phase: 'uploading', fraction: n / Math.max(1, file.size) }));
  } else {
    // Each part's bytes in flight, summed for the bar (a retried part starts again from 0).
    const loaded = new Map<number, number>();
    parts = await pMap(
      ticket.parts,
      async (part) => {
        const start = (part.partNumber - 1) * (ticket.partSize ?? 0);
        const etag = await put(part.url, file.slice(start, start + part.sizeBytes), [], (n) => {
          loaded.set(part.partNumber, n);
          report({ phase: 'uploading', fraction: [...loaded.values()].reduce((a, b) => a + b, 0) / file.size });
        });
        return { partNumber: part.partNumber, etag };
      },
      { concurrency: PART_CONCURRENCY },
    );
  }
  report({ phase: 'checking', fraction: 1 });
  await client.request(CompleteUploadDocument, { uploadId: ticket.id, parts });
  report({ phase: 'done', fraction: 1, note: ticket.alreadyStored ? 'already stored: nothing was sent' : 'uploaded' });
}

const phaseText: Record<Transfer['phase'], string> = { reading: 'computing sha256', uploading: 'uploading', checking: 'checking the stored bytes', done: '', failed: '' };

export function Documents({ tenant }: { tenant: TenantFieldsFragment }) {
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const nextKey = useRef(0);
  const { data: documents, error, load, act } = useLoad(
    async () => (await client.request(TenantDocumentsDocument, { slug: tenant.slug, first: 50 })).tenant?.documents.edges.map((e) => e.node) ?? [],
    [tenant.slug],
  );
  useEffect(() => {
    // Processing is a job: each of its changes reloads the list, so a document's status is live.
    const sub = client.subscribe(TenantJobsUpdatedDocument, { tenantId: tenant.id });
    void (async () => {
      try {
        for await (const e of sub) if (e.tenantJobs.type === 'document-process') void load();
      } catch {
        // closed
      }
    })();
    return () => sub.dispose();
  }, [load, tenant.id]);

  const onFiles = async (e: ChangeEvent<HTMLInputElement>) => {
    const files = [...(e.currentTarget.files ?? [])];
    e.currentTarget.value = '';
    for (const file of files) {
      const key = nextKey.current++;
      const report = (t: Partial<Transfer>) => setTransfers((all) => all.map((x) => (x.key === key ? { ...x, ...t } : x)));
      setTransfers((all) => [{ key, name: file.name, phase: 'reading', fraction: 0 }, ...all]);
      try {
        await upload(tenant.id, file, report);
      } catch (err) {
        report({ phase: 'failed', note: describeError(err) });
      }
      await load();
    }
  };

  return (
    <section aria-labelledby="documents-title">
      <h2 id="documents-title">Documents</h2>
      <label className="field upload">
        <span>Upload files</span>
        <input type="file" multiple onChange={(e) => void onFiles(e)} />
      </label>
      <ul className="transfers" aria-label="Uploads">
        {transfers.map((t) => (
          <li key={t.key} data-upload={t.name} data-phase={t.phase}>
            <span>{t.name}</span>
            {t.phase === 'failed' ? (
              <span role="alert" className="error">
                {t.note}
              </span>
            ) : (
              <>
                <progress max={1} value={t.phase === 'done' ? 1 : t.fraction} aria-label={`upload of ${t.name}`} />
                <small className="upload-note">{t.phase === 'done' ? t.note : `${phaseText[t.phase]} ${Math.round(t.fraction * 100)}%`}</small>
              </>
            )}
          </li>
        ))}
      </ul>
      <ErrorText error={error} />
      {documents === null ? (
        <p>Loading…</p>
      ) : documents.length === 0 ? (
        <p>No document yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Document</th>
              <th scope="col">Size</th>
              <th scope="col">Status</th>
              <th scope="col">Uploaded by</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {documents.map((d) => (
              <tr key={d.id} data-document={d.filename}>
                <td>
                  {/* A short-lived presigned GET that answers as an attachment. */}
                  <a href={d.downloadUrl} download={d.filename}>
                    {d.filename}
                  </a>
                  {d.preview && <small className="preview">{d.preview.slice(0, 120)}</small>}
                </td>
                <td>{bytes(d.sizeBytes)}</td>
                <td className="status">
                  {d.status}
                  {d.status === 'PROCESSED' && d.wordCount != null && <small> {d.wordCount} words</small>}
                  {d.error && <small> {d.error}</small>}
                </td>
                <td>{d.uploader.email}</td>
                <td className="actions">
                  <details>
                    <summary>Rename</summary>
                    <form
                      aria-label={`Rename ${d.filename}`}
                      className="inline"
                      onSubmit={(e) => {
                        e.preventDefault();
                        const filename = String(new FormData(e.currentTarget).get('filename'));
                        void act(() => client.request(RenameDocumentDocument, { input: { documentId: d.id, filename } }));
                      }}
                    >
                      <label className="field">
                        <span>New name</span>
                        <input name="filename" defaultValue={d.filename} required />
                      </label>
                      <button type="submit">Save</button>
                    </form>
                  </details>
                  <button
                    type="button"
                    className="danger"
                    onClick={() => confirm(`Delete ${d.filename}?`) && void act(() => client.request(DeleteDocumentDocument, { documentId: d.id }))}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
