import crypto from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { graphiqlRouter } from './graphiql.ts';
import { sessionCookieRouter, type Execute } from './session-cookie.ts';
import { consoleRouter } from './console.ts';
import { oidcLoginRouter } from './oidc-login.ts';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { IncomingMessage } from 'node:http';
import { schema } from './schema.ts';
import type { Context } from './context.ts';
import type { RequestServices } from '../services.ts';
import { AppError, contractError } from './errors.ts';
import { pendingMigrations } from '../db/migrate.ts';
import { uuidFromGlobalId, isUuid } from './ids.ts';
import { assertWithinLimits, checkSocketOperation, limitRules, parseOptions, variableErrors } from './limits.ts';
import { metricsTokenMatches } from '../observability/metrics.ts';
import { sharedSubscribe } from './subscriptions.ts';
import { StartupError, readableError } from '../shutdown.ts';
import { describeFailure, unavailableMessage, unreachable } from '../faults.ts';

/** Codes a client may see with their message; anything else is masked. */
const PUBLIC_CODES = new Set([
  'BAD_USER_INPUT', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'QUOTA_EXCEEDED', 'SERVICE_UNAVAILABLE',
  'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_REQUEST', 'PERSISTED_QUERY_NOT_FOUND', 'OPERATION_RESOLUTION_FAILURE',
]);
const MASKED_MESSAGE = 'internal error';

function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const code = formatted.extensions?.code as string | undefined;
  const original = (error as GraphQLError)?.originalError ?? error;
  const ours = original instanceof AppError || error instanceof AppError;
  if ((original as Error)?.name === 'PothosValidationError') {
    // Pothos rejects malformed arguments (e.g. an undecodable global id) before any resolver runs.
    return { message: (original as Error).message, path: formatted.path, locations: formatted.locations, extensions: { code: 'BAD_USER_INPUT', field: 'id' } };
  }
  // A refusal of our own SQL (TP* SQLSTATE: a trigger such as the suspended tenant's, a definer function) that no
  // service translated: its contract error, not a masked one.
  const contract = ours ? undefined : contractError(original);
  if (contract instanceof AppError) {
    const { http: _http, ...extensions } = contract.extensions;
    return { message: contract.message, path: formatted.path, locations: formatted.locations, extensions };
  }
  // A lost or refused connection to PostgreSQL or S3 (a terminated session, a restart, a failover): retryable, 503.
  const fault = ours ? undefined : unreachable(original);
  if (fault) return { message: unavailableMessage(fault.what), path: formatted.path, locations: formatted.locations, extensions: { code: 'SERVICE_UNAVAILABLE' } };
  // Our own errors, and Apollo's request/validation errors, are meant for the client; anything thrown from deeper is not.
  if (code && PUBLIC_CODES.has(code) && (ours || !(error as GraphQLError)?.originalError || code !== 'INTERNAL_SERVER_ERROR')) {
    const { http: _http, ...extensions } = formatted.extensions ?? {};
    if (code === 'BAD_USER_INPUT' && !extensions.field) {
      // Apollo's variable-coercion errors: name the offending input path, e.g. "input.role".
      const at = /at "([^"]+)"/.exec(formatted.message) ?? /Variable "\$(\w+)"/.exec(formatted.message);
      if (at) extensions.field = at[1]!;
    }
    return { ...formatted, extensions };
  }
  return { message: MASKED_MESSAGE, path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/** How long /health/ready waits for each of the database and object storage. */
const READY_PROBE_MS = 2_000;

/** `p`, or a rejection naming `what` after `ms` (p keeps running; its outcome is then ignored). */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** In production, error messages name nothing of the schema the client did not write ("Did you mean …?"). */
function withoutSuggestions(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const message = formatted.message.replace(/ ?Did you mean .+?\?$/, '');
  return message === formatted.message ? formatted : { ...formatted, message };
}

/** What the access log line and the metrics say about one HTTP GraphQL request; filled in as it goes. */
interface RequestRecord {
  requestId: string;
  /** The operation name as sent (log only). */
  operationName?: string | null;
  /** The bounded metric label, set once the operation was resolved. */
  operationLabel?: string;
  userId?: string | null;
  errorCodes: string[];
}
/** In-flight requests by request id (Apollo hands plugins a shallow copy of the context object, so not by identity). */
const records = new Map<string, RequestRecord>();

/** One JSON access log line and the request metrics per HTTP GraphQL request, whatever refused or served it. */
function accessLog(services: RequestServices): express.RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const record: RequestRecord = { requestId: crypto.randomUUID(), errorCodes: [] };
    res.locals.graphql = record;
    records.set(record.requestId, record);
    res.setHeader('x-request-id', record.requestId);
    res.once('close', () => {
      records.delete(record.requestId);
      const seconds = (performance.now() - started) / 1000;
      if (record.errorCodes.length === 0 && res.statusCode >= 400) {
        record.errorCodes.push(res.statusCode >= 500 ? 'INTERNAL_SERVER_ERROR' : res.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST');
      }
      services.metrics.graphqlDuration.observe({ operation: record.operationLabel ?? '__invalid' }, seconds);
      services.metrics.countErrors(record.errorCodes);
      services.log.info(
        {
          requestId: record.requestId,
          method: req.method,
          status: res.statusCode,
          operationName: typeof record.operationName === 'string' ? record.operationName.slice(0, 100) : null,
          durationMs: Math.round(seconds * 1000),
          errorCodes: record.errorCodes,
          userId: record.userId ?? null,
          ip: req.ip,
        },
        'graphql request',
      );
    });
    next();
  };
}

