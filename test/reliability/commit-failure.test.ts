import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import Database from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { drivers } from '../helpers/db';
import { upload } from '../helpers/ingest';
import { idOfType } from '../../src/common/ids/global-id';
import { createDataSource } from '../../src/db/data-source';

// A write that fails for lack of storage (SQLite: SQLITE_FULL at COMMIT or at a statement; MySQL: "The table is
// full") must answer 507 with Retry-After, store nothing, and leave the connection fit for the next request:
// what is acknowledged afterwards is committed, and no ID is handed out twice.

const capture = (n: number) => Buffer.from(`${1_700_000_000 + n}.000001 IP 10.0.0.1.${1024 + n} > 198.51.100.7.443: Flags [S], seq 1, length 0\n`);
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

interface SqliteInternals {
  databaseConnection: Database.Database;
  createQueryRunner(mode: string): { getStmt(sql: string): Promise<unknown> };
}

/**
 * Makes statements fail as SQLite does on a full disk, below TypeORM, one failure per entry of the returned
 * plan: 'commit' makes the next COMMIT roll the whole transaction back and fail; 'statement' makes the next
 * INSERT into log_upload_blob fail alone (the transaction stays open).
 */
function injectSqliteFull(t: TestApp): Array<'commit' | 'statement'> {
  const plan: Array<'commit' | 'statement'> = [];
  const driver = t.dataSource.driver as unknown as SqliteInternals;
  const runner = driver.createQueryRunner('master');
  const getStmt = runner.getStmt.bind(runner);
  const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
  runner.getStmt = async (sql: string) => {
    if (sql === 'COMMIT' && plan[0] === 'commit') {
      plan.shift();
      return {
        reader: false,
        run: () => {
          driver.databaseConnection.exec('ROLLBACK');
          throw full();
        },
      };
    }
    if (/^INSERT INTO "?log_upload_blob/.test(sql) && plan[0] === 'statement') {
      plan.shift();
      return {
        reader: false,
        run: () => {
          throw full();
        },
      };
    }
    return getStmt(sql);
  };
  return plan;
}

describe.each(drivers)('a write that finds the storage full (%s)', (driver) => {
  let t: TestApp;
  const query = <T = any>(sql: string, params: unknown[] = []): Promise<T[]> => t.dataSource.query(sql, params);

  beforeAll(async () => {
    t = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: '0' });
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'd', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      }),
    );
  });
  afterAll(() => t.close());

  /** Makes the next `n` uploads fail for lack of storage; returns a function that ends it. */
  async function fillStorage(n: number): Promise<() => Promise<void>> {
    if (driver === 'sqlite') {
      // The first fails at COMMIT (SQLite has rolled back by itself), the next at a statement inside the transaction.
      const plan = injectSqliteFull(t);
      plan.push('commit', ...Array<'statement'>(n - 1).fill('statement'));
      return async () => void plan.splice(0);
    }
    // MySQL: InnoDB out of tablespace says ER_RECORD_FILE_FULL (1114); a trigger says the same.
    const conn = await createConnection({ uri: (t.config.database as { url: string }).url });
    await conn.query(
      `CREATE TRIGGER full_disk BEFORE INSERT ON log_upload_blob FOR EACH ROW SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1114, MESSAGE_TEXT = 'The table is full'`,
    );
    return async () => {
      await conn.query('DROP TRIGGER full_disk');
      await conn.end();
    };
  }

  it('answers 507 (GraphQL and form post), stores nothing, and what is acknowledged afterwards is committed', async () => {
    const before = (await query<{ n: number }>('SELECT COUNT(*) AS n FROM log_upload'))[0].n;
    const release = await fillStorage(3);
    try {
      for (const n of [1, 2]) {
        const r = await upload(t, capture(n), { deviceNickname: 'd' });
        expect(r.status).toBe(507);
        expect(r.errors).toEqual([
          expect.objectContaining({ message: expect.stringMatching(/storage is full; nothing was stored/), extensions: { code: 'INSUFFICIENT_STORAGE' } }),
        ]);
        expect(r.data?.logUploadCreate ?? null).toBeNull();
      }
      const form = await request(t.http.app)
        .post('/cgi-bin/logupload.pl')
        .set('authorization', `Bearer ${t.keys.uploader}`)
        .field('nickname', 'd')
        .attach('upfile', capture(3), 'c.txt');
      expect(form.status).toBe(507);
      expect(form.headers['retry-after']).toBe('60');
      expect(form.body).toEqual({ code: 'INSUFFICIENT_STORAGE', error: expect.stringMatching(/storage is full/) });
    } finally {
      await release();
    }
    expect(Number((await query<{ n: number }>('SELECT COUNT(*) AS n FROM log_upload'))[0].n)).toBe(Number(before));

    // Room again: acknowledged means committed, each with an ID of its own.
    const acked = new Map<number, string>();
    for (const n of [4, 5, 6]) {
      const r = ok(await upload(t, capture(n), { deviceNickname: 'd' })).logUploadCreate;
      expect(r.userErrors).toEqual([]);
      acked.set(idOfType(r.logUpload.id, 'LogUpload')!, md5(capture(n)));
    }
    expect(acked.size).toBe(3);
    if (driver === 'sqlite') expect((t.dataSource.driver as unknown as SqliteInternals).databaseConnection.inTransaction).toBe(false);
    // Read on a connection of its own (MySQL) / after the transaction state was checked (SQLite): committed rows.
    const rows = await query<{ id: number; md5: string }>(`SELECT id, md5 FROM log_upload WHERE md5 IN (${[...acked.values()].map(() => '?').join(',')})`, [
      ...acked.values(),
    ]);
    expect(new Map(rows.map((r) => [Number(r.id), r.md5]))).toEqual(acked);
  });

  it('sets the status and Retry-After on the GraphQL response too', async () => {
    const release = await fillStorage(1);
    try {
      const res = await request(t.http.app)
        .post('/graphql')
        .set('authorization', `Bearer ${t.keys.admin}`)
        .set('apollo-require-preflight', 'true')
        .field(
          'operations',
          JSON.stringify({
            query: `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "d", file: $f }) { logUpload { id } } }`,
            variables: { f: null },
          }),
        )
        .field('map', JSON.stringify({ 0: ['variables.f'] }))
        .attach('0', capture(7), 'c.txt');
      expect(res.status).toBe(507);
      expect(res.headers['retry-after']).toBe('60');
    } finally {
      await release();
    }
  });
});

describe('the SQLite data file', () => {
  it("syncs every commit to disk before it is acknowledged (synchronous = FULL, not WAL mode's NORMAL)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-sync-'));
    const config = { type: 'sqlite' as const, file: path.join(dir, 'pcap-defense.sqlite'), url: undefined };
    // Opened once to create it in WAL mode; a file already in WAL mode is what every later start opens.
    const first = createDataSource(config);
    await first.initialize();
    await first.query('CREATE TABLE t (a INTEGER)');
    await first.destroy();
    const dataSource = createDataSource(config);
    await dataSource.initialize();
    try {
      const db = (dataSource.driver as unknown as SqliteInternals).databaseConnection;
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2);
    } finally {
      await dataSource.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
