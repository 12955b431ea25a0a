/**
 * GraphiQL for Tenantplane, bundled by console/build.mjs into dist/web/ and served by our own server at
 * /graphql (src/http/graphiql.ts): no CDN, no request beyond this origin. Queries and mutations go over HTTP with
 * the header editor's headers; subscriptions over graphql-ws, with those headers as the connection parameters
 * (authorization, x-tenant), one socket per set of headers.
 */
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { useEditorContext, type GraphiQLPlugin } from '@graphiql/react';
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { createClient, type Client } from 'graphql-ws';
import { parse, type OperationDefinitionNode } from 'graphql';
import 'graphiql/style.css';

interface Example {
  name: string;
  file: string;
  query: string;
}
interface PageConfig {
  examples: Example[];
  defaultHeaders: string;
}

const config = JSON.parse(document.getElementById('graphiql-config')!.textContent!) as PageConfig;
const httpUrl = new URL('/graphql', location.href).toString();
const wsUrl = httpUrl.replace(/^http/, 'ws');
const http = createGraphiQLFetcher({ url: httpUrl });

const sockets = new Map<string, Client>();
function socketFor(headers: Record<string, unknown>) {
  const params = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const key = JSON.stringify(params);
  let client = sockets.get(key);
  if (!client) {
    client = createClient({ url: wsUrl, connectionParams: params, lazy: true });
    sockets.set(key, client);
  }
  return client;
}

function isSubscription(query: string, operationName?: string | null) {
  try {
    const ops = parse(query).definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops[0];
    return op?.operation === 'subscription';
  } catch {
    return false;
  }
}

const fetcher: Fetcher = (params, opts) => {
  if (!isSubscription(params.query, params.operationName)) return http(params, opts);
  const client = socketFor(opts?.headers ?? {});
  // graphql-ws yields formatted results, which is what GraphiQL renders.
  return client.iterate({ query: params.query, variables: params.variables ?? undefined, operationName: params.operationName ?? undefined }) as unknown as ReturnType<Fetcher>;
};

/** The operations of schema/operations/, one per entry: a click opens it in a new tab. */
function ExamplesPane() {
  const editor = useEditorContext({ nonNull: true });
  return (
    <div className="tp-examples">
      <div className="graphiql-doc-explorer-title">Examples</div>
      <p>The operations the SDK is generated from (schema/operations/).</p>
      <ul>
        {config.examples.map((ex) => (
          <li key={`${ex.file}/${ex.name}`}>
            <button
              type="button"
              className="graphiql-un-styled"
              onClick={() => {
                editor.addTab();
                // The new tab's editor is filled on the next tick, once the tab is the active one.
                setTimeout(() => editor.queryEditor?.setValue(ex.query), 0);
              }}
            >
              {ex.name} <small>{ex.file}</small>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

const examplesPlugin: GraphiQLPlugin = {
  title: 'Examples',
  icon: () => <span aria-hidden="true">☰</span>,
  content: ExamplesPane,
};

createRoot(document.getElementById('graphiql')!).render(
  <GraphiQL fetcher={fetcher} plugins={[examplesPlugin]} defaultHeaders={config.defaultHeaders} shouldPersistHeaders={false} isHeadersEditorEnabled />,
);
