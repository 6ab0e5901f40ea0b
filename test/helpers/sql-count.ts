import { DataSource } from 'typeorm';

/** Runs `fn` and returns how many SQL statements the data source logged meanwhile (its logger is wrapped, then restored). */
export async function countStatements(dataSource: DataSource, fn: () => Promise<unknown>): Promise<number> {
  let statements = 0;
  const logger = dataSource.logger;
  const counting = Object.create(logger);
  counting.logQuery = (...args: unknown[]) => {
    statements++;
    return (logger.logQuery as (...a: unknown[]) => unknown).apply(logger, args);
  };
  (dataSource as unknown as { logger: unknown }).logger = counting;
  try {
    await fn();
  } finally {
    (dataSource as unknown as { logger: unknown }).logger = logger;
  }
  return statements;
}
