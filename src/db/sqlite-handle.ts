import type Database from 'better-sqlite3';
import type { DataSource } from 'typeorm';

/**
 * better-sqlite3's handle behind TypeORM's one SQLite connection (raw row arrays, pragmas, the transaction
 * state TypeORM does not track); null on MySQL and while the DataSource is not initialized.
 */
export function sqliteHandle(dataSource: DataSource): Database.Database | null {
  if (dataSource.options.type !== 'better-sqlite3' || !dataSource.isInitialized) return null;
  return (dataSource.driver as unknown as { databaseConnection?: Database.Database }).databaseConnection ?? null;
}