/** Browser origins allowed to open a WebSocket: none sent (not a browser), the API's own host, or ALLOWED_ORIGINS. */
function originAllowed(origin: string | undefined, host: string | undefined, allowed: string[]) {
  if (!origin) return true;
  const normalized = origin.trim().replace(/\/$/, '').toLowerCase();
  if (allowed.includes('*') || allowed.includes(normalized)) return true;
  try {
    return !!host && new URL(normalized).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/** Runs fn at `at` (setTimeout's own limit is ~24.8 days); returns a cancel function. */
function runAt(at: Date, fn: () => void) {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = at.getTime() - Date.now();
    timer = setTimeout(left > 2 ** 31 - 1 ? arm : fn, Math.max(0, Math.min(left, 2 ** 31 - 1)));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** X-Tenant may carry a slug or a tenant's global id; the database narrows visibility with it. */
function tenantHeader(value: string | undefined): string | null {
  if (!value) return null;
  const v = value.trim();
  if (/^[a-z0-9-]{1,63}$/.test(v)) return v;
  if (isUuid(v)) return v.toLowerCase();
  return uuidFromGlobalId('Tenant', v, 'X-Tenant');
}

/**
 * One transaction per request: opened only once the operation passed validation and the limits (a refused request
 * sends no SQL), committed when the operation produced no error, rolled back otherwise.
 */
function transactionPlugin(services: RequestServices): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, operation, operationName, document, request, schema }) {
          const record = records.get(contextValue.requestId);
          if (record) record.operationLabel = services.metrics.operationLabel(operationName);
          if (operation?.operation === 'subscription') {
            throw new GraphQLError('subscriptions are served over WebSocket (graphql-transport-ws) on this same URL', { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
          }
          // No operation, or variables that do not coerce: execution answers that itself before any resolver runs.
          if (!operation || variableErrors(schema, operation, request.variables).length > 0) return;
          assertWithinLimits(schema, document, operation, request.variables);
          const open = await services.db.open({ userId: contextValue.userId, tenant: contextValue.tenant, apiKeyId: contextValue.apiKeyId, requestId: contextValue.requestId, recordSupportAccess: true });
          contextValue.db = open.tx;
          contextValue.transaction = open;
          // (A key request is never a support access: app.record_support_access ignores it.)
          if (contextValue.tenant && !contextValue.apiKeyId) {
            // A failed request rolls back its support-access entry with everything else: written again on its own.
            const { userId, tenant, requestId } = contextValue;
            contextValue.afterRollback.push(() => services.db.withContext({ userId, tenant, requestId, recordSupportAccess: true }, async () => undefined));
          }
        },
        async didEncounterErrors({ contextValue, errors }) {
          for (const e of errors) {
            const original = e.originalError ?? e;
            const fault = unreachable(original);
            if (fault && !(original instanceof AppError)) {
              services.log.warn({ requestId: contextValue.requestId, path: e.path, reason: describeFailure(original) }, `request failed: ${fault.what} unreachable`);
              continue;
            }
            const clientError = original instanceof AppError || original.name === 'PothosValidationError' || (e.extensions?.code && PUBLIC_CODES.has(String(e.extensions.code)));
            if (!clientError) {
              services.log.error({ err: original, requestId: contextValue.requestId, path: e.path }, 'unexpected error');
            }
          }
        },
        async willSendResponse({ contextValue, response, errors, operationName, request }) {
          const open = contextValue.transaction;
          if (open) {
            const failed = (errors?.length ?? 0) > 0 || (response.body.kind === 'single' && (response.body.singleResult.errors?.length ?? 0) > 0);
            if (failed) {
              await open.rollback();
              for (const job of contextValue.afterRollback) await job().catch(() => undefined);
            } else {
              try {
                await open.commit();
                for (const job of contextValue.afterCommit ?? []) job();
              } catch (err) {
                // Lost at COMMIT: the client cannot know whether a mutation was applied (it was, only if the
                // server committed before the session died); answered as retryable all the same.
                const fault = unreachable(err);
                if (fault) services.log.warn({ requestId: contextValue.requestId, reason: describeFailure(err) }, 'commit failed: database unreachable');
                else services.log.error({ err, requestId: contextValue.requestId }, 'commit failed');
                if (response.body.kind === 'single') {
                  response.body.singleResult.data = null;
                  response.body.singleResult.errors = [
                    fault
                      ? { message: unavailableMessage(fault.what), extensions: { code: 'SERVICE_UNAVAILABLE' } }
                      : { message: MASKED_MESSAGE, extensions: { code: 'INTERNAL_SERVER_ERROR' } },
                  ];
                }
              }
            }
          }
          const sent = response.body.kind === 'single' ? response.body.singleResult.errors : response.body.initialResult.errors;
          for (const e of sent ?? []) {
            if (e.extensions?.code === 'INTERNAL_SERVER_ERROR' || e.extensions?.code === 'SERVICE_UNAVAILABLE') (e.extensions as Record<string, unknown>).requestId = contextValue.requestId;
          }
          if (sent?.some((e) => e.extensions?.code === 'SERVICE_UNAVAILABLE')) {
            // Retryable: HTTP 503 with a hint (whatever status execution would have chosen).
            response.http.status = 503;
            response.http.headers.set('retry-after', '1');
          }
          response.http.headers.set('x-request-id', contextValue.requestId);
          const record = records.get(contextValue.requestId);
          if (record) {
            record.operationName = operationName ?? request.operationName ?? null;
            record.userId = contextValue.userId;
            record.errorCodes = (sent ?? []).map((e) => String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
          }
        },
      };
    },
  };
}

