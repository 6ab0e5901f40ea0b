import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/app/logger';
import { RunningServer, startServer } from '../../src/app/server';
import { generateCapture } from '../helpers/capture';
import { seedAccount } from '../helpers/child-db';
import { gqlHttp, uploadHttp } from '../helpers/child-process';
import { CLI_SOURCE } from '../helpers/cli';
import { hitsByUpload } from '../helpers/crash-loop';
import { createTestDatabase } from '../helpers/db';

// Backups of the embedded database: `pcap-defense backup FILE` taken while uploads are being processed is one
// consistent snapshot a server starts on, with the same uploads, hits and lists as the source had; and after a
// clean stop the .sqlite file alone holds everything, even while another process has it open.

const ROOT = path.resolve(__dirname, '../..');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI_SOURCE, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const serverConfig = (dir: string) =>
  loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    RETENTION_DAYS: '0',
    RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
    WORKER_POLL_MS: '50',
    WORKER_LEASE_MS: '1000',
  });

/** Reads a SQLite file directly. */
function open(file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  return {
    db,
    query: async (sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as Array<Record<string, unknown>>,
  };
}

/** Waits until no upload is QUEUED or PROCESSING. */
/**
 * No upload waits and no retro-hunt is pending: the list changes of the seed request hunts, and a hunt planned after
 * the uploads completed queues them again (CI saw the source re-processing two uploads after this returned).
 */
async function settled(server: RunningServer): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [{ n }] = await server.dataSource.query(`SELECT COUNT(*) AS n FROM log_upload WHERE status IN ('QUEUED', 'PROCESSING')`);
    const [{ h }] = await server.dataSource.query(`SELECT COUNT(*) AS h FROM retro_hunt WHERE status IN ('QUEUED', 'RUNNING')`);
    if (Number(n) === 0 && Number(h) === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('uploads still pending');
}

describe('pcap-defense backup (sqlite)', () => {
  const dirs: string[] = [];
  const servers: RunningServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('copies a consistent snapshot under load that a server starts on with the same uploads, hits and lists', async () => {
    const source = tmp('pcd-backup-src-');
    const restored = tmp('pcd-backup-dst-');
    const out = tmp('pcd-backup-out-');
    dirs.push(source, restored, out);
    const captures = [1, 2, 3, 4, 5, 6].map((seed) => generateCapture(seed, 1500, 6));
    const bad = [...new Set(captures.flatMap((c) => c.badAddresses))];

    const server = await startServer(serverConfig(source), silentLogger());
    servers.push(server);
    const key = server.bootstrapSecret!;
    await seedAccount(server.url, key, bad, [{ nickname: 'd', ip: '8.8.8.8' }]);
    const acked: string[] = [];
    for (const c of captures.slice(0, 3)) acked.push((await uploadHttp(server.url, key, 'd', c.text)).logUpload.id);

    // The backup runs in another process while the worker writes hits and more uploads arrive.
    const file = path.join(out, 'backup.sqlite');
    const backup = cli(['backup', file, '--json'], { DATA_DIR: source });
    for (const c of captures.slice(3)) await uploadHttp(server.url, key, 'd', c.text);
    const result = await backup;
    expect(result).toMatchObject({ code: 0 });
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ file, iocLists: 1, iocs: bad.length });
    expect(summary.uploads).toBeGreaterThanOrEqual(3);
    await settled(server);
    const pending = open(file);
    const inBackup = (await pending.query('SELECT id FROM log_upload ORDER BY id')).map((r) => Number(r.id));
    pending.db.close();
    // Nothing beside it: the file alone is the database.
    expect(fs.readdirSync(out)).toEqual(['backup.sqlite']);

    // Restore into a fresh data dir and start on it: queued and interrupted jobs are processed there.
    fs.copyFileSync(file, path.join(restored, 'pcap-defense.sqlite'));
    const copy = await startServer(serverConfig(restored), silentLogger());
    servers.push(copy);
    expect(copy.bootstrapSecret).toBeNull();
    await settled(copy);

    const src = (sql: string) => server.dataSource.query(sql);
    const dst = (sql: string) => copy.dataSource.query(sql);
    const uploads = `SELECT id, md5, size, status, hits, connections FROM log_upload WHERE id IN (${inBackup.join(',')}) ORDER BY id`;
    expect(await dst(uploads)).toEqual(await src(uploads));
    expect(await dst('SELECT COUNT(*) AS n FROM log_upload')).toEqual([{ n: inBackup.length }]);
    const srcHits = await hitsByUpload(src);
    const dstHits = await hitsByUpload(dst);
    for (const id of inBackup) expect({ id, hits: dstHits.get(id) ?? [] }).toEqual({ id, hits: srcHits.get(id) ?? [] });
    expect([...dstHits.keys()].every((id) => inBackup.includes(id))).toBe(true);
    const lists = `SELECT l.name, l.kind, l.severity, COUNT(i.id) AS entries FROM ioc_list l LEFT JOIN ioc i ON i.list_id = l.id GROUP BY l.id, l.name, l.kind, l.severity ORDER BY l.name`;
    expect(await dst(lists)).toEqual(await src(lists));
    // Every upload acknowledged before the backup began is in it, and the restored server serves them.
    for (const id of acked)
      expect((await gqlHttp(copy.url, key, `query($id: ID!) { logUpload(id: $id) { status } }`, { id })).logUpload.status).toBe('COMPLETED');
  });

  it('refuses to overwrite, and names mariadb-dump/mysqldump for MySQL', async () => {
    const dir = tmp('pcd-backup-misc-');
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'taken.sqlite'), 'x');
    const server = await startServer(serverConfig(dir), silentLogger());
    servers.push(server);
    const taken = await cli(['backup', path.join(dir, 'taken.sqlite')], { DATA_DIR: dir });
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/exists; give a new file name/);
    expect(fs.readFileSync(path.join(dir, 'taken.sqlite'), 'utf8')).toBe('x');
    if (process.env.TEST_MYSQL_URL) {
      const db = await createTestDatabase('mysql');
      try {
        const mysql = await cli(['backup', path.join(dir, 'm.sql')], { DATABASE_URL: (db.config as { url: string }).url });
        expect(mysql.code).toBe(1);
        expect(mysql.stderr).toMatch(/mariadb-dump --single-transaction/);
      } finally {
        await db.drop();
      }
    }
  });
});

