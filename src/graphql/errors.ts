import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';

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
  'PAYLOAD_TOO_LARGE',
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
      const message = formatted.message.replace(/ ?Did you mean [^?]*\?/g, '');
      return { message, locations: formatted.locations, path: formatted.path, extensions: { code } };
    }
    // An upload stream failed with the multipart parser's own client error (e.g. "1 max file uploads exceeded."):
    // written for clients (`expose`), so say it.
    const http = original as { status?: unknown; expose?: unknown };
    if (original instanceof Error && http.expose === true && typeof http.status === 'number' && http.status >= 400 && http.status < 500) {
      return { message: original.message, path: formatted.path, extensions: { code: http.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST' } };
    }
    report(original);
    return { message: 'Internal server error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}
