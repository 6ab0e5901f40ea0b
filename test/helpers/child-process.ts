import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface ChildServer {
  proc: ChildProcess;
  port: number;
  url: string;
  /** The first-start admin secret, or null when the database already had an account. */
  secret: string | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts test/helpers/child-server.ts with `env` and waits for its READY line. */
export function startChild(env: Record<string, string>): Promise<ChildServer> {
  const proc = spawn(process.execPath, ['-r', '@swc-node/register', 'test/helpers/child-server.ts'], {
    cwd: ROOT,
    // Generated captures are dated 2023: retention (RETENTION_DAYS) would purge their hits at start.
    env: { ...process.env, NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', RETENTION_DAYS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`child server did not start: ${err}`)), 60_000);
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\d+) (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}/graphql`, secret: m[2] === '-' ? null : m[2], exited });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!/READY/.test(out)) reject(new Error(`child server exited (${code ?? signal}) before starting: ${err}`));
    });
  });
}

/** Kills the children still running (SIGKILL) and waits for every one to exit. */
export async function killChildren(children: ChildServer[]): Promise<void> {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await c.exited;
  }
}

/** A GraphQL call over HTTP. */
export async function gqlHttp(url: string, key: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const body: any = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** The logUploadCreate multipart mutation over HTTP. */
export async function uploadHttp(url: string, key: string, nickname: string, content: Buffer, filename = 'capture.txt'): Promise<any> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: `mutation($f: Upload!, $n: String) { logUploadCreate(input: { deviceNickname: $n, file: $f }) { duplicate logUpload { id status } userErrors { code message } } }`,
      variables: { f: null, n: nickname },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([content]), filename);
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true' }, body: form });
  const body: any = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.logUploadCreate;
}
