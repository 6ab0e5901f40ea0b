import path from 'node:path';
import fs from 'node:fs';
import { DataSource, DataSourceOptions } from 'typeorm';
import { createConnection } from 'mysql2/promise';
import { DatabaseConfig } from '../config/config';
import { retryWhenBusy } from './retry-when-busy';
import { SnakeNamingStrategy } from './naming';
import { entities } from './entities';
import { migrations } from './migrations';
import { serializeSqliteTransactions } from './sqlite-serializer';

/** One place that knows how to reach either database; main, ormconfig.ts and the tests all call it. */
export function dataSourceOptions(db: DatabaseConfig): DataSourceOptions {
  const common = {
    entities,
    migrations,
    migrationsRun: false,
    synchronize: false,
    namingStrategy: new SnakeNamingStrategy(),
    logging: false as const,
  };
  if (db.type === 'sqlite') {
    if (db.file !== ':memory:') fs.mkdirSync(path.dirname(db.file), { recursive: true });
    return {
      ...common,
      type: 'better-sqlite3',
      database: db.file,
      // WAL (report reads run while the worker writes hits) is switched on below, not by TypeORM, which asks once.
      enableWAL: false,
      prepareDatabase: async (handle: { pragma(sql: string): unknown }) => {
        handle.pragma('busy_timeout = 5000');
        // WAL's default here (NORMAL) syncs only at checkpoints: a commit, and so an acknowledged upload, could be
        // lost to a power cut. FULL syncs the WAL at every commit.
        handle.pragma('synchronous = FULL');
        // 64 MiB page cache (default 2 MiB): million-entry lists insert and load with far fewer page faults.
        handle.pragma('cache_size = -65536');
        handle.pragma('foreign_keys = ON');
        // Switching to WAL needs the file to itself: processes starting together on a new file each ask at once
        // (SQLite answers one BUSY without waiting, as waiting could deadlock), or one asks while another holds a
        // transaction longer than the busy timeout (its migrations). Asked again until it goes through.
        if (db.file !== ':memory:') await retryWhenBusy(async () => handle.pragma('journal_mode = WAL'), 8, 100);
      },
    };
  }
  return {
    ...common,
    // TypeORM reads MariaDB's information_schema differently (defaults, FK rules): it must know which it talks to.
    type: db.flavor === 'mariadb' ? 'mariadb' : 'mysql',
    url: db.url,
    // Instants are integers (see columns.ts); 'Z' keeps any DATETIME the driver touches in UTC.
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'utf8mb4_unicode_ci',
    poolSize: 10,
  };
}

export function createDataSource(db: DatabaseConfig): DataSource {
  const dataSource = new DataSource(dataSourceOptions(db));
  if (db.type === 'sqlite') {
    const initialize = dataSource.initialize.bind(dataSource);
    dataSource.initialize = async () => {
      await initialize();
      serializeSqliteTransactions(dataSource);
      return dataSource;
    };
  }
  return dataSource;
}

/** Asks a MySQL-protocol server whether it is MariaDB, so TypeORM gets the right dialect. */
export async function detectFlavor(db: DatabaseConfig): Promise<DatabaseConfig> {
  if (db.type !== 'mysql' || db.flavor) return db;
  const conn = await createConnection({ uri: db.url, connectTimeout: 10_000 });
  try {
    const [rows] = await conn.query('SELECT VERSION() AS v');
    const version = String((rows as Array<{ v: string }>)[0].v);
    return { ...db, flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql' };
  } finally {
    await conn.end();
  }
}
