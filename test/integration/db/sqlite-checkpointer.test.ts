import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../../src/db/data-source';
import { sqliteHandle } from '../../../src/db/sqlite-handle';
import { SqliteCheckpointer } from '../../../src/db/sqlite-checkpointer';

/**
 * SQLite's WAL checkpoints on a thread of their own (#14 item 9): the main connection stops checkpointing while
 * the thread runs, the thread moves committed pages into the database file, and a thread that fails or stops gives
 * checkpoints back to the main connection, so the WAL never grows without bound.
 */
const FAULTY = path.resolve(__dirname, '../../helpers/faulty-checkpoint-thread.ts');

describe('SQLite checkpoint thread', () => {
  let dir: string;
  let file: string;
  let ds: DataSource;
  const autocheckpoint = () => Number(sqliteHandle(ds)!.pragma('wal_autocheckpoint', { simple: true }));
  const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  /** About 4 MB committed, in 40 transactions: far past SQLite's 1,000-page automatic checkpoint. */
  const write = async () => {
    const blob = Buffer.alloc(100_000, 7);
    for (let i = 0; i < 40; i++) await ds.query(`INSERT INTO blobs (body) VALUES (?)`, [blob]);
  };
  const until = async (cond: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-ckpt-'));
    file = path.join(dir, 'db.sqlite');
    ds = createDataSource({ type: 'sqlite', file, url: undefined });
    await ds.initialize();
    await ds.query(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)`);
    sqliteHandle(ds)!.pragma('wal_checkpoint(TRUNCATE)');
  });
  afterEach(async () => {
    await ds.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the thread moves the committed pages into the database file; the main connection does not checkpoint meanwhile', async () => {
    const exits: Array<Error | null> = [];
    const ckpt = new SqliteCheckpointer(ds, { intervalMs: 20, onExit: (err) => exits.push(err) });
    expect(autocheckpoint()).toBe(1000);
    // Without the thread, and with the main connection's checkpoints off, the pages stay in the WAL: the control.
    sqliteHandle(ds)!.pragma('wal_autocheckpoint = 0');
    await write();
    await new Promise((r) => setTimeout(r, 200));
    const before = size(file);
    expect(before).toBeLessThan(1_000_000);
    expect(size(`${file}-wal`)).toBeGreaterThan(4_000_000);

    await ckpt.start();
    expect(ckpt.running).toBe(true);
    expect(autocheckpoint()).toBe(0);
    await until(() => size(file) > 4_000_000);
    // Later commits too, while reads and writes go on.
    await write();
    await until(() => size(file) > 8_000_000);
    expect(ckpt.reported).toBeGreaterThan(0);
    expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM blobs`))[0].n)).toBe(80);

    await ckpt.close();
    expect(ckpt.running).toBe(false);
    expect(autocheckpoint()).toBe(1000);
    expect(exits).toEqual([]);
  });

  it('a thread that fails gives checkpoints back to the main connection, and says so', async () => {
    const exits: Array<Error | null> = [];
    const ckpt = new SqliteCheckpointer(ds, { intervalMs: 20, onExit: (err) => exits.push(err), script: FAULTY });
    // The faulty thread fails an interval after it said it was ready.
    await ckpt.start();
    await until(() => exits.length > 0);
    expect(exits[0]?.message).toBe('checkpoint thread failed on purpose');
    expect(ckpt.running).toBe(false);
    expect(autocheckpoint()).toBe(1000);
    // The main connection checkpoints again: its file grows with its own commits.
    await write();
    expect(size(file)).toBeGreaterThan(2_000_000);
    await ckpt.close();
  });

  it('a checkpoint that fails (a full disk) is reported, and the thread goes on', async () => {
    const failures: string[] = [];
    const exits: Array<Error | null> = [];
    const ckpt = new SqliteCheckpointer(ds, { intervalMs: 2, onExit: (err) => exits.push(err), onFailure: (m) => failures.push(m), script: FAULTY });
    await ckpt.start();
    await until(() => failures.length > 0);
    expect(failures).toEqual(['database or disk is full']);
    expect(ckpt.running).toBe(true);
    expect(autocheckpoint()).toBe(0);
    await ckpt.close();
    expect(exits).toEqual([]);
  });

  it('a thread that fails before it is ready leaves the main connection checkpointing', async () => {
    const exits: Array<Error | null> = [];
    const ckpt = new SqliteCheckpointer(ds, { intervalMs: 1, onExit: (err) => exits.push(err), script: FAULTY });
    await expect(ckpt.start()).rejects.toThrow('checkpoint thread failed before it was ready');
    expect(ckpt.running).toBe(false);
    expect(autocheckpoint()).toBe(1000);
    expect(exits).toEqual([]);
  });

  it('an in-memory database has nothing to checkpoint: no thread', async () => {
    const mem = createDataSource({ type: 'sqlite', file: ':memory:', url: undefined });
    await mem.initialize();
    const ckpt = new SqliteCheckpointer(mem, { intervalMs: 20 });
    await ckpt.start();
    expect(ckpt.running).toBe(false);
    await ckpt.close();
    await mem.destroy();
  });
});
