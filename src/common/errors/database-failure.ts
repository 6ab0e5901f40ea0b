import { transientDbError } from './db-errors';

/**
 * A request that failed because of the database's state, not the request: clients are told to come back
 * (HTTP 503/507 with Retry-After) instead of getting a masked 500. Nothing of the request was stored.
 */
export type DatabaseFailureKind = 'STORAGE_FULL' | 'UNAVAILABLE' | 'CONFLICT';

export interface DatabaseFailure {
  kind: DatabaseFailureKind;
  status: number;
  /** GraphQL `extensions.code`, and the `code` of the HTTP routes' JSON. */
  code: string;
  retryAfterSeconds: number;
  message: string;
}

/** The one mapping of each kind to what clients see, shared by GraphQL, the form post and the other routes. */
export const DATABASE_FAILURES: Record<DatabaseFailureKind, DatabaseFailure> = {
  STORAGE_FULL: {
    kind: 'STORAGE_FULL',
    status: 507,
    code: 'INSUFFICIENT_STORAGE',
    retryAfterSeconds: 60,
    message: "The server's storage is full; nothing was stored. Send it again once space has been freed.",
  },
  UNAVAILABLE: {
    kind: 'UNAVAILABLE',
    status: 503,
    code: 'SERVICE_UNAVAILABLE',
    retryAfterSeconds: 5,
    message: 'The database is unavailable; nothing was stored. Try again shortly.',
  },
  // The database is up: the request's transaction met another at the same moment (a deadlock, or a row lock wait
  // that timed out) and was rolled back. The same code and status as UNAVAILABLE (clients retry either), a message
  // that says what happened. SQLite busy stays UNAVAILABLE: the whole file stayed locked past the busy timeout.
  CONFLICT: {
    kind: 'CONFLICT',
    status: 503,
    code: 'SERVICE_UNAVAILABLE',
    retryAfterSeconds: 1,
    message: 'The request met another change made at the same moment (a deadlock or a lock wait) and its change was rolled back. Send it again.',
  },
};

const CONFLICTS = new Set(['deadlock', 'lock-timeout']);

// SQLite's file cannot be read or written (I/O error, file gone, opened read-only) or the handle was closed;
// and an error this code raises when SQLite dropped a transaction under it (sqlite-serializer.ts).
const SQLITE_UNUSABLE = /^SQLITE_(IOERR|CANTOPEN|READONLY|PROTOCOL|NOMEM|TRANSACTION_LOST)(_|$)/;

interface ErrorLike {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
  driverError?: ErrorLike;
  cause?: unknown;
}

/** Which database failure `err` is (looking through TypeORM's `driverError` and `cause`), or null for any other error. */
export function databaseFailureOf(err: unknown): DatabaseFailure | null {
  const transient = transientDbError(err);
  if (transient?.kind === 'storage-full') return DATABASE_FAILURES.STORAGE_FULL;
  let unavailable = transient !== null;
  let conflict = transient !== null && CONFLICTS.has(transient.kind);
  for (let e = err as ErrorLike | null | undefined, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (SQLITE_UNUSABLE.test(code) || message === 'The database connection is not open') {
      unavailable = true;
      conflict = false;
    }
    e = e.driverError ?? (e.cause as ErrorLike | undefined);
  }
  if (!unavailable) return null;
  return conflict ? DATABASE_FAILURES.CONFLICT : DATABASE_FAILURES.UNAVAILABLE;
}
