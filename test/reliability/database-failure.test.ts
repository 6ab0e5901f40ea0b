import Database from 'better-sqlite3';
import { QueryFailedError } from 'typeorm';
import { databaseFailureOf } from '../../src/common/errors/database-failure';
import { SqliteTransactionLostError } from '../../src/db/sqlite-serializer';

// Which errors tell a client to come back later (507 full, 503 unavailable) and which stay masked 500s.

const wrapped = (code: string, message = 'x', extra: object = {}) =>
  new QueryFailedError('SELECT 1', [], Object.assign(new Error(message), { code, ...extra }));

describe('databaseFailureOf', () => {
  it.each([
    ['SQLite full, as TypeORM wraps it', wrapped('SQLITE_FULL', 'database or disk is full'), 'STORAGE_FULL'],
    ['SQLite full, raw', new Database.SqliteError('database or disk is full', 'SQLITE_FULL'), 'STORAGE_FULL'],
    ['MySQL table full', wrapped('ER_RECORD_FILE_FULL', 'The table is full'), 'STORAGE_FULL'],
    ['MySQL disk full', wrapped('ER_DISK_FULL', 'Disk full'), 'STORAGE_FULL'],
    ['InnoDB errno 28', wrapped('ER_GET_ERRNO', 'Got error 28 "No space left on device" from storage engine'), 'STORAGE_FULL'],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }), 'UNAVAILABLE'],
    ['connection lost', wrapped('PROTOCOL_CONNECTION_LOST'), 'UNAVAILABLE'],
    // The whole file stayed locked past the busy timeout.
    ['SQLite busy', wrapped('SQLITE_BUSY', 'database is locked'), 'UNAVAILABLE'],
    ['SQLite busy snapshot', wrapped('SQLITE_BUSY_SNAPSHOT', 'database is locked'), 'UNAVAILABLE'],
    // The database is up; the transaction met another and was rolled back: said as such, not as an outage.
    ['MySQL deadlock', wrapped('ER_LOCK_DEADLOCK', 'Deadlock found when trying to get lock; try restarting transaction'), 'CONFLICT'],
    ['MySQL lock wait timeout', wrapped('ER_LOCK_WAIT_TIMEOUT', 'Lock wait timeout exceeded; try restarting transaction'), 'CONFLICT'],
    [
      'a deadlock behind a closed connection',
      Object.assign(new TypeError('The database connection is not open'), { cause: wrapped('ER_LOCK_DEADLOCK') }),
      'UNAVAILABLE',
    ],
    ['SQLite I/O error', wrapped('SQLITE_IOERR_WRITE', 'disk I/O error'), 'UNAVAILABLE'],
    ['SQLite read-only file', wrapped('SQLITE_READONLY', 'attempt to write a readonly database'), 'UNAVAILABLE'],
    ['SQLite handle closed', new TypeError('The database connection is not open'), 'UNAVAILABLE'],
    ['SQLite dropped the transaction', new SqliteTransactionLostError(), 'UNAVAILABLE'],
    ['a unique violation', wrapped('SQLITE_CONSTRAINT_UNIQUE'), null],
    ['a syntax error', wrapped('ER_PARSE_ERROR'), null],
    ['any other error', new Error('boom'), null],
    ['not an error', 'boom', null],
  ])('%s', (_name, err, kind) => {
    expect(databaseFailureOf(err)?.kind ?? null).toBe(kind);
  });

  it('answers a conflict as clients retry an outage (503, SERVICE_UNAVAILABLE), with a message that says what happened', () => {
    const conflict = databaseFailureOf(wrapped('ER_LOCK_DEADLOCK'));
    expect(conflict).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: 1 });
    expect(conflict?.message).toMatch(/^The request met another change made at the same moment \(a deadlock or a lock wait\)/);
    expect(conflict?.message).not.toMatch(/unavailable/);
  });
});
