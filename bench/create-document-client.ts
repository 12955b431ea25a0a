/**
 * Load for create-document (run as a child process by bench/create-document.ts; prints autocannon's JSON result
 * plus the count of GraphQL errors): each connection loops createUpload (bytes the tenant already stores, so
 * nothing goes to S3) → completeUpload, a new filename each time.
 * argv: url token tenantGlobalId sha256 sizeBytes connections seconds
 */
import autocannon from 'autocannon';

const [url, token, tenantId, sha256, size, connections, seconds] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const CREATE = `mutation C($input: CreateUploadInput!) { createUpload(input: $input) { id alreadyStored } }`;
const COMPLETE = `mutation D($uploadId: ID!) { completeUpload(uploadId: $uploadId) { id status } }`;
let graphqlErrors = 0;
let created = 0;
let sequence = 0;
const run = process.pid.toString(36);

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  requests: [
    {
      method: 'POST',
      setupRequest: (req) => ({
        ...req,
        body: JSON.stringify({ query: CREATE, variables: { input: { tenantId, filename: `bench-${run}-${++sequence}.txt`, sizeBytes: Number(size), mimeType: 'text/plain', sha256 } } }),
      }),
      onResponse: (_status, body, context) => {
        const j = JSON.parse(body);
        if (j.errors || !j.data?.createUpload?.alreadyStored) graphqlErrors++;
        (context as { uploadId?: string }).uploadId = j.data?.createUpload?.id;
      },
    },
    {
      method: 'POST',
      // No upload id (the first request failed): start the pair again.
      setupRequest: (req, context) => {
        const uploadId = (context as { uploadId?: string }).uploadId;
        return uploadId ? { ...req, body: JSON.stringify({ query: COMPLETE, variables: { uploadId } }) } : (undefined as never);
      },
      onResponse: (_status, body) => {
        const j = JSON.parse(body);
        if (j.errors || !j.data?.completeUpload?.id) graphqlErrors++;
        else created++;
      },
    },
  ],
});
process.stdout.write(JSON.stringify({ ...result, graphqlErrors, created }));
