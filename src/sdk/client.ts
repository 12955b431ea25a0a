import { print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';

/** A value, or a function returning it (e.g. the current access token after a refresh). */
export type Lazy<T> = T | (() => T | Promise<T>);

export interface TenantplaneClientOptions {
  /** The HTTP GraphQL endpoint, e.g. `https://api.example.com/graphql`. Subscriptions use the same URL over ws(s). */
  url: string;
  /** Sent as `Authorization: Bearer …` (HTTP) and in the graphql-ws connection params. */
  accessToken?: Lazy<string | null | undefined>;
  /**
   * An API key (`tpk_…`, from createApiKey), for integrations: sent like an access token (`Authorization: Bearer …`
   * and the graphql-ws connection params). Its requests are bound to the key's tenant. Ignored when `accessToken` gives a token.
   */
  apiKey?: Lazy<string | null | undefined>;
  /** Narrows the requests to one tenant (slug or tenant id): sent as `X-Tenant`. */
  tenant?: Lazy<string | null | undefined>;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Defaults to `globalThis.WebSocket`, else the `ws` package. */
  webSocketImpl?: unknown;
  /** Extra HTTP headers for every request. */
  headers?: Record<string, string>;
}

/** Variables are optional when the operation has no required ones. */
export type VariablesOf<TVariables> = {} extends TVariables ? [variables?: TVariables] : [variables: TVariables];

/** A live subscription: iterate it for each event's data; `dispose()` (or breaking out of the loop) unsubscribes. */
export interface TenantplaneSubscription<TData> extends AsyncIterable<TData> {
  [Symbol.asyncIterator](): AsyncIterator<TData>;
  next(): Promise<IteratorResult<TData, undefined>>;
  dispose(): void;
}

export interface TenantplaneClient {
  /** Runs a query or mutation over HTTP; resolves with its data, or rejects with a {@link TenantplaneError}. */
  request<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    ...variables: VariablesOf<TVariables>
  ): Promise<TData>;
  /**
   * Starts a subscription over graphql-ws (one shared, lazily opened socket per client). An event carrying GraphQL
   * errors (e.g. FORBIDDEN when the caller may not subscribe) ends it: the iterator rejects with a TenantplaneError.
   */
  subscribe<TData, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables>,
    ...variables: VariablesOf<TVariables>
  ): TenantplaneSubscription<TData>;
  /** Ends every subscription and closes the socket. */
  dispose(): Promise<void>;
}

/** The GraphQL errors of a failed operation; `code` is the first error's `extensions.code`. */
export class TenantplaneError extends Error {
  readonly errors: readonly GraphQLFormattedError[];
  readonly code: string | undefined;
  /** HTTP status of the response (absent for subscriptions). */
  readonly status: number | undefined;
  /** Partial data, when the server sent any alongside the errors. */
  readonly data: unknown;

  constructor(errors: readonly GraphQLFormattedError[], opts: { status?: number; data?: unknown; cause?: unknown } = {}) {
    const first = errors[0];
    const code = first?.extensions?.code;
    super(first ? `${first.message}${code ? ` (${String(code)})` : ''}` : 'GraphQL request failed', { cause: opts.cause });
    this.name = 'TenantplaneError';
    this.errors = errors;
    this.code = typeof code === 'string' ? code : undefined;
    this.status = opts.status;
    this.data = opts.data ?? null;
  }
}

const printed = new WeakMap<DocumentNode, string>();
function source(document: DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document);
    printed.set(document, text);
  }
  return text;
}

function operationName(document: DocumentNode): string | undefined {
  for (const def of document.definitions) if (def.kind === 'OperationDefinition') return def.name?.value;
  return undefined;
}

async function resolve<T>(value: Lazy<T>): Promise<T> {
  return typeof value === 'function' ? (value as () => T | Promise<T>)() : value;
}

