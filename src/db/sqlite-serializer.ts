import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource } from 'typeorm';
import { sqliteHandle } from './sqlite-handle';

/** TypeORM's own bookkeeping on its one SQLite query runner. */
interface RunnerState {
  isTransactionActive: boolean;
  transactionDepth: number;
}

const immediate = new AsyncLocalStorage<boolean>();

/**
 * Runs `work` with its SQLite transactions begun IMMEDIATE: they take the write lock at BEGIN, waiting out the busy
 * timeout while another process writes the file (the CLI's import, a second server). A deferred BEGIN reads first and
 * asks for the lock at its first write; when another process has committed in between, SQLite fails that write at
 * once (SQLITE_BUSY, the snapshot is stale) without waiting. For transactions that will write (a feed import); the
 * others stay deferred, since an IMMEDIATE BEGIN also waits, holding the event loop (better-sqlite3 waits
 * synchronously), where a transaction that only reads would not have waited at all. No effect on MySQL.
 */
export function beginImmediate<T>(work: () => Promise<T>): Promise<T> {
  return immediate.run(true, work);
}

/**
 * SQLite ended a transaction by itself (it rolls back the whole transaction on SQLITE_FULL, IOERR, NOMEM and
 * some BUSY errors) while the caller was still inside it: what follows must not run in autocommit mode as if
 * it were part of that transaction, and what came before is gone.
 */
export class SqliteTransactionLostError extends Error {
  readonly code = 'SQLITE_TRANSACTION_LOST';
  constructor(message = 'SQLite rolled the transaction back after a failed statement; nothing of it was stored.') {
    super(message);
  }
}

/**
 * TypeORM's better-sqlite3 driver shares ONE query runner (one connection) between every caller, and two
 * `dataSource.transaction()` calls that overlap in time both issue BEGIN on it ("cannot start a transaction
 * within a transaction"), or one caller's statements land inside another's transaction.
 *
 * This makes transactions take turns: a transaction holds a process-wide lock for its duration (async
 * context tells its own statements from others'), and statements from outside it wait until it ends.
 * Statements outside any transaction run as they come. Re-entrant: a transaction inside a transaction of the
 * same call chain runs as TypeORM's savepoint. (MySQL has a pool and real concurrent transactions; this is
 * installed for SQLite only.)
 *
 * It also owns the connection's state at the end of each outermost transaction. When COMMIT fails with
 * SQLITE_FULL, SQLite has already rolled back; TypeORM's ROLLBACK then fails ("no transaction is active"),
 * is swallowed, and its runner is left believing it is one level deep: every later transaction became a
 * SAVEPOINT whose RELEASE committed nothing, so uploads were acknowledged but never stored. Here, after every
 * outermost transaction the handle must be outside a transaction (rolled back if not, and a "success" that
 * left it open is an error: nothing is acknowledged that was not committed) and the runner is reset to depth 0.
 */
export function serializeSqliteTransactions(dataSource: DataSource): void {
  const context = new AsyncLocalStorage<number>();
  let owner: number | null = null;
  /** The owner's BEGIN went through: from then on its statements must find the handle in a transaction. */
  let begun = false;
  let inflight = 0;
  let nextToken = 1;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const wait = () => new Promise<void>((resolve) => waiters.push(resolve));
  const handle = () => sqliteHandle(dataSource);

  const runner = dataSource.driver.createQueryRunner('master');
  const state = runner as unknown as RunnerState;
  /** Leaves the connection outside any transaction, whatever SQLite or TypeORM did. True when it had to roll back. */
  const settle = (): boolean => {
    state.transactionDepth = 0;
    state.isTransactionActive = false;
    const db = handle();
    if (!db?.inTransaction) return false;
    try {
      db.exec('ROLLBACK');
    } catch {
      // Only a closed handle throws here, and a closed handle holds no transaction.
    }
    return true;
  };

  const query = runner.query.bind(runner) as (...args: unknown[]) => Promise<unknown>;
  (runner as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
    const mine = context.getStore();
    if (owner !== null && owner === mine) {
      const sql = String(args[0]);
      if (begun && !handle()?.inTransaction && !/^\s*ROLLBACK\b/i.test(sql)) throw new SqliteTransactionLostError();
      if (immediate.getStore() === true && /^\s*BEGIN TRANSACTION\s*$/i.test(sql)) args[0] = 'BEGIN IMMEDIATE TRANSACTION';
      const result = await query(...args);
      if (/^\s*BEGIN\b/i.test(sql)) begun = true;
      return result;
    }
    while (owner !== null) await wait();
    inflight++;
    try {
      return await query(...args);
    } finally {
      inflight--;
      if (inflight === 0) wake();
    }
  };

  const manager = dataSource.manager;
  const transaction = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
  (manager as unknown as { transaction: (...args: unknown[]) => Promise<unknown> }).transaction = async (...args: unknown[]) => {
    const mine = context.getStore();
    if (owner !== null && owner === mine) return transaction(...args);
    const token = nextToken++;
    while (owner !== null || inflight > 0) await wait();
    owner = token;
    begun = false;
    try {
      let result: unknown;
      try {
        result = await context.run(token, () => transaction(...args));
      } catch (err) {
        settle();
        throw err;
      }
      if (settle()) throw new SqliteTransactionLostError('The transaction was still open after it returned: it was rolled back, nothing of it was stored.');
      return result;
    } finally {
      owner = null;
      begun = false;
      wake();
    }
  };
}
