import http from 'node:http';
import { drivers } from '../../helpers/db';
import { generateCapture } from '../../helpers/capture';
import { ChildServer, gqlHttp, startChild, uploadHttp } from '../../helpers/child-process';
import { ChildDatabase, createChildDatabase, seedAccount } from '../../helpers/child-db';
import { idOfType } from '../../../src/common/ids/global-id';

const UPLOAD = `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "late", file: $f }) { logUpload { id status } userErrors { message } } }`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function multipartUpload(content: Buffer): { contentType: string; body: Buffer } {
  const b = 'pcd-shutdown-boundary';
  const field = (name: string, value: string) => `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  return {
    contentType: `multipart/form-data; boundary=${b}`,
    body: Buffer.concat([
      Buffer.from(field('operations', JSON.stringify({ query: UPLOAD, variables: { f: null } })) + field('map', JSON.stringify({ 0: ['variables.f'] }))),
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="0"; filename="late.txt"\r\nContent-Type: text/plain\r\n\r\n`),
      content,
      Buffer.from(`\r\n--${b}--\r\n`),
    ]),
  };
}

/** An upload whose body is sent in two steps; `answer` settles with the server's reply (or the socket's fate). */
function slowUpload(port: number, key: string, content: Buffer) {
  const { contentType, body } = multipartUpload(content);
  const req = http.request({
    port,
    host: '127.0.0.1',
    method: 'POST',
    path: '/graphql',
    agent: false,
    headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true', 'content-type': contentType, 'content-length': body.length },
  });
  const answer = new Promise<{ status: number; body: any } | { error: string }>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
  const half = Math.floor(body.length / 2);
  req.write(body.subarray(0, half));
  return { answer, finish: () => req.end(body.subarray(half)) };
}

/** True once a new connection to the port is refused. */
async function refusesNewConnections(port: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    const refused = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) }).then(
      () => false,
      (err) => /ECONNREFUSED/.test(String(err?.cause?.code ?? err?.cause ?? err)),
    );
    if (refused) return true;
    await sleep(50);
  }
  return false;
}

async function statusOf(url: string, key: string, id: string): Promise<any> {
  return (await gqlHttp(url, key, `query($id: ID!) { logUpload(id: $id) { status attempts hits } }`, { id })).logUpload;
}

describe.each(drivers)('graceful shutdown on SIGTERM (%s)', (driver) => {
  let db: ChildDatabase;
  let child: ChildServer | null = null;
  let key: string;
  const capture = generateCapture(11, 6000, 12);
  const stopChild = async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
  };

  beforeAll(async () => {
    db = await createChildDatabase(driver);
  });
  afterAll(async () => {
    await stopChild();
    await db.drop();
  });

  it('stops accepting, finishes the upload in flight with its acknowledgment, hands the job back, and another process takes it at once', async () => {
    // A lease far longer than the test: only a handed-back job can be taken again within it.
    const env = { ...db.env, WORKER_LEASE_MS: '600000', WORKER_POLL_MS: '100', SHUTDOWN_TIMEOUT_MS: '10000' };
    child = await startChild({ ...env, PROGRESS_DELAY_MS: '500' });
    key = child.secret!;
    await seedAccount(child.url, key, capture.badAddresses, [
      { nickname: 'busy', ip: '8.8.8.8' },
      { nickname: 'late', ip: '8.8.4.4' },
    ]);
    const busy = await uploadHttp(child.url, key, 'busy', capture.text);
    expect(busy.userErrors).toEqual([]);
    const busyId = busy.logUpload.id as string;
    for (let i = 0; (await statusOf(child.url, key, busyId)).status !== 'PROCESSING'; i++) {
      if (i > 200) throw new Error('the job was never claimed');
      await sleep(50);
    }

    // An upload in flight: head and half the body sent.
    const late = slowUpload(child.port, key, generateCapture(12, 50, 4).text);
    await sleep(1_000);
    const termAt = Date.now();
    child.proc.kill('SIGTERM');
    expect(await refusesNewConnections(child.port, 3_000)).toBe(true);
    expect(child.proc.exitCode).toBeNull();
    late.finish();
    const reply = await late.answer;
    expect(reply).toMatchObject({ status: 200, body: { data: { logUploadCreate: { userErrors: [], logUpload: { status: 'QUEUED' } } } } });
    const lateId = (reply as { body: any }).body.data.logUploadCreate.logUpload.id as string;
    const exit = await child.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - termAt).toBeLessThan(10_000);

    // The job is back in the queue as if never claimed; the acknowledged upload is queued.
    const rows = await db.query<{ id: number; status: string; attempts: number; lease_owner: string | null; lease_expires_at: number | null }>(
      'SELECT id, status, attempts, lease_owner, lease_expires_at FROM log_upload ORDER BY id',
    );
    expect(rows.map((r) => ({ ...r, id: Number(r.id), attempts: Number(r.attempts) }))).toEqual([
      { id: idOfType(busyId, 'LogUpload'), status: 'QUEUED', attempts: 0, lease_owner: null, lease_expires_at: null },
      { id: idOfType(lateId, 'LogUpload'), status: 'QUEUED', attempts: 0, lease_owner: null, lease_expires_at: null },
    ]);

    child = await startChild(env);
    const started = Date.now();
    for (;;) {
      const [a, b] = [await statusOf(child.url, key, busyId), await statusOf(child.url, key, lateId)];
      if (a.status === 'COMPLETED' && b.status === 'COMPLETED') {
        expect(a).toEqual({ status: 'COMPLETED', attempts: 1, hits: capture.badFlows });
        expect(b.attempts).toBe(1);
        break;
      }
      if (Date.now() - started > 30_000) throw new Error(`not taken over: ${JSON.stringify([a, b])}`);
      await sleep(100);
    }
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('exits within SHUTDOWN_TIMEOUT_MS when a request never finishes, storing nothing of it', async () => {
    child = await startChild({ ...db.env, SHUTDOWN_TIMEOUT_MS: '1500' });
    const before = (await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM log_upload'))[0].n;
    const stalled = slowUpload(child.port, key, generateCapture(13, 50, 4).text);
    await sleep(500);
    const termAt = Date.now();
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    const took = Date.now() - termAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeGreaterThanOrEqual(1_400);
    expect(took).toBeLessThan(6_000);
    expect(await stalled.answer).toHaveProperty('error');
    expect(Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM log_upload'))[0].n)).toBe(Number(before));
  });
});
