import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { DatabaseFailure, databaseFailureOf } from '../common/errors/database-failure';
import { analyticsUnavailableCause } from '../modules/analytics/analytics-errors';

/** Codes whose messages are written for clients (ours, and Apollo's request/validation errors). */
const CLIENT_CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_COMPLEX',
  'RATE_LIMITED',
  'OVERLOADED',
  'PAYLOAD_TOO_LARGE',
  // Raised deliberately before execution (databaseFailureError); resolvers' database errors are mapped below.
  'SERVICE_UNAVAILABLE',
  'INSUFFICIENT_STORAGE',
  // A hit report's ClickHouse store (ANALYTICS_URL) failed: the report is refused rather than partial.
  'ANALYTICS_UNAVAILABLE',
]);

export type ErrorReporter = (error: unknown) => void;

/**
 * Masks everything that is not a deliberate client error: no stack, SQL, table names or file paths ever
 * reach a client, whatever NODE_ENV says. The real error goes to the reporter (the log) only.
 */
export function createErrorFormatter(report: ErrorReporter) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    const original = unwrapResolverError(error);
    const deliberate = typeof code === 'string' && CLIENT_CODES.has(code) && (original instanceof GraphQLError || original === error);
    if (deliberate) {
      // graphql-js suggests names ("Did you mean ...?") in variable and enum errors too: callers who may not introspect learn none.
      const message = withoutInternalValue(formatted.message.replace(/ ?Did you mean [^?]*\?/g, ''));
      return { message, locations: formatted.locations, path: formatted.path, extensions: { code } };
    }
    // An upload stream failed with the multipart parser's own client error (e.g. "One file per request."):
    // written for clients (`expose`), so say it.
    const http = original as { status?: unknown; expose?: unknown };
    if (original instanceof Error && http.expose === true && typeof http.status === 'number' && http.status >= 400 && http.status < 500) {
      return { message: original.message, path: formatted.path, extensions: { code: http.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST' } };
    }
    report(original);
    // A write that needs the ClickHouse tier (deviceDelete removes its hits there) while it is away: refused, nothing changed.
    if (analyticsUnavailableCause(original)) {
      return {
        message: 'The analytics tier (ClickHouse) is unavailable; nothing was changed. Try again later.',
        path: formatted.path,
        extensions: { code: 'ANALYTICS_UNAVAILABLE' },
      };
    }
    // The database is full or unreachable: say so (no internals), so clients come back instead of giving up.
    const failure = databaseFailureOf(original);
    if (failure) return { message: failure.message, path: formatted.path, extensions: { code: failure.code } };
    return { message: 'Internal server error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}

const INVALID_VALUE = /^Variable "\$[^"]+" got invalid value /;

/**
 * graphql-js prints the value of a variable it refuses ('Variable "$i" got invalid value { ... }; Field "x" is not
 * defined...'). A value that holds an upload prints the multipart parser's own object (its promise, `resolve:
 * [function]`): such a value is left out, the rest of the message kept. A value the client sent is its own, and stays.
 */
export function withoutInternalValue(message: string): string {
  const head = INVALID_VALUE.exec(message);
  if (!head) return message;
  // The printed value ends, outside quotes and brackets, where '; ' (the reason) or ' at "' (the path) begins.
  let depth = 0;
  let quoted = false;
  let end = -1;
  /** A function printed (outside the client's strings): the value is the parser's object. */
  let internal = false;
  for (let i = head[0].length; i < message.length; i++) {
    const c = message[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '{' || c === '[') {
      depth++;
      if (message.startsWith('[function', i)) internal = true;
    } else if (c === '}' || c === ']') depth--;
    if (!quoted && depth === 0 && (message.startsWith('; ', i + 1) || message.startsWith(' at "', i + 1))) {
      end = i + 1;
      break;
    }
  }
  if (end < 0 || !internal) return message;
  return head[0].trimEnd() + message.slice(end);
}

/** A refusal raised before execution that the client should send again later: its HTTP status and Retry-After. */
export function comeBackLaterError(
  message: string,
  code: string,
  status: number,
  retryAfterSeconds: number,
  extensions: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, {
    extensions: { ...extensions, code, http: { status, headers: new HeaderMap([['retry-after', String(retryAfterSeconds)]]) } },
  });
}

/** A database failure met before execution (the API key lookup). */
export function databaseFailureError(failure: DatabaseFailure): GraphQLError {
  return comeBackLaterError(failure.message, failure.code, failure.status, failure.retryAfterSeconds);
}

/**
 * A response with a database failure among its errors answers that failure's status (503, or 507 when storage
 * is full) with Retry-After, instead of 200 with a masked error: clients and proxies retry, monitors see it.
 */
export function databaseFailurePlugin<T extends object>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ errors, response }) {
          const failures = (errors ?? []).map((e) => databaseFailureOf(unwrapResolverError(e))).filter((f): f is DatabaseFailure => f !== null);
          if (failures.length === 0) return;
          const failure = failures.find((f) => f.kind === 'STORAGE_FULL') ?? failures[0];
          response.http.status = failure.status;
          response.http.headers.set('retry-after', String(failure.retryAfterSeconds));
        },
      };
    },
  };
}
