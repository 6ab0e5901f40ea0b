import type { DataSource, EntityManager } from 'typeorm';
import { failure, Outcome, userError, UserErrorCode } from './user-error';

/** True when a write failed on a unique index (a race the service's own check could not see). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; driverError?: { code?: string } } | null;
  const code = e?.driverError?.code ?? e?.code;
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
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
