import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createDataSource } from '../../../src/db/data-source';
import { sqliteHandle } from '../../../src/db/sqlite-handle';

/**
 * A process that opens a new SQLite file switches it to WAL, which needs the file to itself. Three processes
 * starting at once on an empty database (test/reliability/first-start.test.ts) failed on CI with "database is
 * locked" there: SQLite answers BUSY at once where waiting could deadlock, and after the busy timeout (5 s) while
 * another connection holds a transaction (a first start's migrations). The switch is asked again until it goes through.
 */
describe('SQLite: the switch to WAL at start', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-wal-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('waits for a connection that holds the new file past the busy timeout, then switches', async () => {
    const file = path.join(dir, 'new.sqlite');
    const other = new Database(file);
    other.exec('CREATE TABLE t (a INTEGER)');
    // A read transaction in rollback-journal mode: a lock the switch must wait out.
    other.exec('BEGIN');
    other.prepare('SELECT COUNT(*) FROM t').get();
    const released = new Promise<number>((resolve) =>
      setTimeout(() => {
        other.exec('COMMIT');
        resolve(Date.now());
      }, 6_000),
    );
    const ds = createDataSource({ type: 'sqlite', file, url: undefined });
    try {
      await ds.initialize();
      const at = await released;
      expect(Date.now()).toBeGreaterThanOrEqual(at);
      expect(sqliteHandle(ds)!.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(sqliteHandle(ds)!.pragma('foreign_keys', { simple: true })).toBe(1);
    } finally {
      other.close();
      if (ds.isInitialized) await ds.destroy();
    }
  }, 30_000);
});
