import crypto from 'node:crypto';
import type http from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { ExecutionArgs, getOperationAST, getVariableValues, GraphQLError, GraphQLFormattedError, GraphQLSchema, parse, validate } from 'graphql';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { Caller } from '../modules/auth/auth.types';
import { costRefusal, queryTooComplex, shapeRefusals, tokenRefusal } from '../graphql/query-limits';
import { createErrorFormatter } from '../graphql/errors';
import { RequestContext } from './context';
import { createLoaders } from './loaders';
import { Logger } from './logger';
import { Services } from './services';

const GRAPHQL_PATH = '/graphql';

/** How long a connection's key counts as checked: its events within this time do not look it up again. */
const KEY_RECHECK_MS = 1_000;

/** Close codes: the key is not (or no longer) valid; the server cannot take another connection of this key now. */
const FORBIDDEN = 4403;
const TRY_AGAIN_LATER = 1013;

/** A connection's key and when it was last found valid. */
interface Connection {
  key: string;
  caller: Caller;
  checkedAt: number;
}

const clientError = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });

/**
 * GraphQL subscriptions over the graphql-ws protocol, on the HTTP server's port and path (WebSocket upgrades of
 * /graphql; plain requests stay Apollo's). The connection authenticates with `{ apiKey }` (or
 * `{ authorization: "Bearer <key>" }`) in its connection parameters, and every operation on it is scoped to that
 * key's account. The key is looked up again before a new subscription and before an event is sent (at most once a
 * second per connection): a key revoked meanwhile closes the connection (4403) and nothing more is sent. Only
 * subscriptions: queries and mutations keep to HTTP. A subscription meets HTTP's limits (tokens, depth, aliases,
 * directives, cost), at most `LIVE_MAX_SUBSCRIPTIONS` run at once on a connection and `LIVE_MAX_CONNECTIONS_PER_KEY`
 * connections per key; a client that stops reading is cut once `LIVE_MAX_BUFFERED_BYTES` of output wait for it.
 * Errors are masked as over HTTP (no SQL, no stack, no "Did you mean ...?").
 */
