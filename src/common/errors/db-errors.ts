import type { DataSource, EntityManager } from 'typeorm';
import { failure, Outcome, userError, UserErrorCode } from './user-error';

/** True when a write failed on a unique index (a race the service's own check could not see). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } } | null;
  const code = e?.driverError?.code ?? e?.code;
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Why a database error is worth another try: the statement was fine, the moment was not. */
export type TransientKind = 'connection' | 'deadlock' | 'lock-timeout' | 'read-only' | 'busy' | 'storage-full';

export interface TransientDbError {
  kind: TransientKind;
  /** The driver's code (ER_LOCK_DEADLOCK, PROTOCOL_CONNECTION_LOST, SQLITE_BUSY ...); safe to show. */
  code: string;
}

const TRANSIENT_CODES: Record<string, TransientKind> = {
  // The connection went away: network (Node), mysql2's own, or the server ending it (KILL, shutdown, limits).
  PROTOCOL_CONNECTION_LOST: 'connection',
  PROTOCOL_SEQUENCE_TIMEOUT: 'connection',
  ECONNRESET: 'connection',
  ECONNREFUSED: 'connection',
  ECONNABORTED: 'connection',
  EPIPE: 'connection',
  ETIMEDOUT: 'connection',
  EHOSTUNREACH: 'connection',
  ENETUNREACH: 'connection',
  EAI_AGAIN: 'connection',
  ER_SERVER_SHUTDOWN: 'connection',
  ER_CONNECTION_KILLED: 'connection',
  ER_QUERY_INTERRUPTED: 'connection',
  ER_CON_COUNT_ERROR: 'connection',
  ER_CLIENT_INTERACTION_TIMEOUT: 'connection',
  ER_LOCK_DEADLOCK: 'deadlock',
  ER_LOCK_WAIT_TIMEOUT: 'lock-timeout',
  // MySQL's super_read_only / innodb_read_only (a replica promoted late, a primary demoted).
  ER_READ_ONLY_MODE: 'read-only',
  // The disk or tablespace is full: the same write goes through once an operator frees space.
  SQLITE_FULL: 'storage-full',
  ER_RECORD_FILE_FULL: 'storage-full',
  ER_DISK_FULL: 'storage-full',
  ENOSPC: 'storage-full',
};

/**
 * The one definition of "transient" for database errors: errors that another try of the same work can get past
 * (lost connection, deadlock, lock wait timeout, a server turned read-only by a failover, SQLite's busy/locked),
 * as opposed to errors of the statement or the data, which would fail again. Looks through TypeORM's wrapper
 * (`driverError`) and `cause`. Null when the error is not transient.
 */
export function transientDbError(err: unknown): TransientDbError | null {
  for (let e = err as DbErrorLike | null | undefined, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const found = classify(e);
    if (found) return found;
    e = e.driverError ?? (e.cause as DbErrorLike | undefined);
  }
  return null;
}

interface DbErrorLike {
  code?: unknown;
  message?: unknown;
  fatal?: unknown;
  driverError?: DbErrorLike;
  cause?: unknown;
}

function classify(e: DbErrorLike): TransientDbError | null {
  const code = typeof e.code === 'string' ? e.code : '';
  const kind = TRANSIENT_CODES[code];
  if (kind) return { kind, code };
  // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_LOCKED_SHAREDCACHE ...: another writer holds the file.
  if (/^SQLITE_(BUSY|LOCKED)(_|$)/.test(code)) return { kind: 'busy', code };
  // "Got error 28 from storage engine": the OS's ENOSPC under MySQL.
  if (code === 'ER_GET_ERRNO' && /\berror 28\b/.test(String(e.message ?? ''))) return { kind: 'storage-full', code };
  // "running with the --read-only option": the same code also names options no statement of ours meets.
  if (code === 'ER_OPTION_PREVENTS_STATEMENT' && /read[-_ ]only/i.test(String(e.message ?? ''))) return { kind: 'read-only', code };
  // mysql2 marks errors that ended the connection `fatal`; without a server code (ER_ACCESS_DENIED... are
  // settings, not moments) that is the socket: "Can't add new command when connection is in closed state".
  if (e.fatal === true && !code.startsWith('ER_')) return { kind: 'connection', code: code || 'PROTOCOL_CONNECTION_CLOSED' };
  return null;
}

const TRANSIENT_WORDS: Record<TransientKind, string> = {
  connection: 'the connection to the database was lost',
  deadlock: 'a deadlock with another transaction',
  'lock-timeout': 'a lock wait timeout',
  'read-only': 'the database was read-only (failover)',
  busy: 'the database was busy (locked by another writer)',
  'storage-full': "the database's storage was full",
};

/** A transient error in words a client may read: the kind and the driver's code, never its message (SQL). */
export function describeTransient(t: TransientDbError): string {
  return `${TRANSIENT_WORDS[t.kind]} (${t.code})`;
}

/**
 * Runs a write in a transaction; a unique-index violation (a race the service's own check could not see,
 * such as two creates with one name at once) comes back as a TAKEN user error instead of a masked bug.
 */
export async function transactionWithUniqueCheck<T>(
  dataSource: DataSource,
  work: (em: EntityManager) => Promise<Outcome<T>>,
  field: string[],
  message: string,
): Promise<Outcome<T>> {
  try {
    return await dataSource.transaction(work);
  } catch (err) {
    if (isUniqueViolation(err)) return failure(userError(UserErrorCode.TAKEN, field, message));
    throw err;
  }
}
