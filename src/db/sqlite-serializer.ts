import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource } from 'typeorm';

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
 */
export function serializeSqliteTransactions(dataSource: DataSource): void {
  const context = new AsyncLocalStorage<number>();
  let owner: number | null = null;
  let inflight = 0;
  let nextToken = 1;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const wait = () => new Promise<void>((resolve) => waiters.push(resolve));

  const runner = dataSource.driver.createQueryRunner('master');
  const query = runner.query.bind(runner) as (...args: unknown[]) => Promise<unknown>;
  (runner as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
    const mine = context.getStore();
    if (owner !== null && owner === mine) return query(...args);
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
    try {
      return await context.run(token, () => transaction(...args));
    } finally {
      owner = null;
      wake();
    }
  };
}
