import crypto from 'node:crypto';
import type http from 'node:http';
import { getOperationAST, GraphQLError, GraphQLSchema, parse } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { Caller } from '../modules/auth/auth.types';
import { queryTooComplex, shapeRefusals } from '../graphql/query-limits';
import { RequestContext } from './context';
import { createLoaders } from './loaders';
import { Logger } from './logger';
import { Services } from './services';

const GRAPHQL_PATH = '/graphql';

/**
 * GraphQL subscriptions over the graphql-ws protocol, on the HTTP server's port and path (WebSocket upgrades of
 * /graphql; plain requests stay Apollo's). The connection authenticates once, with `{ apiKey }` (or
 * `{ authorization: "Bearer <key>" }`) in its connection parameters, and every operation on it is scoped to that
 * key's account. Only subscriptions: queries and mutations keep to HTTP, behind its limits.
 */
export function attachSubscriptions(server: http.Server, schema: GraphQLSchema, services: Services, logger: Logger): { close(): Promise<void> } {
  // A message is at most as large as an HTTP request's JSON body may be.
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: services.config.maxRequestBytes });
  const callers = new WeakMap<object, Caller>();
  const handle = useServer(
    {
      schema,
      onConnect: async (ctx) => {
        const key = apiKeyOf(ctx.connectionParams);
        const caller = key ? await services.accounts.authenticate(key) : null;
        // false: closed with 4403 Forbidden.
        if (!caller) return false;
        callers.set(ctx.extra, caller);
        return true;
      },
      onSubscribe: (_ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [err instanceof GraphQLError ? err : new GraphQLError('The query does not parse.')];
        }
        const operation = getOperationAST(document, payload.operationName);
        if (operation && operation.operation !== 'subscription')
          return [new GraphQLError('Only subscriptions over WebSocket; send queries and mutations over HTTP.')];
        // The same bounds on a document's shape as over HTTP.
        const refusals = shapeRefusals(schema, document, services.config.queryLimits);
        if (refusals.length > 0) return [queryTooComplex(refusals.join(' '))];
      },
      context: (ctx): RequestContext => {
        const caller = callers.get(ctx.extra) ?? null;
        return { requestId: crypto.randomUUID(), caller, services, loaders: createLoaders(services, caller) };
      },
      onError: (_ctx, _id, _payload, errors) => {
        logger.warn({ event: 'subscription.error', errors: errors.map((e) => e.message) }, 'subscription failed');
      },
    },
    wss,
  );
  return {
    close: async () => {
      await handle.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function apiKeyOf(params: Readonly<Record<string, unknown>> | undefined): string | null {
  if (!params) return null;
  if (typeof params.apiKey === 'string') return params.apiKey;
  const auth = params.authorization ?? params.Authorization;
  if (typeof auth !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  return m ? m[1] : null;
}
