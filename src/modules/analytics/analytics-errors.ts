/**
 * ClickHouse (ANALYTICS_URL) failing for a moment: unreachable, timing out, overloaded, its tables not migrated yet
 * (it was down at start). The upload is not at fault: the worker puts its job back without spending an attempt
 * and waits for the tier with backoff (log-upload.retry.ts). Any other ClickHouse error (a statement we got wrong)
 * is a bug and fails the job as bugs do.
 */
export class AnalyticsUnavailableError extends Error {
  constructor(
    /** What failed, safe to show: a network code (ECONNREFUSED), a ClickHouse error name (TOO_MANY_PARTS), NOT_MIGRATED. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`The analytics tier (ClickHouse) is unavailable (${code}).`, options);
    this.name = 'AnalyticsUnavailableError';
  }
}

/** Node's and undici's codes for a connection that failed or went away. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  // chDB's: its session could not open, or was closed under the statement.
  'CHDB_CONNECTION',
  'CHDB_CLOSED',
]);

/**
 * ClickHouse server errors that another try of the same statement can get past (src/Common/ErrorCodes.cpp):
 * load, limits, timeouts, a replica or disk in trouble. Keyed by the error's name, which the client reports as `type`.
 */
const TRANSIENT_CLICKHOUSE = new Set([
  'TIMEOUT_EXCEEDED',
  'READONLY',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'NO_FREE_CONNECTION',
  'SOCKET_TIMEOUT',
  'NETWORK_ERROR',
  'MEMORY_LIMIT_EXCEEDED',
  'TABLE_IS_READ_ONLY',
  'NOT_ENOUGH_SPACE',
  'TOO_MANY_PARTS',
  'ABORTED',
  'QUERY_WAS_CANCELLED',
  'UNKNOWN_STATUS_OF_INSERT',
  'ALL_CONNECTION_TRIES_FAILED',
  'KEEPER_EXCEPTION',
  'SERVER_OVERLOADED',
  'CANNOT_ALLOCATE_MEMORY',
]);

/** The same errors by number, for clients that give only the code (a proxy's text, chDB's clickhouseCode). */
const TRANSIENT_CLICKHOUSE_CODES = new Map<number, string>([
  [159, 'TIMEOUT_EXCEEDED'],
  [164, 'READONLY'],
  [202, 'TOO_MANY_SIMULTANEOUS_QUERIES'],
  [203, 'NO_FREE_CONNECTION'],
  [209, 'SOCKET_TIMEOUT'],
  [210, 'NETWORK_ERROR'],
  [236, 'ABORTED'],
  [241, 'MEMORY_LIMIT_EXCEEDED'],
  [242, 'TABLE_IS_READ_ONLY'],
  [243, 'NOT_ENOUGH_SPACE'],
  [252, 'TOO_MANY_PARTS'],
  [279, 'ALL_CONNECTION_TRIES_FAILED'],
  [319, 'UNKNOWN_STATUS_OF_INSERT'],
  [394, 'QUERY_WAS_CANCELLED'],
  [999, 'KEEPER_EXCEPTION'],
  [173, 'CANNOT_ALLOCATE_MEMORY'],
]);

interface ErrorLike {
  code?: unknown;
  type?: unknown;
  clickhouseCode?: unknown;
  message?: unknown;
  cause?: unknown;
}

/**
 * The code that makes `err` a moment of ClickHouse's rather than a bug, or null. Looks through `cause` (the
 * client wraps socket errors, chDB wraps its own).
 */
export function analyticsUnavailable(err: unknown): string | null {
  for (let e = err as ErrorLike | null | undefined, depth = 0; e && typeof e === 'object' && depth < 4; depth++, e = e.cause as ErrorLike | undefined) {
    if (e instanceof AnalyticsUnavailableError) return e.code;
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code)) return code;
    if (typeof e.type === 'string' && TRANSIENT_CLICKHOUSE.has(e.type)) return e.type;
    const numeric = typeof e.clickhouseCode === 'number' ? e.clickhouseCode : /^\d+$/.test(code) ? Number(code) : NaN;
    const named = TRANSIENT_CLICKHOUSE_CODES.get(numeric);
    if (named) return named;
    const message = typeof e.message === 'string' ? e.message : '';
    // @clickhouse/client's own request timeout (request_timeout), and a socket that closed under a request.
    if (message === 'Timeout error.') return 'TIMEOUT';
    if (/socket hang up/i.test(message)) return 'ECONNRESET';
    // A proxy or load balancer in front of the server answering for it (the client puts the body in the message).
    if (/^(502|503|504)\b|\b(Bad Gateway|Service Unavailable|Gateway Time-?out)\b/.test(message)) return 'HTTP_UNAVAILABLE';
  }
  return null;
}

/**
 * The code of the AnalyticsUnavailableError that `err` is (or is caused by), or null. Only errors our ClickHouse
 * calls raised (onAnalytics) count: a SQL connection refused is the database's, not the tier's.
 */
export function analyticsUnavailableCause(err: unknown): string | null {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++, e = (e as { cause?: unknown }).cause) {
    if (e instanceof AnalyticsUnavailableError) return e.code;
  }
  return null;
}

/** Runs a ClickHouse call; a transient failure comes out as AnalyticsUnavailableError, anything else as it was. */
export async function onAnalytics<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const code = analyticsUnavailable(err);
    if (code && !(err instanceof AnalyticsUnavailableError)) throw new AnalyticsUnavailableError(code, { cause: err });
    throw err;
  }
}
