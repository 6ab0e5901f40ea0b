import { QueryFailedError } from 'typeorm';
import { describeTransient, transientDbError } from '../../src/common/errors/db-errors';
import { retryDelayMs } from '../../src/modules/log-upload/log-upload.retry';

const err = (fields: Record<string, unknown>, message = 'x') => Object.assign(new Error(message), fields);
const wrapped = (driverError: Error) => new QueryFailedError('INSERT INTO flow_hit ...', [], driverError);

describe('transientDbError: which database errors another try can get past', () => {
  it.each([
    // Lost connections: mysql2, the network, the server ending it.
    ['mysql2 lost connection', err({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }), 'connection'],
    ['socket reset', err({ code: 'ECONNRESET', errno: -104 }), 'connection'],
    ['server refused (restarting)', err({ code: 'ECONNREFUSED' }), 'connection'],
    ['connect timeout', err({ code: 'ETIMEDOUT' }), 'connection'],
    ['broken pipe', err({ code: 'EPIPE' }), 'connection'],
    ['server shutting down', err({ code: 'ER_SERVER_SHUTDOWN', errno: 1053 }), 'connection'],
    ['MariaDB KILL CONNECTION', err({ code: 'ER_CONNECTION_KILLED', errno: 1927 }), 'connection'],
    ['KILL QUERY', err({ code: 'ER_QUERY_INTERRUPTED', errno: 1317 }), 'connection'],
    ['too many connections', err({ code: 'ER_CON_COUNT_ERROR', errno: 1040 }), 'connection'],
    ['closed connection, no code', err({ fatal: true }, "Can't add new command when connection is in closed state"), 'connection'],
    // Lock conflicts.
    ['deadlock', err({ code: 'ER_LOCK_DEADLOCK', errno: 1213 }), 'deadlock'],
    ['lock wait timeout', err({ code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205 }), 'lock-timeout'],
    // A failover: the old primary turned read-only.
    [
      '--read-only (MariaDB)',
      err(
        { code: 'ER_OPTION_PREVENTS_STATEMENT', errno: 1290 },
        'The MariaDB server is running with the --read-only option so it cannot execute this statement',
      ),
      'read-only',
    ],
    [
      'super_read_only (MySQL)',
      err({ code: 'ER_OPTION_PREVENTS_STATEMENT' }, 'The MySQL server is running with the --super-read-only option so it cannot execute this statement'),
      'read-only',
    ],
    ['read-only mode', err({ code: 'ER_READ_ONLY_MODE', errno: 1836 }), 'read-only'],
    // SQLite: another writer holds the file.
    ['SQLite busy', err({ code: 'SQLITE_BUSY' }, 'database is locked'), 'busy'],
    ['SQLite busy snapshot', err({ code: 'SQLITE_BUSY_SNAPSHOT' }), 'busy'],
    ['SQLite locked', err({ code: 'SQLITE_LOCKED' }), 'busy'],
    ['SQLite locked (shared cache)', err({ code: 'SQLITE_LOCKED_SHAREDCACHE' }), 'busy'],
    // A full disk or tablespace: the write goes through once space is freed (the job waits without spending attempts).
    ['SQLite disk full', err({ code: 'SQLITE_FULL' }, 'database or disk is full'), 'storage-full'],
    ['InnoDB table full', err({ code: 'ER_RECORD_FILE_FULL', errno: 1114 }), 'storage-full'],
    ['MySQL disk full', err({ code: 'ER_DISK_FULL', errno: 1021 }), 'storage-full'],
    [
      'storage engine errno 28',
      err({ code: 'ER_GET_ERRNO', errno: 1030 }, 'Got error 28 "No space left on device" from storage engine InnoDB'),
      'storage-full',
    ],
    // Through TypeORM's wrapper and a cause.
    ['QueryFailedError over a deadlock', wrapped(err({ code: 'ER_LOCK_DEADLOCK', errno: 1213 })), 'deadlock'],
    ['cause chain', new Error('finishing failed', { cause: err({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }) }), 'connection'],
  ])('%s is transient (%s)', (_name, error, kind) => {
    expect(transientDbError(error)).toMatchObject({ kind });
  });

  it.each([
    // Errors of the statement, the data or the settings: the same again would fail again.
    ['duplicate key', err({ code: 'ER_DUP_ENTRY', errno: 1062 })],
    ['SQL syntax', err({ code: 'ER_PARSE_ERROR', errno: 1064 })],
    ['missing table', err({ code: 'ER_NO_SUCH_TABLE', errno: 1146 })],
    ['foreign key (device deleted meanwhile)', err({ code: 'ER_NO_REFERENCED_ROW_2', errno: 1452 })],
    ['data too long', wrapped(err({ code: 'ER_DATA_TOO_LONG', errno: 1406 }))],
    ['wrong password (fatal, but a setting)', err({ code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, fatal: true })],
    [
      'another option than read-only',
      err({ code: 'ER_OPTION_PREVENTS_STATEMENT' }, 'The MySQL server is running with the --secure-file-priv option so it cannot execute this statement'),
    ],
    ['SQLite constraint', err({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })],
    ['SQLite corrupt', err({ code: 'SQLITE_CORRUPT' })],
    ['storage engine, another errno', err({ code: 'ER_GET_ERRNO', errno: 1030 }, 'Got error 122 from storage engine')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['not an error', 'ER_LOCK_DEADLOCK'],
    ['nothing', null],
  ])('%s is not transient', (_name, error) => {
    expect(transientDbError(error)).toBeNull();
  });

  it('describes a transient error by kind and code, never by the driver message (SQL)', () => {
    const t = transientDbError(wrapped(err({ code: 'ER_LOCK_DEADLOCK' }, 'Deadlock found when trying to get lock; INSERT INTO `flow_hit` ...')))!;
    expect(describeTransient(t)).toBe('a deadlock with another transaction (ER_LOCK_DEADLOCK)');
  });
});

describe('retryDelayMs: exponential backoff with equal jitter', () => {
  it.each([
    [1, 0, 500],
    [1, 0.999999, 1000],
    [2, 0, 1000],
    [3, 0.5, 3000],
    [4, 1 - 1e-9, 8000],
    // Capped.
    [10, 0, 30_000],
  ])('retry %d with random %d waits %d ms (base 1 s)', (retry, random, ms) => {
    expect(retryDelayMs(retry, { baseMs: 1_000, random: () => random })).toBe(ms);
  });
});
