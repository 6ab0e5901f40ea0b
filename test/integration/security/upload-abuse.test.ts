import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AddressInfo } from 'node:net';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { createHttpServer } from '../../../src/app/server';

// Over MAX_UPLOAD_BYTES (413, nothing stored) and a gzip bomb refused by what it inflates to are proven in
// test/integration/log-upload/log-upload.test.ts ("refuses an upload over MAX_UPLOAD_BYTES ... gzip bomb").

let salt = 0;
/** `n` lines of tcpdump text, different each call (the same file twice would be a duplicate). */
const TEXT = (n: number) => {
  const base = 1517931955 + ++salt * 100_000;
  return Array.from({ length: n }, (_, i) => `${base + i}.000001 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 1, win 65535, length 0`).join('\n') + '\n';
};
const UPLOAD = `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "gw", file: $f }) { logUpload { id } userErrors { message } } }`;
const IMPORT = `mutation($input: IocListImportInput!) { iocListImport(input: $input) { summary { added } userErrors { message } } }`;

interface Part {
  name: string;
  value: string | Buffer;
  filename?: string;
}

function multipart(parts: Part[]): { contentType: string; body: Buffer } {
  const boundary = '----pcd-test-boundary-7d1f';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    const type = p.filename ? 'Content-Type: text/plain\r\n' : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(drivers)('uploads cannot exhaust the server (%s)', (driver) => {
  let t: TestApp;
  let server: http.Server;
  let port: number;
  let tmp: string;
  let savedTmpdir: string | undefined;
  let listId: string;
  let inFlight = 0;

  const count = async (table: string) => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  const tmpEntries = () => fs.readdirSync(tmp);
  const connections = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  /** The three upload paths, as multipart bodies of `fileBytes`. */
  const paths: Record<string, (file: Buffer) => { path: string; headers: Record<string, string>; body: Buffer; contentType: string }> = {
    logUploadCreate: (file) => ({
      path: '/graphql',
      headers: { authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true' },
      ...multipart([
        { name: 'operations', value: JSON.stringify({ query: UPLOAD, variables: { f: null } }) },
        { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
        { name: '0', value: file, filename: 'capture.txt' },
      ]),
    }),
    iocListImport: (file) => ({
      path: '/graphql',
      headers: { authorization: `Bearer ${t.keys.admin}`, 'apollo-require-preflight': 'true' },
      ...multipart([
        { name: 'operations', value: JSON.stringify({ query: IMPORT, variables: { input: { list: listId, file: null } } }) },
        { name: 'map', value: JSON.stringify({ 0: ['variables.input.file'] }) },
        { name: '0', value: file, filename: 'feed.txt' },
      ]),
    }),
    'POST /logupload': (file) => ({
      path: '/logupload',
      headers: { authorization: `Bearer ${t.keys.uploader}` },
      ...multipart([
        { name: 'nickname', value: 'gw' },
        { name: 'upfile', value: file, filename: 'capture.txt' },
      ]),
    }),
  };
  const feedOf = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `203.0.${(i >> 8) & 255}.${i & 255}`).join('\n'));
  const fileFor = (name: string, bytes: number) => (name === 'iocListImport' ? feedOf(Math.ceil(bytes / 12)) : Buffer.from(TEXT(Math.ceil(bytes / 100))));

  /** Sends the request head and the first `sent` bytes of the body over a raw socket, then lets `then` decide. */
  async function partialRequest(req: ReturnType<(typeof paths)[string]>, sent: number): Promise<net.Socket> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const head = [
      `POST ${req.path} HTTP/1.1`,
      'Host: 127.0.0.1',
      `Content-Type: ${req.contentType}`,
      `Content-Length: ${req.body.length}`,
      ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
    socket.write(req.body.subarray(0, sent));
    return socket;
  }

  /** Waits until nothing of an interrupted upload is left: no connection, no temp file, no intake running. */
  async function settled(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await connections()) === 0 && tmpEntries().length === 0 && inFlight === 0) return;
      await sleep(50);
    }
  }

  beforeAll(async () => {
    savedTmpdir = process.env.TMPDIR;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-abuse-'));
    // Feed imports spool to os.tmpdir()/pcap-defense-*: a private one shows what is left behind.
    process.env.TMPDIR = tmp;
    t = await createTestApp(driver, {
      MAX_UPLOAD_BYTES: '400KB',
      MAX_FEED_BYTES: '400KB',
      MAX_REQUEST_BYTES: '20KB',
      REQUEST_TIMEOUT_MS: '1500',
      RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
    });
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "gw", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p,
      }),
    );
    listId = ok(await t.gql(`mutation { iocListCreate(input: { name: "feed", kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    // Every intake of an upload body, whichever path: it must end (resolve or fail) when its request does.
    const receive = t.services.logUploads.receive.bind(t.services.logUploads);
    jest.spyOn(t.services.logUploads, 'receive').mockImplementation((stream) => {
      inFlight++;
      return receive(stream).finally(() => inFlight--);
    });
    server = createHttpServer(t.http.app, t.config);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await t.close();
    process.env.TMPDIR = savedTmpdir;
    if (savedTmpdir === undefined) delete process.env.TMPDIR;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('each path works with a whole body (control)', async () => {
    for (const [name, build] of Object.entries(paths)) {
      const req = build(fileFor(name, 30_000));
      const res = await request(t.http.app).post(req.path).set(req.headers).set('content-type', req.contentType).send(req.body);
      expect([200, 201]).toContain(res.status);
      if (req.path === '/graphql') expect(res.body.errors).toBeUndefined();
    }
    expect(await count('log_upload')).toBe(2);
    expect(tmpEntries()).toEqual([]);
  });

  it('refuses a second file in one request with 413, storing nothing', async () => {
    const before = await count('log_upload');
    const file = Buffer.from(TEXT(3));
    // Two files mapped into the operation: refused when the map is read, before any file.
    const twoMapped = multipart([
      { name: 'operations', value: JSON.stringify({ query: UPLOAD, variables: { f: null, g: null } }) },
      { name: 'map', value: JSON.stringify({ 0: ['variables.f'], 1: ['variables.g'] }) },
      { name: '0', value: file, filename: 'a.txt' },
      { name: '1', value: file, filename: 'b.txt' },
    ]);
    const res = await request(t.http.app)
      .post('/graphql')
      .set({ authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true', 'content-type': twoMapped.contentType })
      .send(twoMapped.body);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: 'One file per request.', code: 'PAYLOAD_TOO_LARGE' });
    expect(await count('log_upload')).toBe(before);
    const form = multipart([
      { name: 'nickname', value: 'gw' },
      { name: 'upfile', value: file, filename: 'a.txt' },
      { name: 'upfile', value: Buffer.from(TEXT(5)), filename: 'b.txt' },
    ]);
    const legacy = await request(t.http.app)
      .post('/logupload')
      .set({ authorization: `Bearer ${t.keys.uploader}`, 'content-type': form.contentType })
      .send(form.body);
    expect(legacy.status).toBe(413);
    expect(legacy.body).toEqual({ error: 'One file per upload (field upfile).', code: 'PAYLOAD_TOO_LARGE' });
    expect(await count('log_upload')).toBe(before);

    // A second file part that the map does not name: the parser stops at it, and the mapped file is not stored.
    const extra = Buffer.from(TEXT(4));
    const oneExtra = multipart([
      { name: 'operations', value: JSON.stringify({ query: UPLOAD, variables: { f: null } }) },
      { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', value: file, filename: 'a.txt' },
      { name: '1', value: extra, filename: 'b.txt' },
    ]);
    const mapped = await request(t.http.app)
      .post('/graphql')
      .set({ authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true', 'content-type': oneExtra.contentType })
      .send(oneExtra.body);
    expect(mapped.body).toEqual({
      data: null,
      errors: [{ message: 'One file per request.', path: ['logUploadCreate'], extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
    expect(await count('log_upload')).toBe(before);
  });

  it('refuses fields and JSON bodies over MAX_REQUEST_BYTES with 413', async () => {
    const before = await count('log_upload');
    const padded = multipart([
      { name: 'operations', value: JSON.stringify({ query: `${UPLOAD} ${'#'.repeat(30_000)}`, variables: { f: null } }) },
      { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', value: Buffer.from(TEXT(3)), filename: 'a.txt' },
    ]);
    const res = await request(t.http.app)
      .post('/graphql')
      .set({ authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true', 'content-type': padded.contentType })
      .send(padded.body);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: 'The field "operations" is larger than the limit of 20000 bytes.', code: 'PAYLOAD_TOO_LARGE' });
    const json = await request(t.http.app)
      .post('/graphql')
      .set({ authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' })
      .send(JSON.stringify({ query: `{ viewer { role } } ${'#'.repeat(30_000)}` }));
    expect(json.status).toBe(413);
    expect(json.body).toEqual({ error: 'The request body is too large.', code: 'PAYLOAD_TOO_LARGE' });
    expect(await count('log_upload')).toBe(before);
  });

  // The multipart parser's own cap is the larger of the two limits (here both 400 KB): a file over it is cut by the
  // parser itself, which must end in a 413 too, not in a request left waiting.
  it.each(['logUploadCreate', 'iocListImport'])('%s: a file over its limit is 413, with no row and no spooled file', async (name) => {
    const before = { uploads: await count('log_upload'), iocs: await count('ioc') };
    const req = paths[name](fileFor(name, 700_000));
    expect(req.body.length).toBeGreaterThan(600_000);
    const res = await request(t.http.app).post(req.path).set(req.headers).set('content-type', req.contentType).send(req.body);
    expect(res.status).toBe(413);
    expect(res.body.errors).toEqual([
      expect.objectContaining({ message: 'The file is larger than the limit of 400000 bytes; nothing was stored.', extensions: { code: 'PAYLOAD_TOO_LARGE' } }),
    ]);
    await settled();
    expect(tmpEntries()).toEqual([]);
    expect(inFlight).toBe(0);
    expect(await count('log_upload')).toBe(before.uploads);
    expect(await count('ioc')).toBe(before.iocs);
  });

  it.each(Object.keys(paths))('%s: a client that drops the connection mid-body leaves no row, no temp file and no intake running', async (name) => {
    const before = { uploads: await count('log_upload'), iocs: await count('ioc') };
    const req = paths[name](fileFor(name, 300_000));
    const socket = await partialRequest(req, Math.floor(req.body.length / 2));
    await sleep(300);
    socket.destroy();
    await settled();
    expect(await connections()).toBe(0);
    expect(inFlight).toBe(0);
    expect(tmpEntries()).toEqual([]);
    expect(await count('log_upload')).toBe(before.uploads);
    expect(await count('ioc')).toBe(before.iocs);
    // The server still serves.
    ok(await t.gql(`{ viewer { role } }`));
  });

  it.each(Object.keys(paths))('%s: a slow upload is cut after REQUEST_TIMEOUT_MS, leaving nothing behind', async (name) => {
    const before = { uploads: await count('log_upload'), iocs: await count('ioc') };
    const req = paths[name](fileFor(name, 100_000));
    const started = Date.now();
    const socket = await partialRequest(req, 2_000);
    const closed = new Promise<string>((resolve) => {
      let answer = '';
      socket.on('data', (d) => (answer += d));
      socket.once('close', () => resolve(answer));
    });
    socket.on('error', () => undefined);
    // A byte every 100 ms: it would take hours to finish.
    let offset = 2_000;
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(req.body.subarray(offset, ++offset));
    }, 100);
    const answer = await closed;
    clearInterval(trickle);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_400);
    expect(elapsed).toBeLessThan(5_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    await settled();
    expect(await connections()).toBe(0);
    expect(inFlight).toBe(0);
    expect(tmpEntries()).toEqual([]);
    expect(await count('log_upload')).toBe(before.uploads);
    expect(await count('ioc')).toBe(before.iocs);
  });

  it('refuses multipart without Apollo-Require-Preflight before reading the body; the keep-alive connection still serves the next request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const req = paths.logUploadCreate(Buffer.from(TEXT(2_000)));
      const sockets: net.Socket[] = [];
      // The head goes first; the body only after the answer: an answer before any body byte proves it was not read.
      const refused = await new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const r = http.request({
          agent,
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/graphql',
          headers: { authorization: `Bearer ${t.keys.uploader}`, 'content-type': req.contentType, 'content-length': req.body.length },
        });
        r.on('socket', (s) => sockets.push(s));
        r.on('error', reject);
        r.on('response', (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body, reused: r.reusedSocket }));
          // Now the body, which the server discards to keep the connection usable.
          r.end(req.body);
        });
        r.flushHeaders();
      });
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body)).toEqual({
        error: 'Multipart requests must send the header "Apollo-Require-Preflight: true" (CSRF protection).',
        code: 'BAD_REQUEST',
      });
      const next = await new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const body = JSON.stringify({ query: '{ viewer { role } }' });
        const r = http.request({
          agent,
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/graphql',
          headers: { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        });
        r.on('socket', (s) => sockets.push(s));
        r.on('error', reject);
        r.on('response', (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: b, reused: r.reusedSocket }));
        });
        r.end(body);
      });
      expect(next.status).toBe(200);
      expect(JSON.parse(next.body)).toEqual({ data: { viewer: { role: 'ADMIN' } } });
      expect(next.reused).toBe(true);
      expect(sockets[1]).toBe(sockets[0]);
    } finally {
      agent.destroy();
    }
  });
});