/** http(s)://host/graphql → ws(s)://host/graphql */
export function webSocketUrl(url: string): string {
  return url.replace(/^http(s?):\/\//i, 'ws$1://');
}

function isCloseEvent(e: unknown): e is { code: number; reason?: string } {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number' && 'reason' in e;
}

/** Errors graphql-ws hands its sinks: GraphQL errors, a CloseEvent, or an Error. */
function subscriptionError(err: unknown): Error {
  if (Array.isArray(err)) return new TenantplaneError(err as GraphQLFormattedError[]);
  if (err instanceof Error) return err;
  if (isCloseEvent(err)) {
    const close = err;
    // The server refuses the connection (4403) only when the access token is invalid or expired.
    const code = close.code === 4403 || close.code === 4401 ? 'UNAUTHENTICATED' : 'CONNECTION_CLOSED';
    return new TenantplaneError([{ message: `socket closed (${close.code}${close.reason ? `: ${close.reason}` : ''})`, extensions: { code } }], { cause: err });
  }
  return new Error(`subscription failed: ${String(err)}`);
}

export function createTenantplaneClient(options: TenantplaneClientOptions): TenantplaneClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  let ws: WsClient | undefined;
  const live = new Set<() => void>();

  async function authHeaders(): Promise<Record<string, string>> {
    const [accessToken, apiKey, tenant] = await Promise.all([resolve(options.accessToken), resolve(options.apiKey), resolve(options.tenant)]);
    const token = accessToken || apiKey;
    return {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(tenant ? { 'x-tenant': tenant } : {}),
    };
  }

  function socket(): WsClient {
    ws ??= createClient({
      url: webSocketUrl(options.url),
      webSocketImpl: options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket ?? WebSocket,
      connectionParams: authHeaders,
      // Transient drops are retried (graphql-ws' backoff); a refused token (4403) is reported at once instead.
      shouldRetry: (e) => isCloseEvent(e) && e.code !== 4403,
    });
    return ws;
  }

  return {
    async request<TData, TVariables extends Record<string, unknown>>(
      document: TypedDocumentNode<TData, TVariables>,
      ...[variables]: VariablesOf<TVariables>
    ): Promise<TData> {
      const res = await doFetch(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...options.headers,
          ...(await authHeaders()),
        },
        body: JSON.stringify({ query: source(document), variables: variables ?? {}, operationName: operationName(document) }),
      });
      let body: { data?: TData | null; errors?: GraphQLFormattedError[] } | undefined;
      try {
        body = (await res.json()) as typeof body;
      } catch (cause) {
        throw new TenantplaneError([{ message: `unreadable response (HTTP ${res.status})`, extensions: { code: 'BAD_RESPONSE' } }], {
          status: res.status,
          cause,
        });
      }
      if (body?.errors?.length) throw new TenantplaneError(body.errors, { status: res.status, data: body.data });
      if (!res.ok || body?.data == null) {
        throw new TenantplaneError([{ message: `no data (HTTP ${res.status})`, extensions: { code: 'BAD_RESPONSE' } }], { status: res.status });
      }
      return body.data;
    },

    subscribe<TData, TVariables extends Record<string, unknown>>(
      document: TypedDocumentNode<TData, TVariables>,
      ...[variables]: VariablesOf<TVariables>
    ): TenantplaneSubscription<TData> {
      const queue: TData[] = [];
      let done = false;
      let failure: Error | undefined;
      const waiting: Array<() => void> = [];
      const notify = () => {
        for (const wake of waiting.splice(0)) wake();
      };
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        failure = error;
        live.delete(dispose);
        unsubscribe();
        notify();
      };
      const unsubscribe = socket().subscribe<TData>(
        { query: source(document), variables: variables ?? {}, operationName: operationName(document) },
        {
          next: (result) => {
            if (done) return;
            if (result.errors?.length) finish(new TenantplaneError(result.errors, { data: result.data }));
            else {
              queue.push(result.data as TData);
              notify();
            }
          },
          error: (err) => finish(subscriptionError(err)),
          complete: () => finish(),
        },
      );
      const dispose = () => {
        queue.length = 0;
        finish();
      };
      live.add(dispose);

      const next = async (): Promise<IteratorResult<TData, undefined>> => {
        for (;;) {
          if (queue.length) return { done: false, value: queue.shift() as TData };
          if (failure) {
            const e = failure;
            failure = undefined;
            throw e;
          }
          if (done) return { done: true, value: undefined };
          await new Promise<void>((r) => waiting.push(r));
        }
      };
      const iterator: AsyncIterator<TData, undefined> = {
        next,
        async return() {
          dispose();
          return { done: true, value: undefined };
        },
      };
      return { [Symbol.asyncIterator]: () => iterator, next, dispose };
    },

    async dispose() {
      for (const d of [...live]) d();
      const client = ws;
      ws = undefined;
      await client?.dispose();
    },
  };
}
