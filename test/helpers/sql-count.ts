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
