import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { createConnection } from 'mysql2/promise';
import { DatabaseConfig } from '../../src/config/config';
import { createDataSource, detectFlavor } from '../../src/db/data-source';

export type Driver = 'sqlite' | 'mysql';

/** SQLite always; MySQL when TEST_MYSQL_URL is set (CI sets it and fails if the server is unreachable). */
export const drivers: Driver[] = process.env.TEST_MYSQL_URL ? ['sqlite', 'mysql'] : ['sqlite'];

export interface TestDatabase {
  config: DatabaseConfig;
  drop(): Promise<void>;
}

/** A fresh, empty database per test file: an in-memory SQLite, or a throwaway MySQL schema. */
export async function createTestDatabase(driver: Driver): Promise<TestDatabase> {
  if (driver === 'sqlite') {
    return { config: { type: 'sqlite', file: ':memory:', url: undefined }, drop: async () => undefined };
  }
  const base = new URL(process.env.TEST_MYSQL_URL as string);
  const name = `pcd_t_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = await createConnection({ uri: base.toString() });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    config: await detectFlavor({ type: 'mysql', url: url.toString(), file: undefined }),
    drop: async () => {
      const conn = await createConnection({ uri: base.toString() });
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

export async function migratedDataSource(driver: Driver): Promise<{ dataSource: DataSource; drop: () => Promise<void> }> {
  const db = await createTestDatabase(driver);
  const dataSource = createDataSource(db.config);
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  return {
    dataSource,
    drop: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
    },
  };
}
