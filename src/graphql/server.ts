import crypto from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { schema } from './schema.ts';
import type { Context } from './context.ts';
import type { Services } from '../services.ts';
import { AppError } from './errors.ts';
import { pendingMigrations } from '../db/migrate.ts';
import { uuidFromGlobalId, isUuid } from './ids.ts';

/** Codes a client may see with their message; anything else is masked. */
const PUBLIC_CODES = new Set([
  'BAD_USER_INPUT', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'QUOTA_EXCEEDED',
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

/** X-Tenant may carry a slug or a tenant's global id; the database narrows visibility with it. */
function tenantHeader(value: string | undefined): string | null {
  if (!value) return null;
  const v = value.trim();
  if (/^[a-z0-9-]{1,63}$/.test(v)) return v;
  if (isUuid(v)) return v.toLowerCase();
  return uuidFromGlobalId('Tenant', v, 'X-Tenant');
}

/** One transaction per request: committed when the operation produced no error, rolled back otherwise. */
function transactionPlugin(services: Services): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors }) {
          for (const e of errors) {
            const original = e.originalError ?? e;
            const clientError = original instanceof AppError || original.name === 'PothosValidationError' || (e.extensions?.code && PUBLIC_CODES.has(String(e.extensions.code)));
            if (!clientError) {
              services.log.error({ err: original, requestId: contextValue.requestId, path: e.path }, 'unexpected error');
            }
          }
        },
        async willSendResponse({ contextValue, response, errors }) {
          const open = contextValue.transaction;
          if (!open) return;
          const failed = (errors?.length ?? 0) > 0 || (response.body.kind === 'single' && (response.body.singleResult.errors?.length ?? 0) > 0);
          if (failed) {
            await open.rollback();
            for (const job of contextValue.afterRollback) await job().catch(() => undefined);
          } else {
            try {
              await open.commit();
            } catch (err) {
              services.log.error({ err, requestId: contextValue.requestId }, 'commit failed');
              if (response.body.kind === 'single') {
                response.body.singleResult.data = null;
                response.body.singleResult.errors = [{ message: MASKED_MESSAGE, extensions: { code: 'INTERNAL_SERVER_ERROR' } }];
              }
            }
          }
          if (response.body.kind === 'single') {
            for (const e of response.body.singleResult.errors ?? []) {
              if (e.extensions?.code === 'INTERNAL_SERVER_ERROR') (e.extensions as Record<string, unknown>).requestId = contextValue.requestId;
            }
          }
          response.http.headers.set('x-request-id', contextValue.requestId);
        },
      };
    },
  };
}

export async function startHttpServer(services: Services, port: number, host: string) {
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const wsCleanup = useServer<{ authorization?: string; Authorization?: string; 'x-tenant'?: string }, { userId: string | null; tenant: string | null }>(
    {
      schema,
      onConnect: async (ws) => {
        const params = ws.connectionParams ?? {};
        try {
          (ws.extra as { userId: string | null }).userId = await services.authenticator.userFromAuthorization(params.authorization ?? params.Authorization);
          ws.extra.tenant = tenantHeader(params['x-tenant']);
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      context: (ws): Context => ({
        requestId: crypto.randomUUID(),
        userId: ws.extra.userId ?? null,
        tenant: ws.extra.tenant ?? null,
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
            const formatted = formatError(e.toJSON(), e);
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
          const f = formatError(e.toJSON(), e);
          return new GraphQLError(f.message, { extensions: f.extensions });
        });
      },
    },
    wsServer,
  );

  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: !services.config.production,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      transactionPlugin(services),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
  });
  await apollo.start();

  app.get('/health/live', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/health/ready', async (_req, res) => {
    try {
      const pending = await pendingMigrations(services.db.pool);
      if (pending.length) return res.status(503).json({ status: 'migrations pending', pending });
      try {
        await services.storage.ready();
      } catch {
        return res.status(503).json({ status: 'storage unreachable' });
      }
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'database unreachable' });
    }
  });
  app.get('/.well-known/jwks.json', (_req, res) => {
    res.set('cache-control', 'public, max-age=300').json(services.tokens.jwks);
  });

  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const requestId = crypto.randomUUID();
        const userId = await services.authenticator.userFromAuthorization(req.headers.authorization);
        const tenant = tenantHeader(req.header('x-tenant'));
        const open = await services.db.open({ userId, tenant, requestId });
        const ctx: Context = {
          requestId,
          userId,
          tenant,
          ip: req.ip ?? null,
          userAgent: req.header('user-agent') ?? null,
          db: open.tx,
          services,
          afterRollback: [],
          transaction: open,
        };
        return ctx;
      },
    }),
  );

  await new Promise<void>((resolve) => httpServer.listen(port, host, resolve));
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
