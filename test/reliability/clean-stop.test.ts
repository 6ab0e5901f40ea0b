import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The real entry point (src/main.ts) outside NODE_ENV=test, as `npm start` runs it: SIGTERM must run our whole
 * stop (requests, the job handed back, the WAL checkpointed, the log written) and exit 0. Apollo registers its own
 * SIGTERM handler outside tests, which raised the signal again and killed the process half-way (exit 143).
 */
describe.each(['SIGTERM', 'SIGINT'] as const)('npm start, then %s', (signal) => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-stop-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('stops cleanly: exit 0, and the .sqlite file alone holds everything (the WAL checkpointed)', async () => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'development', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    for (let i = 0; !/pcap-defense listening/.test(out); i++) {
      if (i > 600 || child.exitCode !== null) throw new Error(`did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill(signal);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(out).toMatch(/"msg":"shutting down"/);

    const wal = path.join(dir, 'pcap-defense.sqlite-wal');
    expect(fs.existsSync(wal) ? fs.statSync(wal).size : 0).toBe(0);
    // A copy of the main file alone is the whole database: the first account is in it.
    const copy = path.join(dir, 'copy.sqlite');
    fs.copyFileSync(path.join(dir, 'pcap-defense.sqlite'), copy);
    const db = new Database(copy, { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM account').get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  }, 90_000);
});
