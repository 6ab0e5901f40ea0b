import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../../src/db/data-source';
import { beginImmediate } from '../../../src/db/sqlite-serializer';
import { createServices } from '../../../src/app/services';
import { loadConfig } from '../../../src/config/config';
import { ImportMode, IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';

/**
 * Another process's writer, on a thread of its own (better-sqlite3 waits for a lock synchronously: the event loop here
 * could not run another connection's COMMIT while this one waits): takes the write lock, runs `sql`, holds it for
 * `ms`, then commits. Resolves once the lock is held; `committed` once the thread is done.
 */
async function holdWriteLock(file: string, sql: string, ms: number): Promise<{ committed: Promise<unknown> }> {
  const holder = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const Database = require(workerData.module);
     const db = new Database(workerData.file);
     db.exec('BEGIN IMMEDIATE');
     db.exec(workerData.sql);
     parentPort.postMessage('locked');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.ms);
     db.exec('COMMIT');
     db.close();`,
    { eval: true, workerData: { module: require.resolve('better-sqlite3'), file, sql, ms } },
  );
  const committed = new Promise((resolve) => holder.once('exit', resolve));
  await new Promise((resolve) => holder.once('message', resolve));
  return { committed };
}

/**
 * Another process writing the same SQLite file (`pcap-defense ioc import` beside a server, a second server): a
 * transaction that read before the other committed and then wrote failed at once with SQLITE_BUSY (its snapshot was
 * stale; SQLite does not wait then), and a feed import through the server answered 503. Transactions run under
 * beginImmediate (feed imports) take the write lock at BEGIN, waiting out the other writer within the busy timeout;
 * the others stay deferred (a transaction that only reads never waits for a writer).
 */
describe('SQLite: transactions against another process writing the file', () => {
  let dir: string;
  let ds: DataSource;
  let other: Database.Database;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-lock-'));
    const file = path.join(dir, 'db.sqlite');
    ds = createDataSource({ type: 'sqlite', file, url: undefined } as Parameters<typeof createDataSource>[0]);
    await ds.initialize();
    await ds.query('CREATE TABLE t (a INTEGER)');
    // The other process: its own connection to the file.
    other = new Database(file);
    other.pragma('busy_timeout = 0');
  });
  afterEach(async () => {
    other.close();
    await ds.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a transaction that reads, meets another writer committing, then writes, commits', async () => {
    await beginImmediate(() =>
      ds.transaction(async (em) => {
        const before = await em.query('SELECT COUNT(*) AS n FROM t');
        // The other writer commits between this transaction's read and its write. With the write lock held since
        // BEGIN, it cannot: it is told the file is busy and tries later, as a process waiting its turn does.
        let othersWrite: unknown = null;
        try {
          other.exec('INSERT INTO t VALUES (2)');
        } catch (err) {
          othersWrite = (err as { code?: string }).code;
        }
        expect(othersWrite).toBe('SQLITE_BUSY');
        await em.query('INSERT INTO t VALUES (?)', [Number(before[0].n) + 1]);
      }),
    );
    other.exec('INSERT INTO t VALUES (2)');
    expect(other.prepare('SELECT a FROM t ORDER BY rowid').all()).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('a transaction begun while another process holds the write lock waits for it, then commits', async () => {
    const holder = await holdWriteLock(path.join(dir, 'db.sqlite'), 'INSERT INTO t VALUES (1)', 400);
    const started = Date.now();
    await beginImmediate(() =>
      ds.transaction(async (em) => {
        const [{ n }] = await em.query('SELECT COUNT(*) AS n FROM t');
        await em.query('INSERT INTO t VALUES (?)', [Number(n) + 1]);
      }),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(await ds.query('SELECT a FROM t ORDER BY rowid')).toEqual([{ a: 1 }, { a: 2 }]);
    await holder.committed;
  });

  it('other transactions stay deferred: one that only reads does not wait for another process writing', async () => {
    other.exec('BEGIN IMMEDIATE');
    other.exec('INSERT INTO t VALUES (9)');
    try {
      const started = Date.now();
      const [{ n }] = await ds.transaction((em) => em.query('SELECT COUNT(*) AS n FROM t'));
      expect(Number(n)).toBe(0);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      other.exec('ROLLBACK');
    }
  });
});

describe('SQLite: a feed import while another process writes the file', () => {
  it('waits for the other writer and imports, where its first write failed at once before', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-lock-import-'));
    const file = path.join(dir, 'db.sqlite');
    const dbConfig = { type: 'sqlite', file, url: undefined } as Parameters<typeof createDataSource>[0];
    const ds = createDataSource(dbConfig);
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    try {
      const services = createServices(ds, { ...loadConfig({ NODE_ENV: 'test' }), database: dbConfig });
      const account = await services.accounts.createAccount('lock');
      if (!account.ok) throw new Error('account');
      const list = await services.iocLists.create(account.value.id, { name: 'l', kind: IocListKind.BLOCK, severity: 3, category: IocCategory.OTHER });
      if (!list.ok) throw new Error('list');
      const feed = path.join(dir, 'feed.txt');
      fs.writeFileSync(feed, '198.51.100.1\n198.51.100.2\n');
      // Another process holds the write lock when the import begins, and commits 400 ms later.
      const holder = await holdWriteLock(file, 'UPDATE account SET name = name', 400);
      const r = await services.feedImport.importFile(account.value.id, list.value.id, { path: feed, bytes: fs.statSync(feed).size }, ImportMode.APPEND);
      expect(r.ok && r.value.added).toBe(2);
      await holder.committed;
    } finally {
      await ds.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