export async function startHttpServer(services: RequestServices, port: number, host: string) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', services.config.http.trustProxy);
  const httpServer = http.createServer(app);
  const production = services.config.production;
  const format = production ? (f: GraphQLFormattedError, e: unknown) => withoutSuggestions(formatError(f, e)) : formatError;

  // noServer + our own 'upgrade' listener is what `server: httpServer` does, minus ws re-emitting the HTTP
  // server's errors as its own: graphql-ws answers those with an "Internal error emitted on the WebSocket server"
  // dump, and a port in use became that dump and a hang instead of a failed start (listen below).
  const wsServer = new WebSocketServer({
    noServer: true,
    path: '/graphql',
    maxPayload: services.config.http.bodyLimitBytes,
    // Cross-site WebSocket hijacking: a browser page of another origin is refused at the handshake (HTTP 403).
    verifyClient: (info: { origin: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
      if (originAllowed(info.origin, info.req.headers.host, services.config.http.allowedOrigins)) return done(true);
      services.log.warn({ origin: info.origin?.slice(0, 200) }, 'websocket origin refused');
      done(false, 403, 'Forbidden origin');
    },
  });
  wsServer.on('connection', (socket) => {
    services.metrics.websocketConnections.inc();
    socket.once('close', () => services.metrics.websocketConnections.dec());
  });
  const wsCleanup = useServer<{ authorization?: string; Authorization?: string; 'x-tenant'?: string }, { userId: string | null; tenant: string | null; apiKeyId: string | null }>(
    {
      schema,
      // Subscribers of the same operation as the same principal share each event's execution (subscriptions.ts).
      subscribe: sharedSubscribe,
      connectionInitWaitTimeout: services.config.http.wsConnectionInitTimeoutMs,
      onConnect: async (ws) => {
        const params = ws.connectionParams ?? {};
        try {
          const ip = (ws.extra.request.socket.remoteAddress ?? null) as string | null;
          const principal = await services.authenticator.authenticate(params.authorization ?? params.Authorization, ip);
          (ws.extra as { userId: string | null }).userId = principal.userId;
          (ws.extra as { sessionId?: string | null }).sessionId = principal.sessionId ?? null;
          // An API key is bound to its tenant, whatever X-Tenant says.
          ws.extra.tenant = principal.apiKey ? principal.apiKey.tenantId : tenantHeader(params['x-tenant']);
          ws.extra.apiKeyId = principal.apiKey?.id ?? null;
          // … nor than its API key: revokeApiKey (heard by every instance through NOTIFY) closes it at once (4401).
          if (principal.apiKey) {
            const socket = ws.extra.socket;
            const off = services.events.onApiKeyRevoked(principal.apiKey.id, () => socket.close(4401, 'API key revoked'));
            socket.once('close', off);
          }
          // The socket lives no longer than its token: closed (4401) the moment the token expires.
          if (principal.expiresAt) {
            const socket = ws.extra.socket;
            const cancel = runAt(principal.expiresAt, () => socket.close(4401, 'Token expired'));
            socket.once('close', cancel);
          }
          // … nor than its session: logOut (or a refresh token's reuse) closes it at once (4401).
          if (principal.sessionId) {
            const socket = ws.extra.socket;
            const off = services.events.onSessionRevoked(principal.sessionId, () => socket.close(4401, 'Session revoked'));
            socket.once('close', off);
          }
          // … nor than its user's account: a deactivation closes every socket of theirs, whatever the token.
          if (principal.userId) {
            const socket = ws.extra.socket;
            const off = services.events.onUserDeactivated(principal.userId, () => socket.close(4401, 'Account deactivated'));
            socket.once('close', off);
          }
          return true;
        } catch (e) {
          // The database unreachable is no verdict on the token: 1013 "try again later", which clients retry
          // (graphql-ws would otherwise close with 4403 Forbidden, which they take as final).
          if ((e as GraphQLError).extensions?.code === 'SERVICE_UNAVAILABLE') ws.extra.socket.close(1013, 'the database is unreachable, try again');
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      // Same limits as over HTTP (tokens, depth, aliases, one operation, page sizes, cost), checked before any resolver.
      onSubscribe: (_ctx, _id, payload) => checkSocketOperation(schema, production, payload),
      context: (ws): Context => ({
        requestId: crypto.randomUUID(),
        userId: ws.extra.userId ?? null,
        sessionId: (ws.extra as { sessionId?: string | null }).sessionId ?? null,
        tenant: ws.extra.tenant ?? null,
        apiKeyId: ws.extra.apiKeyId ?? null,
        ip: (ws.extra.request.socket.remoteAddress ?? null) as string | null,
        userAgent: (ws.extra.request.headers['user-agent'] ?? null) as string | null,
        db: undefined as never,
        services,
        afterRollback: [],
      }),
      // Every result sent over the socket goes through the same masking as HTTP responses.
      onNext: (_ctx, _id, _payload, args, result) => {
        if (!result.errors?.length) return;
        const requestId = (args.contextValue as Context | undefined)?.requestId;
        return {
          ...result,
          errors: result.errors.map((e) => {
            const formatted = format(e.toJSON(), e);
            services.metrics.countErrors([String(formatted.extensions?.code ?? 'INTERNAL_SERVER_ERROR')]);
            if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR') {
              services.log.error({ err: e.originalError ?? e, requestId, path: e.path }, 'unexpected subscription error');
              return { ...formatted, extensions: { ...formatted.extensions, requestId } };
            }
            return formatted;
          }),
        };
      },
      onError: (_ctx, _id, _payload, errors) => {
        return errors.map((e) => {
          const f = format(e.toJSON(), e);
          services.metrics.countErrors([String(f.extensions?.code ?? 'INTERNAL_SERVER_ERROR')]);
          return new GraphQLError(f.message, { extensions: f.extensions });
        });
      },
    },
    wsServer,
  );

  const apollo = new ApolloServer<Context>({
    schema,
    formatError: format,
    includeStacktraceInErrorResponses: false,
    // main.ts and cluster.ts own SIGTERM/SIGINT (drain, then jobs, pools, embedded servers). Apollo's own handler
    // (on unless NODE_ENV=test) raced them: it stopped the server first, and our stop() then never returned.
    stopOnTerminationSignals: false,
    // GraphiQL needs the schema; enabling it in production (GRAPHIQL=true) enables introspection with it.
    introspection: !production || services.config.http.graphiql,
    // No "Did you mean …?" naming fields and types in production validation errors.
    hideSchemaDetailsFromClientErrors: production,
    // Both are Apollo's defaults, stated because the tests rely on them: simple (CSRF-able) requests are refused,
    // and a JSON array of operations is one request, not a batch.
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    parseOptions,
    validationRules: limitRules,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // No cache hints are used; the default cache-control plugin would wrap every field resolver (bench/README.md).
      ApolloServerPluginCacheControlDisabled(),
      // Apollo's landing page loads from a CDN: our own GraphiQL (graphiql.ts) answers browsers instead.
      ApolloServerPluginLandingPageDisabled(),
      transactionPlugin(services),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
  });
  await apollo.start();

  app.get('/health/live', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Each probe is bounded: a server that does not answer (a black-holed host, a full pool) makes this 503, not a hang.
  app.get('/health/ready', async (_req, res) => {
    res.set('cache-control', 'no-store');
    try {
      const pending = await within(READY_PROBE_MS, pendingMigrations(services.db.pool), 'the database did not answer in time');
      if (pending.length) return res.status(503).json({ status: 'migrations pending', pending });
    } catch {
      // No detail: this endpoint answers anyone (hosts and ports stay out of it).
      return res.status(503).json({ status: 'database unreachable' });
    }
    try {
      await within(READY_PROBE_MS, services.storage.ready(), 'object storage did not answer in time');
    } catch {
      return res.status(503).json({ status: 'storage unreachable' });
    }
    res.json({ status: 'ready' });
  });
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.set('cache-control', 'public, max-age=300').json(services.tokens.jwks);
  });
  // Prometheus text format; METRICS_TOKEN, when set, is required as a bearer token.
  app.get('/metrics', async (req, res) => {
    const token = services.config.metrics.token;
    if (token && !metricsTokenMatches(req.headers.authorization, token)) {
      return res.status(401).set('www-authenticate', 'Bearer').json({ error: 'unauthorized' });
    }
    res.set('content-type', services.metrics.contentType).set('cache-control', 'no-store').send(await services.metrics.text());
  });

  /** The request's context (no SQL: the transaction is opened by transactionPlugin once the operation is accepted). */
  const contextFor = async (req: express.Request, res: express.Response): Promise<Context> => {
    const record = res.locals.graphql as RequestRecord;
    try {
      const principal = await services.authenticator.authenticate(req.headers.authorization, req.ip ?? null);
      // An API key is bound to its tenant: app.tenant_id is the key's, whatever X-Tenant says.
      const tenant = principal.apiKey ? principal.apiKey.tenantId : tenantHeader(req.header('x-tenant'));
      const ctx: Context = {
        requestId: record.requestId,
        userId: principal.userId,
        sessionId: principal.sessionId ?? null,
        tenant,
        apiKeyId: principal.apiKey?.id ?? null,
        ip: req.ip ?? null,
        userAgent: req.header('user-agent') ?? null,
        db: undefined as never,
        services,
        afterRollback: [],
      };
      return ctx;
    } catch (e) {
      record.errorCodes = [String((e as GraphQLError).extensions?.code ?? 'INTERNAL_SERVER_ERROR')];
      throw e;
    }
  };

  if (services.config.http.graphiql) app.use(graphiqlRouter(services.log));
  app.use(consoleRouter(services.log, services.storage.origin, services.config.auth.oidcLogin?.providerName));
  // The browser session cookie (session-cookie.ts): the API's own refreshSession and logOut, run through Apollo.
  app.use('/auth', accessLog(services));
  const executeOperation: Execute = async (req, res, query, variables) => {
    const response = await apollo.executeOperation({ query, variables }, { contextValue: await contextFor(req, res) });
    return response.body.kind === 'single' ? response.body.singleResult : { errors: [{ message: 'unexpected incremental response' }] };
  };
  // Before the cookie routes, which take POSTs only: the OIDC sign-in is two GET navigations (oidc-login.ts).
  app.use(oidcLoginRouter(services, executeOperation));
  app.use(sessionCookieRouter(services, executeOperation, (origin, host) => originAllowed(origin, host, services.config.http.allowedOrigins)));

  app.use(
    '/graphql',
    accessLog(services),
    express.json({ limit: services.config.http.bodyLimitBytes }),
    expressMiddleware(apollo, {
      context: ({ req, res }) => contextFor(req, res),
    }),
  );
  // A body express.json refused (too large: 413, not JSON: 400), answered as GraphQL errors rather than HTML.
  app.use('/graphql', (err: { status?: number; type?: string }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent || typeof err?.status !== 'number' || err.status < 400 || err.status >= 500) return next(err);
    const code = err.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
    const message =
      err.status === 413
        ? `the request body is larger than ${services.config.http.bodyLimitBytes} bytes`
        : err.type === 'entity.parse.failed'
          ? 'the request body is not valid JSON'
          : 'the request body could not be read';
    (res.locals.graphql as RequestRecord | undefined)?.errorCodes.push(code);
    res.status(err.status).json({ errors: [{ message, extensions: { code } }] });
  });

  httpServer.on('upgrade', (req, socket, head) => wsServer.handleUpgrade(req, socket, head, (ws) => wsServer.emit('connection', ws, req)));
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, host, () => {
        httpServer.removeListener('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await apollo.stop().catch(() => undefined);
    wsServer.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartupError(`port ${port} is already in use on ${host}: stop the other program or set PORT`);
    if (code === 'EACCES') throw new StartupError(`no permission to listen on port ${port} (${host}): set PORT to 1024 or above`);
    if (code === 'EADDRNOTAVAIL') throw new StartupError(`${host} is not an address of this machine: set HOST`);
    throw new StartupError(`could not listen on ${host}:${port}: ${readableError(e)}`);
  }
  httpServer.on('error', (err) => services.log.error({ err }, 'HTTP server error'));
  const address = httpServer.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    port: actualPort,
    async close() {
      await apollo.stop();
      wsServer.close();
    },
  };
}
