/**
 * A pcap-defense server as a child process (src/main.ts of a checkout, NODE_ENV=production, metrics on) over a
 * database the benches seeded, and a small HTTP client for it. The load and compare benches measure through it, so
 * the server's event loop is its own.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';

export const METRICS_TOKEN = 'bench-metrics-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a TypeScript entry point of `root` to its end and returns its stdout. */
export function nodeRun(root: string, args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(process.execPath, ['-r', '@swc-node/register', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
  return r.stdout;
}

/** An ADMIN key made by the checkout's own command line, on the database. */
export function createAdminKey(root: string, databaseUrl: string): string {
  const out = nodeRun(root, ['src/cli/index.ts', 'key', 'create', '--role', 'ADMIN', '--name', 'bench', '--json'], {
    ...process.env,
    DATABASE_URL: databaseUrl,
  });
  return (JSON.parse(out.trim().split('\n').pop()!) as { secret: string }).secret;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  base: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * src/main.ts of `root` on the seeded database; resolved once its report store has loaded (a log line). The seeded
 * captures are from 2025, so retention is off; rate limits are off (the benches are the only clients).
 */
export async function startChildServer(options: {
  root: string;
  databaseUrl: string;
  cpuProf?: string;
  env?: NodeJS.ProcessEnv;
  /** Every line the server logs, as it comes. */
  onLine?: (line: string) => void;
}): Promise<ChildServer> {
  const port = await freePort();
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: options.databaseUrl,
    RETENTION_DAYS: '0',
    RATE_LIMIT_REPORTS_PER_MINUTE: '0',
    RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
    METRICS_ENABLED: 'true',
    METRICS_TOKEN,
    LOG_LEVEL: 'info',
    ...options.env,
  };
  const flags = options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(options.cpuProf)] : [];
  const child = spawn(process.execPath, [...flags, '-r', '@swc-node/register', 'src/main.ts'], {
    cwd: options.root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('the server did not load its report store within 600 s')), 600_000);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        options.onLine?.(line);
        if (line.includes('"report_memory.loaded"') || line.includes('"report_memory.error"')) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  child.stdout!.resume();
  return {
    base: `http://127.0.0.1:${port}`,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Outcome {
  ms: number;
  status: number;
  ok: boolean;
  refused: boolean;
  json: { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> } | null;
}

const UPLOAD = `mutation Up($input: LogUploadCreateInput!) { logUploadCreate(input: $input) { logUpload { id } duplicate userErrors { code message } } }`;
const UPLOAD_STATUS = `query St($id: ID!) { logUpload(id: $id) { status error receivedAt startedAt finishedAt } }`;

export class Api {
  constructor(
    readonly base: string,
    private readonly key: string,
  ) {}

  async gql(query: string, variables: Record<string, unknown> = {}): Promise<Outcome> {
    const t0 = performance.now();
    try {
      const res = await fetch(`${this.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.key}` },
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      let json: Outcome['json'] = null;
      try {
        json = JSON.parse(text);
      } catch {
        // counted as an error by the caller
      }
      const refused = res.status === 503 && json?.errors?.[0]?.extensions?.code === 'OVERLOADED';
      return { ms, status: res.status, ok: res.status === 200 && !!json?.data && !json.errors, refused, json };
    } catch {
      return { ms: performance.now() - t0, status: 0, ok: false, refused: false, json: null };
    }
  }

  /** GET of a path with the key; resolves to its time (whole body read), status and size. */
  async get(pathAndQuery: string): Promise<{ ms: number; status: number; bytes: number; body: Buffer }> {
    const t0 = performance.now();
    const res = await fetch(`${this.base}${pathAndQuery}`, { headers: { authorization: `Bearer ${this.key}` } });
    const body = Buffer.from(await res.arrayBuffer());
    return { ms: performance.now() - t0, status: res.status, bytes: body.length, body };
  }

  async readyz(): Promise<{ ms: number; status: number }> {
    const t0 = performance.now();
    try {
      const res = await fetch(`${this.base}/readyz`);
      await res.arrayBuffer();
      return { ms: performance.now() - t0, status: res.status };
    } catch {
      return { ms: performance.now() - t0, status: 0 };
    }
  }

  /**
   * Accepts one file and polls it until processed; resolves to its processing time (accepted -> finished) in ms, and
   * its run (the worker's claim -> finished: without the wait behind another upload's job).
   */
  async upload(file: Buffer, name: string, nickname: string): Promise<{ ok: boolean; processingMs: number; runMs: number; error?: string }> {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: UPLOAD, variables: { input: { deviceNickname: nickname, file: null } } }));
    form.set('map', JSON.stringify({ 0: ['variables.input.file'] }));
    form.set('0', new Blob([file]), name);
    const res = await fetch(`${this.base}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.key}`, 'apollo-require-preflight': 'true' },
      body: form,
    });
    const json = (await res.json()) as { data?: { logUploadCreate: { logUpload: { id: string } | null; userErrors: unknown[] } }; errors?: unknown };
    const id = json.data?.logUploadCreate.logUpload?.id;
    if (!id) return { ok: false, processingMs: NaN, runMs: NaN, error: JSON.stringify(json).slice(0, 300) };
    for (;;) {
      await sleep(200);
      const st = await this.gql(UPLOAD_STATUS, { id });
      const u = st.json?.data?.logUpload;
      if (!u) continue;
      if (u.status === 'COMPLETED' || u.status === 'FAILED') {
        return {
          ok: u.status === 'COMPLETED',
          processingMs: Date.parse(u.finishedAt) - Date.parse(u.receivedAt),
          runMs: Date.parse(u.finishedAt) - Date.parse(u.startedAt),
          error: u.error ?? undefined,
        };
      }
    }
  }

  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`${this.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    const out = new Map<string, number>();
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith('#') || !line.trim()) continue;
      const sp = line.lastIndexOf(' ');
      out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return out;
  }
}

/** Nearest-rank percentile. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

/**
 * The database bench/report.bench.ts seeds and keeps (`--seed-only --keep`): a SQLite file in the temp dir, or the
 * MySQL database pcd_bench_report. Seeds it with this checkout's report bench unless `reuse` finds it there.
 */
export async function keptBenchDatabase(options: { root: string; db: 'sqlite' | 'mysql'; hits: number; mysqlUrl: string; reuse: boolean }): Promise<string> {
  const { root, db, hits, mysqlUrl } = options;
  const sqliteFile = path.join(os.tmpdir(), `pcd-report-bench-keep-${hits}.sqlite`);
  const mysqlDb = 'pcd_bench_report';
  const databaseUrl = db === 'sqlite' ? `sqlite://${sqliteFile}` : `${mysqlUrl.replace(/\/$/, '')}/${mysqlDb}`;
  const seeded = async (): Promise<boolean> => {
    if (db === 'sqlite') return fs.existsSync(sqliteFile);
    const conn = await createConnection({ uri: mysqlUrl });
    try {
      const [rows] = await conn.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [mysqlDb, 'flow_hit']);
      return Number((rows as Array<{ n: number }>)[0].n) > 0;
    } finally {
      await conn.end();
    }
  };
  if (!(options.reuse && (await seeded()))) {
    process.stderr.write(`seeding ${hits.toLocaleString('en')} hits on ${db} (bench/report.bench.ts --seed-only --keep)\n`);
    nodeRun(root, ['bench/report.bench.ts', '--db', db, '--hits', String(hits), '--also', '0', '--seed-only', '--keep', '--mysql-url', mysqlUrl], process.env);
  } else process.stderr.write(`reusing the kept ${db} database\n`);
  return databaseUrl;
}