describe('a clean stop (sqlite)', () => {
  it('leaves every committed row in the .sqlite file itself, even while another process has the database open', async () => {
    const dir = tmp('pcd-stop-');
    const copyDir = tmp('pcd-stop-copy-');
    try {
      const server = await startServer(serverConfig(dir), silentLogger());
      // A shell, a monitoring tool or a backup has the file open: SQLite does not checkpoint when it closes.
      const other = new Database(path.join(dir, 'pcap-defense.sqlite'), { readonly: true });
      try {
        other.prepare('SELECT COUNT(*) FROM sqlite_master').get();
        const key = server.bootstrapSecret!;
        const capture = generateCapture(9, 200, 2, 2);
        await seedAccount(server.url, key, capture.badAddresses, [{ nickname: 'd', ip: '8.8.8.8' }]);
        const { id } = (await uploadHttp(server.url, key, 'd', capture.text)).logUpload;
        await settled(server);
        await server.stop();
        // Only the .sqlite file, as a file-level backup that forgets the -wal would copy.
        fs.copyFileSync(path.join(dir, 'pcap-defense.sqlite'), path.join(copyDir, 'pcap-defense.sqlite'));
        const copy = open(path.join(copyDir, 'pcap-defense.sqlite'));
        try {
          const uploads = await copy.query('SELECT id, status, hits FROM log_upload');
          expect(uploads).toEqual([{ id: 1, status: 'COMPLETED', hits: capture.badFlows }]);
          expect(await copy.query('SELECT COUNT(*) AS n FROM flow_hit')).toEqual([{ n: capture.badFlows }]);
          expect(await copy.query('SELECT name FROM ioc_list')).toEqual([{ name: 'bad' }]);
          expect(id).toBeTruthy();
        } finally {
          copy.db.close();
        }
      } finally {
        other.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(copyDir, { recursive: true, force: true });
    }
  });
});
