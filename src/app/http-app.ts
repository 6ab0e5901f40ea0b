import express, { NextFunction, Request, Response } from 'express';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, GraphQLSchema } from 'graphql';
import { unauthenticated } from '../common/errors/graphql-errors';
import { subscriptionsOverHttpRefused } from './subscriptions';
import { createErrorFormatter, databaseFailureError, databaseFailurePlugin } from '../graphql/errors';
import { databaseFailureOf } from '../common/errors/database-failure';
import { createRequestContext, RequestContext } from './context';
import { Logger } from './logger';
import { Services } from './services';
import { graphqlUploads, requirePreflightForMultipart } from './upload-middleware';
import { legacyUploadRouter } from './legacy-upload';
import { drainAfterAnswer, MultipartError } from './multipart';
import { exportRouter } from './export-route';
import { RateLimits } from './rate-limit';
import { queryLimitsPlugin, tokenLimit } from '../graphql/query-limits';
import { operationLogPlugin, requestLogger, requestLogOf } from './request-log';
import { opsRouter } from './ops-routes';
import { explorerAssets, explorerPlugin } from './explorer';
import { corsMiddleware } from './cors';

const GRAPHQL_PATH = '/graphql';

export interface HttpApp {
  app: express.Express;
  apollo: ApolloServer<RequestContext>;
}

/** Express + Apollo wiring. The caller owns listening and shutdown. */
export async function createHttpApp(schema: GraphQLSchema, services: Services, logger: Logger): Promise<HttpApp> {
  const { config } = services;
  const rateLimits = new RateLimits(config.rateLimits);
  const apollo = new ApolloServer<RequestContext>({
    schema,
    introspection: config.introspection,
    // The process's shutdown is ours (app/shutdown.ts). Apollo's own SIGTERM handler stops Apollo alone and then
    // raises the signal again, which killed the process before our stop() had finished (no checkpoint, no hand-back).
    stopOnTerminationSignals: false,
    // Apollo would include stack traces unless NODE_ENV=production; never send them.
    includeStacktraceInErrorResponses: false,
    // No "Did you mean ...?" hints that reveal field names to callers who may not introspect.
    hideSchemaDetailsFromClientErrors: true,
    formatError: createErrorFormatter((err) => logger.error({ err }, 'unexpected error in GraphQL request')),
    plugins: [
      operationLogPlugin(),
      databaseFailurePlugin(),
      queryLimitsPlugin(config.queryLimits),
      subscriptionsOverHttpRefused(),
      rateLimits.plugin(),
      services.admission.plugin(),
      // What a browser gets at GET /graphql: the embedded explorer, Apollo Sandbox, or a page saying it is off.
      explorerPlugin(config.explorer, GRAPHQL_PATH),
      // Apollo installs its cache-control plugin unless told not to: it wraps every field's resolver to read
      // @cacheControl hints, which this schema has none of (answers are per API key and never cached). Off, a
      // 100-hit drill-down page resolves its ~2,000 fields without that wrapper.
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await apollo.start();

  const app = express();
  app.disable('x-powered-by');
  // Only the configured proxies may set the client address (X-Forwarded-For); by default, none.
  app.set('trust proxy', config.trustProxy);
  // First: every request gets an id and one log line, whatever answers it.
  app.use(requestLogger(logger, services.metrics));

  app.use(opsRouter(services, logger));
  if (config.explorer === 'embedded') app.use(await explorerAssets());
  // Before the rate limits: a preflight is answered here and costs the caller nothing.
  app.use([GRAPHQL_PATH, '/export'], corsMiddleware(config.corsOrigins));

  // Uploads and exports are counted before their body is read.
  app.use(rateLimits.middleware);

  app.use(
    GRAPHQL_PATH,
    drainAfterAnswer(Math.max(config.maxUploadBytes, config.maxFeedBytes) + config.maxRequestBytes),
    requirePreflightForMultipart,
    graphqlUploads(Math.max(config.maxUploadBytes, config.maxFeedBytes), config.maxRequestBytes),
    express.json({ limit: config.maxRequestBytes }),
    tokenLimit(config.queryLimits.tokens),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        let ctx: RequestContext;
        try {
          ctx = await createRequestContext(services, req.headers.authorization, requestLogOf(res));
        } catch (err) {
          // The key lookup met a database outage: 503 and Retry-After, as a resolver meeting it would answer.
          const failure = databaseFailureOf(err);
          if (!failure) throw err;
          logger.warn({ err }, 'GraphQL request: database failure while checking the API key');
          throw databaseFailureError(failure);
        }
        // Every GraphQL request carries a valid key; introspection (Sandbox) included.
        if (!ctx.caller) throw withStatus(unauthenticated(), 401);
        return ctx;
      },
    }),
  );

  app.use(legacyUploadRouter(services));
  app.use(exportRouter(services, logger));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'Not found', code: 'NOT_FOUND' });
  });

  // Errors outside GraphQL (bad JSON bodies, oversize bodies) answer as JSON with no internals.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const failure = databaseFailureOf(err);
    if (failure) {
      logger.error({ err }, 'HTTP request failed on the database');
      res.setHeader('retry-after', String(failure.retryAfterSeconds));
      return void res.status(failure.status).json({ error: failure.message, code: failure.code });
    }
    const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string };
    const status = e.status ?? e.statusCode ?? 500;
    if (status >= 500) logger.error({ err }, 'unexpected error in HTTP request');
    const message =
      e.type === 'entity.parse.failed'
        ? 'The request body is not valid JSON.'
        : e.type === 'entity.too.large'
          ? 'The request body is too large.'
          : status < 500 && e.expose && e.message
            ? e.message
            : 'Internal server error';
    // Every refusal names its kind, as GraphQL's and the form post's do: a multipart one its own (MALFORMED_MULTIPART,
    // PAYLOAD_TOO_LARGE), the others by their status.
    const code =
      err instanceof MultipartError
        ? err.code
        : status === 413 || e.type === 'entity.too.large'
          ? 'PAYLOAD_TOO_LARGE'
          : status >= 500 || message === 'Internal server error'
            ? 'INTERNAL_SERVER_ERROR'
            : 'BAD_REQUEST';
    res.status(status).json({ error: message, code });
  });

  return { app, apollo };
}

function withStatus(error: GraphQLError, status: number): GraphQLError {
  return new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status } } });
}
