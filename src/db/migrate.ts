import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { dialectOf } from './bulk';

/**
 * The MySQL/MariaDB named lock that serializes migrations. Named locks are server-wide, so the name carries the
 * database's: two installs on one server migrate independently. Freed when its connection closes.
 */
export function migrationLockName(database: string): string {
  const name = `pcap-defense:migrations:${database}`;
  // MySQL refuses lock names over 64 characters.
  return name.length <= 64 ? name : `pcap-defense:migrations:${crypto.createHash('sha256').update(database).digest('hex').slice(0, 32)}`;
}
/** How long a process waits for another one's migrations before it gives up. */
export const MIGRATION_LOCK_TIMEOUT_MS = 300_000;

/**
 * Runs the pending migrations and then `afterwards` (the first account, at start) while holding the migration
 * lock, so that any number of processes starting at once on one database migrate it once: the first takes the
 * lock and migrates, the others wait, then find nothing pending (and the account made). Without it each process
 * reads the same "pending" list and all but one fail on "table already exists".
 */
export async function migrate<T = void>(dataSource: DataSource, afterwards?: () => Promise<T>, timeoutMs = MIGRATION_LOCK_TIMEOUT_MS): Promise<T | undefined> {
  return withMigrationLock(dataSource, timeoutMs, async () => {
    await dataSource.runMigrations({ transaction: 'each' });
    return afterwards?.();
  });
}

async function withMigrationLock<T>(dataSource: DataSource, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  if (dialectOf(dataSource.manager) === 'mysql') return withMysqlLock(dataSource, timeoutMs, work);
  const file = String(dataSource.options.database);
  // An in-memory database belongs to one process.
  if (file === ':memory:' || file === '') return work();
  return withSqliteLock(`${file}-migrations.lock`, timeoutMs, work);
}

/** GET_LOCK on one dedicated connection, held for the whole of `work` (the migrations run on others). */
async function withMysqlLock<T>(dataSource: DataSource, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const runner = dataSource.createQueryRunner('master');
  try {
    await runner.connect();
    const [{ db }] = (await runner.query('SELECT DATABASE() AS db')) as Array<{ db: string }>;
    const lockName = migrationLockName(db);
    const [row] = (await runner.query('SELECT GET_LOCK(?, ?) AS got', [lockName, Math.ceil(timeoutMs / 1000)])) as Array<{ got: number | string | null }>;
    if (row?.got == null || Number(row.got) !== 1) {
      throw new Error(`Another process held the migration lock (${lockName}) for more than ${Math.ceil(timeoutMs / 1000)} s; is one stuck?`);
    }
    try {
      return await work();
    } finally {
      await runner.query('SELECT RELEASE_LOCK(?)', [lockName]).catch(() => undefined);
    }
  } finally {
    await runner.release();
  }
}

/**
 * An exclusive transaction on a side file: SQLite's own file lock, which the OS frees when the process dies
 * (no stale lock file to clean up). Not on the database file itself, whose write lock the migrations need.
 * Polled without a busy timeout, so the event loop is never blocked while another process migrates.
 */
async function withSqliteLock<T>(lockFile: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const lock = new Database(lockFile, { timeout: 0 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        lock.exec('BEGIN EXCLUSIVE');
        break;
      } catch (err) {
        if (!/^SQLITE_BUSY/.test(String((err as { code?: string }).code))) throw err;
        if (Date.now() > deadline)
          throw new Error(`Another process held the migration lock (${lockFile}) for more than ${Math.ceil(timeoutMs / 1000)} s; is one stuck?`, {
            cause: err,
          });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    try {
      return await work();
    } finally {
      lock.exec('ROLLBACK');
    }
  } finally {
    lock.close();
  }
}