export function attachSubscriptions(server: http.Server, schema: GraphQLSchema, services: Services, logger: Logger): { close(): Promise<void> } {
  const { config } = services;
  const limits = config.live;
  // A message is at most as large as an HTTP request's JSON body may be.
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: config.maxRequestBytes });
  const connections = new WeakMap<object, Connection>();
  /** Open connections per API key (this process). */
  const perKey = new Map<number, Set<Extra>>();
  // A key revoked by this process closes its connections at once; one revoked elsewhere, at its next lookup.
  // (A connection whose key is being looked up when the revocation comes is not among them yet: it finds the key
  // among those revoked lately once registered.)
  const revokedLately = new Map<number, number>();
  const stopHearing = services.accounts.onKeyRevoked((apiKeyId) => {
    const now = Date.now();
    for (const [id, at] of revokedLately) if (now - at > KEY_RECHECK_MS) revokedLately.delete(id);
    revokedLately.set(apiKeyId, now);
    for (const extra of perKey.get(apiKeyId) ?? []) extra.socket.close(FORBIDDEN, 'Forbidden: the API key was revoked');
  });
  const format = createErrorFormatter((err) => logger.error({ err, event: 'subscription.error' }, 'unexpected error in a subscription'));

  /** Whether the connection's key is still valid (looked up again when last checked over KEY_RECHECK_MS ago); if not, the connection is closed. */
  const stillValid = async (extra: Extra): Promise<boolean> => {
    const c = connections.get(extra);
    if (!c) return false;
    if (Date.now() - c.checkedAt < KEY_RECHECK_MS) return true;
    const caller = await lookUp(extra, c.key);
    if (caller === undefined) return false;
    if (caller && caller.apiKeyId === c.caller.apiKeyId) {
      c.checkedAt = Date.now();
      return true;
    }
    extra.socket.close(FORBIDDEN, 'Forbidden: the API key was revoked');
    return false;
  };

  /**
   * The caller of `key`, or null when it is unknown or revoked; undefined when the database cannot say (down, locked):
   * then nothing is sent on the connection, which is closed with 1013 so that the client reconnects later, and the
   * error is logged here rather than thrown into graphql-ws (which prints it to the console and closes with 4500).
   */
  const lookUp = async (extra: Extra, key: string): Promise<Caller | null | undefined> => {
    try {
      return await services.accounts.authenticate(key);
    } catch (err) {
      logger.warn({ err, event: 'subscription.key_check_failed' }, 'could not check a subscription connection API key: connection closed');
      extra.socket.close(TRY_AGAIN_LATER, 'The API key cannot be checked now; reconnect later');
      return undefined;
    }
  };

  /** A client that does not read its output: cut at once (a close frame would wait behind that output). */
  const overBuffered = (extra: Extra): boolean => {
    if (extra.socket.bufferedAmount <= limits.maxBufferedBytes) return false;
    logger.warn(
      { event: 'subscription.slow_client', bufferedBytes: extra.socket.bufferedAmount },
      'subscription client does not read its output: connection cut',
    );
    extra.socket.terminate();
    return true;
  };

  // Before graphql-ws's own listener: a send that fails because the connection is gone (cut for not reading, closed
  // by the client) has nobody left to deliver to, and counts as done. graphql-ws's ws adapter would otherwise reject
  // every send still pending on it and print each to the console as an internal error.
  wss.on('connection', (socket) => {
    const send = socket.send.bind(socket) as (data: unknown, cb?: (err?: Error) => void) => void;
    socket.send = ((data: unknown, cb?: (err?: Error) => void) =>
      send(data, (err) => cb?.(err && socket.readyState !== socket.OPEN ? undefined : err))) as typeof socket.send;
  });
  const handle = useServer(
    {
      schema,
      onConnect: async (ctx) => {
        const key = apiKeyOf(ctx.connectionParams);
        const caller = key ? await lookUp(ctx.extra, key) : null;
        // false: closed with 4403 Forbidden (or with 1013 already, when the key could not be checked).
        if (!key || !caller || revokedLately.has(caller.apiKeyId)) return false;
        // Closed while its key was looked up: graphql-ws has run onClose already, with nothing here to remove.
        if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return false;
        let open = perKey.get(caller.apiKeyId);
        if (open && open.size >= limits.maxConnectionsPerKey) {
          ctx.extra.socket.close(TRY_AGAIN_LATER, `This API key has ${open.size} connections open already (LIVE_MAX_CONNECTIONS_PER_KEY)`);
          return false;
        }
        if (!open) perKey.set(caller.apiKeyId, (open = new Set()));
        open.add(ctx.extra);
        connections.set(ctx.extra, { key, caller, checkedAt: Date.now() });
        return true;
      },
      onClose: (ctx) => {
        const c = connections.get(ctx.extra);
        if (!c) return;
        connections.delete(ctx.extra);
        const open = perKey.get(c.caller.apiKeyId);
        open?.delete(ctx.extra);
        if (open?.size === 0) perKey.delete(c.caller.apiKeyId);
      },
      onSubscribe: async (ctx, _id, payload): Promise<ExecutionArgs | readonly GraphQLError[] | void> => {
        // The connection is closed by then: this is not sent.
        if (overBuffered(ctx.extra)) return [clientError('The client does not read its output.', 'BAD_REQUEST')];
        // Counted before any wait: the subscribe messages of one burst (a client resubscribing as it reconnects) are
        // each counted with those before it, not all of them with all of them. This one is among them already.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptions)
          return [
            clientError(
              `At most ${limits.maxSubscriptions} subscriptions at once on one connection (LIVE_MAX_SUBSCRIPTIONS); complete one first.`,
              'RATE_LIMITED',
            ),
          ];
        if (!(await stillValid(ctx.extra))) return [clientError('The API key was revoked.', 'UNAUTHENTICATED')];
        const tooMany = tokenRefusal(payload.query, config.queryLimits.tokens);
        if (tooMany) return [queryTooComplex(tooMany)];
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [clientError(err instanceof GraphQLError ? err.message : 'The query does not parse.', 'GRAPHQL_PARSE_FAILED')];
        }
        const operation = getOperationAST(document, payload.operationName);
        if (operation && operation.operation !== 'subscription')
          return [clientError('Only subscriptions over WebSocket; send queries and mutations over HTTP.', 'BAD_REQUEST')];
        // The same bounds as over HTTP, before the whole validation: the document's shape, then (valid) its cost with the variables.
        const refusals = shapeRefusals(schema, document, config.queryLimits);
        if (refusals.length > 0) return [queryTooComplex(refusals.join(' '))];
        const invalid = validate(schema, document);
        if (invalid.length > 0) return invalid.map((e) => clientError(e.message, 'GRAPHQL_VALIDATION_FAILED'));
        if (!operation)
          return [clientError('Unable to identify the operation: name it (operationName) when the document has several.', 'GRAPHQL_VALIDATION_FAILED')];
        const variables = payload.variables ?? {};
        const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables);
        if (coerced.errors) return coerced.errors.map((e) => clientError(e.message, 'BAD_USER_INPUT'));
        const cost = costRefusal(schema, document, operation, variables, config.queryLimits.cost);
        if (cost) return [cost];
        return { schema, document, operationName: payload.operationName, variableValues: variables };
      },
      context: (ctx): RequestContext => {
        const caller = connections.get(ctx.extra)?.caller ?? null;
        return { requestId: crypto.randomUUID(), caller, services, loaders: createLoaders(services, caller) };
      },
      onNext: async (ctx, _id, _payload, _args, result) => {
        // Nothing more for a revoked key, or for a client that has not read what it was sent.
        if (overBuffered(ctx.extra) || !(await stillValid(ctx.extra))) return { data: null };
        if (!result.errors?.length) return undefined;
        return { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) };
      },
      onError: (_ctx, _id, _payload, errors): GraphQLFormattedError[] => {
        const formatted = errors.map((e) => format(e.toJSON(), e));
        logger.warn({ event: 'subscription.refused', errors: formatted.map((e) => e.message) }, 'subscription failed');
        return formatted;
      },
    },
    wss,
  );
  return {
    close: async () => {
      stopHearing();
      await handle.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * Subscriptions are served over WebSocket only: one sent over HTTP is refused with 400 before any resolver (graphql-js
 * would run its subscribe over HTTP and answer an internal error).
 */
export function subscriptionsOverHttpRefused(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === 'subscription')
            throw new GraphQLError(`Subscriptions are served over WebSocket (the graphql-ws protocol) at ${GRAPHQL_PATH}, not over HTTP.`, {
              extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
            });
        },
      };
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
