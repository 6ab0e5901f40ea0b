import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/app/logger';
import { RunningServer, startServer } from '../../src/app/server';
import { seedAccount } from '../helpers/child-db';
import { gqlHttp } from '../helpers/child-process';

// The SQLite data directory on a 2 MB tmpfs: uploads go on until the disk is full. Every upload is either
// acknowledged, and then still there with its bytes after a restart, or refused with 507 and Retry-After; once
// the filesystem has room again the same process takes uploads without a restart.

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-full-'));
const mount = (...args: string[]) => execFileSync('mount', args, { stdio: 'pipe' });
let mounted = false;
try {
  mount('-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir);
  mounted = true;
} catch (err) {
  console.warn(`sqlite-full-disk: skipped, cannot mount a tmpfs here (needs root): ${(err as Error).message.split('\n')[0]}`);
}

/** ~40 KB of text that compresses poorly (random addresses and sequence numbers). */
function capture(n: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const r = crypto.randomBytes(8);
    lines.push(
      `${1_700_000_000 + n * 1000 + i}.000001 IP 10.0.${r[0]}.${r[1]}.${1024 + i} > ${20 + (r[2] % 150)}.${r[3]}.${r[4]}.${r[5]}.443: Flags [S], seq ${r.readUInt16BE(6) * 65536 + i}, length 0`,
    );
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

/** The multipart mutation: HTTP status, Retry-After and body. */
async function send(server: RunningServer, key: string, body: Buffer): Promise<{ status: number; retryAfter: string | null; json: any }> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "d", file: $f }) { duplicate logUpload { id md5 } userErrors { code } } }`,
      variables: { f: null },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([body]), 'c.txt');
  const res = await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true' }, body: form });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
}

(mounted ? describe : describe.skip)('SQLite on a full disk', () => {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    RETENTION_DAYS: '0',
    RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
    WORKER_POLL_MS: '50',
  });
  let server: RunningServer | null = null;

  afterAll(async () => {
    await server?.stop();
    execFileSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses with 507 once full, loses nothing it acknowledged, and takes uploads again when there is room', async () => {
    server = await startServer(config, silentLogger());
    const key = server.bootstrapSecret!;
    await seedAccount(server.url, key, ['198.51.100.1'], [{ nickname: 'd', ip: '8.8.8.8' }]);
    const acked = new Map<string, string>();
    let refused = 0;
    for (let n = 0; n < 120 && refused < 5; n++) {
      const body = capture(n);
      const r = await send(server, key, body);
      if (r.status === 200 && r.json.data?.logUploadCreate?.logUpload) {
        const { id, md5: stored } = r.json.data.logUploadCreate.logUpload;
        expect(stored).toBe(md5(body));
        // An ID is never handed out twice.
        expect(acked.has(id)).toBe(false);
        acked.set(id, stored);
        continue;
      }
      expect({ status: r.status, retryAfter: r.retryAfter, code: r.json.errors?.[0]?.extensions?.code }).toEqual({
        status: 507,
        retryAfter: '60',
        code: 'INSUFFICIENT_STORAGE',
      });
      refused++;
    }
    expect(refused).toBe(5);
    expect(acked.size).toBeGreaterThan(3);

    // Room again, same process: uploads are taken and processed.
    mount('-o', 'remount,size=64m', dir);
    const after = capture(1000);
    const r = await send(server, key, after);
    expect(r.status).toBe(200);
    const id = r.json.data.logUploadCreate.logUpload.id;
    acked.set(id, md5(after));
    for (let i = 0; i < 200; i++) {
      const { logUpload } = await gqlHttp(server.url, key, `query($id: ID!) { logUpload(id: $id) { status } }`, { id });
      if (logUpload.status === 'COMPLETED') break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect((await gqlHttp(server.url, key, `query($id: ID!) { logUpload(id: $id) { status } }`, { id })).logUpload.status).toBe('COMPLETED');

    // After a restart every acknowledged upload is there, with its own bytes.
    await server.stop();
    server = await startServer(config, silentLogger());
    for (const [uploadId, sum] of acked) {
      const { logUpload } = await gqlHttp(server.url, key, `query($id: ID!) { logUpload(id: $id) { md5 } }`, { id: uploadId });
      expect({ uploadId, md5: logUpload?.md5 }).toEqual({ uploadId, md5: sum });
    }
  });
});
