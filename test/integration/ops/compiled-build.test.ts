import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../../../src/db/migrations';

// What `npm run build` makes is what `npm start` and the bin run: compiled once into a directory of its own
// (inside the project, so the compiled code finds node_modules as dist/ does), started without any TypeScript
// loader, on a fresh SQLite database.
const ROOT = path.resolve(__dirname, '../../..');

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(file, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 200_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('the compiled build', () => {
  let out: string;
  let data: string;
  let server: ChildProcess | null = null;

  beforeAll(() => {
    fs.mkdirSync(path.join(ROOT, 'dist'), { recursive: true });
    out = fs.mkdtempSync(path.join(ROOT, 'dist', '.test-build-'));
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-compiled-'));
  });
  afterAll(() => {
    server?.kill('SIGKILL');
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(data, { recursive: true, force: true });
  });

  it('builds with tsconfig.build.json, serves /healthz and GraphQL, migrates, and runs the CLI through the bin', async () => {
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const built = await run(process.execPath, [
      tsc,
      '-p',
      'tsconfig.build.json',
      '--outDir',
      path.join(out, 'dist'),
      '--tsBuildInfoFile',
      path.join(out, 'tsbuildinfo'),
    ]);
    expect(built.stdout + built.stderr).toBe('');
    expect(built.code).toBe(0);
    // The bin finds the compiled CLI beside it, as bin/ finds dist/ in the project.
    fs.mkdirSync(path.join(out, 'bin'));
    fs.copyFileSync(path.join(ROOT, 'bin/pcap-defense.js'), path.join(out, 'bin/pcap-defense.js'));
    const bin = path.join(out, 'bin/pcap-defense.js');

    const env = { NODE_ENV: 'production', DATA_DIR: data, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' };
    const proc = spawn(process.execPath, [path.join(out, 'dist/src/main.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = proc;
    let stdout = '';
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const { url, secret } = await new Promise<{ url: string; secret: string }>((resolve, reject) => {
      proc.stdout!.on('data', (d) => {
        stdout += d;
        const key = /^Admin API key: (\S+)$/m.exec(stdout);
        const listening = /"url":"([^"]+)"[^\n]*"msg":"pcap-defense listening"/.exec(stdout);
        if (key && listening) resolve({ url: listening[1], secret: key[1] });
      });
      void exited.then((code) => reject(new Error(`the compiled server exited (${code}) before listening: ${stderr}${stdout}`)));
    });

    const health = await fetch(url.replace(/\/graphql$/, '/healthz'));
    expect(health.status).toBe(200);
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { account { name } role } }' }),
    });
    expect(await res.json()).toEqual({ data: { viewer: { account: { name: 'default' }, role: 'ADMIN' } } });
    // Every migration was found in the compiled tree and ran.
    const db = new Database(path.join(data, 'pcap-defense.sqlite'), { readonly: true });
    try {
      expect((db.prepare('SELECT name FROM migrations ORDER BY id').all() as Array<{ name: string }>).map((m) => m.name)).toEqual(
        migrations.map((m) => m.name),
      );
    } finally {
      db.close();
    }

    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(await run(process.execPath, [bin, '--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    // A command that opens the database: the compiled CLI migrates (nothing left to do) and reads it.
    const keys = await run(process.execPath, [bin, 'key', 'list'], { DATA_DIR: data });
    expect(keys.stderr).toBe('');
    expect(keys.stdout).toMatch(/^\S+\tADMIN\tpcd_\S*\tactive\t/);

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    server = null;
  }, 300_000);
});
