import crypto from 'node:crypto';
import { threadTime } from '../../../src/common/threads/thread-priority';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { upload } from '../../helpers/ingest';
import { captureLog, CapturedLog } from '../../helpers/logs';
import { LogUploadWorker } from '../../../src/modules/log-upload/log-upload.worker';
import { idOfType } from '../../../src/common/ids/global-id';

const line = (n: number) => `17000${String(n).padStart(5, '0')}.000000 IP 10.0.0.1.1000 > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n`;
/** Printed without -tt: accepted, then FAILED by the worker. */
const TIME_OF_DAY = '12:34:56.789012 IP 10.0.0.1.1000 > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n'.repeat(3);
const md5 = (b: string | Buffer) => crypto.createHash('md5').update(b).digest('hex');
const MAX_UPLOAD = 4_000;

/** The request line is written when the response closes, a moment after the client has it. */
async function lineWhere(log: CapturedLog, pred: (l: Record<string, any>) => boolean, timeoutMs = 2_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = log.lines.find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no log line matched; last lines: ${JSON.stringify(log.lines.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(drivers)('structured logs (%s)', (driver) => {
  let t: TestApp;
  let log: CapturedLog;
  let deviceId: string;
  let n = 0;

  beforeAll(async () => {
    log = captureLog('trace');
    t = await createTestApp(driver, { MAX_UPLOAD_BYTES: String(MAX_UPLOAD) }, { logger: log.logger });
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    deviceId = ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'gw', ipType: 'STATIC', ipAddress: '93.184.216.34', policy },
      }),
    ).deviceCreate.device.id;
  });
  afterAll(() => t.close());

  const form = (body: string, fields: Record<string, string>, key?: string) => {
    const req = request(t.http.app).post('/logupload');
    if (key) req.set('authorization', `Bearer ${key}`);
    req
      .attach('upfile', Buffer.from(body), 'capture.txt')
      .field('upfile_size', String(Buffer.byteLength(body)))
      .field('md5_client', md5(body));
    for (const [k, v] of Object.entries(fields)) req.field(k, v);
    return req;
  };

  it('writes one line per request with its id (honoured and echoed), account, operation, status, duration and route', async () => {
    const res = await request(t.http.app)
      .post('/graphql')
      .set('authorization', `Bearer ${t.keys.analyst}`)
      .set('x-request-id', 'lb-7f3a.42')
      .send({ query: 'query Who { viewer { role } }', operationName: 'Who' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('lb-7f3a.42');
    const l = await lineWhere(log, (x) => x.event === 'http.request' && x.requestId === 'lb-7f3a.42');
    expect(l).toMatchObject({
      msg: 'request',
      level: 30,
      method: 'POST',
      route: '/graphql',
      status: 200,
      accountId: t.accountId,
      operationName: 'Who',
      operationType: 'query',
    });
    expect(typeof l.apiKeyId).toBe('number');
    expect(l.durationMs).toBeGreaterThanOrEqual(0);

    const m = await request(t.http.app)
      .post('/graphql')
      .set('authorization', `Bearer ${t.keys.admin}`)
      .send({ query: 'mutation Make { policyCreate(input: { name: "q" }) { policy { id } } }' });
    const generated = m.headers['x-request-id'];
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(await lineWhere(log, (x) => x.event === 'http.request' && x.requestId === generated)).toMatchObject({
      operationName: 'Make',
      operationType: 'mutation',
      status: 200,
    });

    // An id that is not a plain token is replaced (it would land in every log line); no key: 401, no account.
    const odd = await request(t.http.app)
      .post('/graphql')
      .set('x-request-id', 'a b\tc')
      .send({ query: 'query Anon { viewer { role } }', operationName: 'Anon' });
    expect(odd.status).toBe(401);
    expect(odd.headers['x-request-id']).not.toBe('a b\tc');
    expect(await lineWhere(log, (x) => x.requestId === odd.headers['x-request-id'])).toMatchObject({
      status: 401,
      accountId: null,
      operationName: 'Anon',
      route: '/graphql',
    });

    const other = await request(t.http.app).get('/nowhere/else?token=x');
    expect(await lineWhere(log, (x) => x.requestId === other.headers['x-request-id'])).toMatchObject({ status: 404, route: 'other', method: 'GET' });
  });

  it('logs GraphQL uploads accepted, duplicate and refused, with reason and HTTP status', async () => {
    const body = line(++n);
    const res = await upload(t, body, { device: deviceId, md5: md5(body) }, { key: t.keys.uploader });
    const id = idOfType(res.data.logUploadCreate.logUpload.id, 'LogUpload');
    const accepted = await lineWhere(log, (x) => x.event === 'upload.accepted' && x.uploadId === id);
    expect(accepted).toMatchObject({
      via: 'graphql',
      requestId: expect.any(String),
      accountId: t.accountId,
      apiKeyId: expect.any(Number),
      device: idOfType(deviceId, 'Device'),
      bytes: Buffer.byteLength(body),
      status: 200,
    });
    // The upload line and the request line share the request id.
    expect(await lineWhere(log, (x) => x.event === 'http.request' && x.requestId === accepted.requestId)).toMatchObject({
      operationType: 'mutation',
      status: 200,
    });

    await upload(t, body, { device: deviceId }, { key: t.keys.uploader });
    expect(await lineWhere(log, (x) => x.event === 'upload.duplicate' && x.uploadId === id)).toMatchObject({ via: 'graphql', status: 200 });

    const other = line(++n);
    await upload(t, other, { device: deviceId, md5: md5('something else') }, { key: t.keys.uploader });
    expect(await lineWhere(log, (x) => x.event === 'upload.refused' && x.code === 'CHECKSUM_MISMATCH')).toMatchObject({
      via: 'graphql',
      status: 200,
      device: idOfType(deviceId, 'Device'),
      reason: expect.stringContaining('MD5'),
      msg: 'upload refused',
    });
    await upload(t, line(++n), { deviceNickname: 'nobody' }, { key: t.keys.uploader });
    expect(await lineWhere(log, (x) => x.event === 'upload.refused' && x.code === 'NOT_FOUND' && x.via === 'graphql')).toMatchObject({
      status: 200,
      device: null,
    });

    const big = await upload(t, line(++n).repeat(60), { device: deviceId }, { key: t.keys.uploader });
    expect(big.status).toBe(413);
    expect(await lineWhere(log, (x) => x.event === 'upload.refused' && x.code === 'PAYLOAD_TOO_LARGE' && x.via === 'graphql')).toMatchObject({ status: 413 });
  });

  it('logs form uploads accepted and refused (with the HTTP status), and the request line carries the account', async () => {
    const body = line(++n);
    const res = await form(body, { nickname: 'gw', token: t.keys.uploader });
    expect(res.status).toBe(201);
    const accepted = await lineWhere(log, (x) => x.event === 'upload.accepted' && x.via === 'form');
    expect(accepted).toMatchObject({
      status: 201,
      accountId: t.accountId,
      device: idOfType(deviceId, 'Device'),
      bytes: Buffer.byteLength(body),
      requestId: res.headers['x-request-id'],
    });
    expect(await lineWhere(log, (x) => x.event === 'http.request' && x.requestId === res.headers['x-request-id'])).toMatchObject({
      route: '/logupload',
      status: 201,
      accountId: t.accountId,
      operationName: null,
    });

    const refused = await form(line(++n), { nickname: 'gw' }, `pcd_${'x'.repeat(43)}`);
    expect(refused.status).toBe(401);
    expect(await lineWhere(log, (x) => x.event === 'upload.refused' && x.via === 'form' && x.requestId === refused.headers['x-request-id'])).toMatchObject({
      code: 'UNAUTHENTICATED',
      status: 401,
      accountId: null,
      reason: expect.any(String),
    });
    const mismatch = await form(line(++n), { nickname: 'gw', upfile_size: '1' }, t.keys.uploader);
    expect(mismatch.status).toBe(422);
    expect(await lineWhere(log, (x) => x.event === 'upload.refused' && x.requestId === mismatch.headers['x-request-id'])).toMatchObject({
      code: 'SIZE_MISMATCH',
      status: 422,
      accountId: t.accountId,
      device: idOfType(deviceId, 'Device'),
    });
  });

  it('logs job claims, lease expiry and retries, and processing completed/failed with counts, duration and reason', async () => {
    const good = line(++n) + line(++n);
    const goodId = idOfType((await upload(t, good, { device: deviceId })).data.logUploadCreate.logUpload.id, 'LogUpload');
    const badId = idOfType((await upload(t, TIME_OF_DAY, { device: deviceId })).data.logUploadCreate.logUpload.id, 'LogUpload');
    const strandedId = idOfType((await upload(t, line(++n), { device: deviceId })).data.logUploadCreate.logUpload.id, 'LogUpload');
    // A worker that died holding a job: claimed long ago, its lease long expired.
    await t.dataSource.query(`UPDATE log_upload SET status = 'PROCESSING', lease_owner = 'dead-worker', lease_expires_at = ?, attempts = 1 WHERE id = ?`, [
      Date.now() - 60_000,
      strandedId,
    ]);

    const worker = new LogUploadWorker(t.services.queue, t.services.processor, { leaseMs: 60_000, pollMs: 20 }, log.logger);
    worker.start();
    try {
      const completed = await lineWhere(log, (x) => x.event === 'upload.completed' && x.uploadId === goodId, 10_000);
      expect(completed).toMatchObject({
        device: idOfType(deviceId, 'Device'),
        bytes: Buffer.byteLength(good),
        lines: 2,
        packets: 2,
        connections: 1,
        hits: 0,
        attempt: 1,
      });
      expect(completed.durationMs).toBeGreaterThanOrEqual(0);
      // Where the run's time went: each phase in whole ms, together at most the run's duration (each is rounded).
      const phases = completed.phasesMs as Record<string, number>;
      expect(Object.keys(phases)).toEqual(['prepare', 'parse', 'match', 'stage', 'commit']);
      for (const v of Object.values(phases)) expect(Number.isInteger(v) && v >= 0).toBe(true);
      expect(Object.values(phases).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(completed.durationMs + 5);
      // Parsed on a parse thread: that thread's time on a core and waiting for one, where Linux tells it.
      if (t.services.parsers && threadTime() !== null) {
        const thread = completed.parseThreadMs as { cpu: number; queued: number };
        expect(Object.keys(thread)).toEqual(['cpu', 'queued']);
        for (const v of Object.values(thread)) expect(Number.isInteger(v) && v >= 0).toBe(true);
      } else expect(completed.parseThreadMs).toBeUndefined();
      expect(await lineWhere(log, (x) => x.event === 'job.claimed' && x.uploadId === goodId)).toMatchObject({ attempt: 1, retry: false, recovered: false });

      expect(await lineWhere(log, (x) => x.event === 'upload.failed' && x.uploadId === badId, 10_000)).toMatchObject({
        reason: expect.stringMatching(/-tt/),
        device: idOfType(deviceId, 'Device'),
        lines: 3,
      });

      expect(await lineWhere(log, (x) => x.event === 'job.lease_expired' && x.uploadId === strandedId, 10_000)).toMatchObject({ level: 40, attempt: 2 });
      expect(await lineWhere(log, (x) => x.event === 'job.claimed' && x.uploadId === strandedId)).toMatchObject({ attempt: 2, retry: true, recovered: true });
      await lineWhere(log, (x) => x.event === 'upload.completed' && x.uploadId === strandedId, 10_000);
    } finally {
      await worker.stop(false);
    }
  });

  it('never logs a secret, even at trace level, over a flow of key creation, uploads, refusals and an export', async () => {
    const secrets = [t.keys.admin, t.keys.analyst, t.keys.uploader, t.keys.otherAdmin];
    const created = ok(await t.gql(`mutation { apiKeyCreate(input: { name: "capture host", role: UPLOADER }) { secret userErrors { message } } }`)).apiKeyCreate
      .secret as string;
    secrets.push(created);
    const wrong = `pcd_${crypto.randomBytes(32).toString('base64url')}`;
    secrets.push(wrong);

    const body = line(++n);
    expect((await upload(t, body, { device: deviceId, md5: md5(body) }, { key: created })).status).toBe(200);
    expect((await form(line(++n), { nickname: 'gw', token: created })).status).toBe(201);
    expect((await form(line(++n), { nickname: 'gw', token: wrong })).status).toBe(401);
    expect((await form(line(++n), { nickname: 'gw' }, wrong)).status).toBe(401);
    expect((await upload(t, line(++n), { device: deviceId }, { key: wrong })).status).toBe(401);
    expect((await request(t.http.app).post('/graphql').set('authorization', `Bearer ${wrong}`).send({ query: '{ viewer { role } }' })).status).toBe(401);
    // Malformed header: the whole value must not be echoed either.
    expect((await request(t.http.app).post('/graphql').set('authorization', `Token ${wrong}`).send({ query: '{ viewer { role } }' })).status).toBe(401);
    // Alert destinations' secrets: a webhook's signing secret (created and rotated) and an SMTP password given in variables.
    const smtpPassword = `smtp-${crypto.randomBytes(16).toString('hex')}`;
    secrets.push(smtpPassword);
    const hook = ok(
      await t.gql(
        `mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } secret userErrors { message } } }`,
        {
          i: { name: 'hook', webhook: { url: 'https://192.0.2.10/hook' } },
        },
      ),
    ).alertDestinationCreate;
    expect(hook.userErrors).toEqual([]);
    secrets.push(hook.secret);
    const rotated = ok(
      await t.gql(`mutation($i: AlertDestinationUpdateInput!) { alertDestinationUpdate(input: $i) { secret userErrors { message } } }`, {
        i: { id: hook.alertDestination.id, rotateSecret: true },
      }),
    ).alertDestinationUpdate;
    expect(rotated.userErrors).toEqual([]);
    secrets.push(rotated.secret);
    const mail = ok(
      await t.gql(`mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { userErrors { message } } }`, {
        i: { name: 'mail', email: { host: '192.0.2.25', port: 587, username: 'alerts', password: smtpPassword, from: 'a@example.com', to: ['b@example.com'] } },
      }),
    ).alertDestinationCreate;
    expect(mail.userErrors).toEqual([]);
    const exported = await request(t.http.app)
      .get('/export/flow-hits.ndjson')
      .query({ preset: 'LAST_24_HOURS' })
      .set('authorization', `Bearer ${t.keys.analyst}`)
      .set('x-request-id', 'export-1');
    expect(exported.status).toBe(200);
    await lineWhere(log, (x) => x.event === 'http.request' && x.requestId === 'export-1');
    await lineWhere(log, (x) => x.event === 'export.finished' && x.requestId === 'export-1');

    const text = log.text();
    expect(log.lines.length).toBeGreaterThan(30);
    for (const secret of secrets) {
      expect(text).not.toContain(secret);
      // The part after the pcd_ prefix, alone or split differently.
      expect(text).not.toContain(secret.slice(4));
      expect(text).not.toContain(`Bearer ${secret}`);
    }
    expect(text).not.toMatch(/pcd_[A-Za-z0-9_-]{20,}/);
    expect(text.toLowerCase()).not.toContain('bearer ');
  });
});
