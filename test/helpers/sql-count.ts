import { DataSource } from 'typeorm';

/** Runs `fn` and returns how many SQL statements the data source logged meanwhile (its logger is wrapped, then restored). */
export async function countStatements(dataSource: DataSource, fn: () => Promise<unknown>): Promise<number> {
  let statements = 0;
  await watchStatements(dataSource, fn, () => statements++);
  return statements;
}

/** Runs `fn`, calling `each` with every SQL statement (and its parameters) the data source logs meanwhile (its logger is wrapped, then restored). */
export async function watchStatements(dataSource: DataSource, fn: () => Promise<unknown>, each: (sql: string, parameters: unknown[]) => void): Promise<void> {
  const logger = dataSource.logger;
  const watching = Object.create(logger);
  watching.logQuery = (...args: unknown[]) => {
    each(String(args[0]), Array.isArray(args[1]) ? args[1] : []);
    return (logger.logQuery as (...a: unknown[]) => unknown).apply(logger, args);
  };
  (dataSource as unknown as { logger: unknown }).logger = watching;
  try {
    await fn();
  } finally {
    (dataSource as unknown as { logger: unknown }).logger = logger;
  }
}

/**
 * Runs `fn` with the `nth` statement matching `pattern` failing (as a disk or connection error would), on every
 * query runner the data source creates meanwhile (SQLite's one shared runner, or MySQL's pooled ones). Returns how
 * many matching statements were sent.
 */
export async function failingNth(dataSource: DataSource, pattern: RegExp, nth: number, fn: () => Promise<unknown>): Promise<number> {
  const driver = dataSource.driver as unknown as { createQueryRunner: (...a: unknown[]) => { query: (...a: unknown[]) => Promise<unknown> } };
  const create = driver.createQueryRunner.bind(driver);
  let seen = 0;
  driver.createQueryRunner = (...a: unknown[]) => {
    const runner = create(...a);
    const query = runner.query.bind(runner);
    runner.query = async (...q: unknown[]) => {
      if (pattern.test(String(q[0])) && ++seen === nth) throw new Error('injected: disk I/O error');
      return query(...q);
    };
    return runner;
  };
  try {
    await fn();
  } finally {
    driver.createQueryRunner = create;
  }
  return seen;
}
