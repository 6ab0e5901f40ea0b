import path from 'node:path';
import request from 'supertest';
import { drivers } from '../helpers/db';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { processQueued, upload } from '../helpers/ingest';
import { Role } from '../../src/modules/account/account.enums';
import { ConfigError, loadConfig } from '../../src/config/config';

const DASHBOARD = `query Dash { dashboard(from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z", timeZone: "UTC") { inboundHits outboundHits } }`;
const CAPTURE = '1700000000.000001 IP 10.0.0.5.51000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0\n';
const FAULTY = path.resolve(__dirname, '../helpers/faulty-parse-thread.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe.each(drivers)('report admission control (%s)', (driver) => {
  let t: TestApp | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  const post = (app: TestApp, query: string) =>
    request(app.http.app).post('/graphql').set('content-type', 'application/json').set('authorization', `Bearer ${app.keys.admin}`).send({ query });

  const expectOverloaded = (res: request.Response) => {
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0].extensions).toEqual({ code: 'OVERLOADED' });
    expect(res.body.errors[0].message).toMatch(/busy.*Retry in 1 s/);
    expect(res.body.data).toBeUndefined();
  };

  it('answers 503 + Retry-After when every slot is taken and the queue is full, serves the rest, and recovers after', async () => {
    const app = (t = await createTestApp(driver, { REPORT_CONCURRENCY: '1', REPORT_QUEUE: '0' }));
    const held = await app.services.admission.acquire();
    expectOverloaded(await post(app, DASHBOARD));
    // Not report work: answered as usual while reports are refused.
    expect((await post(app, '{ __typename }')).status).toBe(200);
    expect((await request(app.http.app).get('/healthz')).status).toBe(200);
    expect([200, 503]).toContain((await request(app.http.app).get('/readyz')).status);
    held();
    const after = await post(app, DASHBOARD);
    expect(after.status).toBe(200);
    expect(after.body.data.dashboard).toEqual({ inboundHits: 0, outboundHits: 0 });
    expect(app.services.admission.inFlight).toBe(0);
    const metrics = await app.services.metrics.registry.getSingleMetricAsString('pcap_defense_reports_refused_total');
    expect(metrics).toContain('reason="queue_full"} 1');
  });

  it('queues up to REPORT_QUEUE requests behind the running ones and refuses the next; the queued one is served when a slot frees', async () => {
    const app = (t = await createTestApp(driver, { REPORT_CONCURRENCY: '1', REPORT_QUEUE: '1', REPORT_QUEUE_TIMEOUT_MS: '60000' }));
    const held = await app.services.admission.acquire();
    const queued = post(app, DASHBOARD).then((r) => r);
    await until('the request to queue', () => app.services.admission.queued === 1);
    expectOverloaded(await post(app, DASHBOARD));
    held();
    const served = await queued;
    expect(served.status).toBe(200);
    expect(served.body.data.dashboard.inboundHits).toBe(0);
    await until('the slot to be given back', () => app.services.admission.inFlight === 0);
  });

  it('refuses a request that waited REPORT_QUEUE_TIMEOUT_MS without a slot', async () => {
    const app = (t = await createTestApp(driver, { REPORT_CONCURRENCY: '1', REPORT_QUEUE: '5', REPORT_QUEUE_TIMEOUT_MS: '50' }));
    const held = await app.services.admission.acquire();
    expectOverloaded(await post(app, DASHBOARD));
    expect(app.services.admission.queued).toBe(0);
    held();
    expect((await post(app, DASHBOARD)).status).toBe(200);
  });

  it('refuses to queue report work while the event loop has just stalled past REPORT_MAX_EVENT_LOOP_LAG_MS, and queues it again once the loop runs freely', async () => {
    const app = (t = await createTestApp(driver, {
      REPORT_CONCURRENCY: '1',
      REPORT_QUEUE: '5',
      REPORT_QUEUE_TIMEOUT_MS: '60000',
      REPORT_MAX_EVENT_LOOP_LAG_MS: '100',
    }));
    // A lone client is served whatever the lag: the stall may be its own last report.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    expect((await post(app, DASHBOARD)).status).toBe(200);
    const held = await app.services.admission.acquire();
    // A synchronous stall of the whole process, as a long synchronous report or parse would cause.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    expectOverloaded(await post(app, DASHBOARD));
    expect(app.services.admission.queued).toBe(0);
    await until('the stall to age out of the lag window', () => app.services.admission.lagMs <= 100);
    const queued = post(app, DASHBOARD).then((r) => r);
    await until('the request to queue', () => app.services.admission.queued === 1);
    held();
    expect((await queued).status).toBe(200);
    const metrics = await app.services.metrics.registry.getSingleMetricAsString('pcap_defense_reports_refused_total');
    expect(metrics).toContain('reason="event_loop_lag"} 1');
  });

  it('gives the slot back when the request is refused by the rate limit meanwhile (429): nothing leaks', async () => {
    const app = (t = await createTestApp(driver, { REPORT_CONCURRENCY: '1', REPORT_QUEUE: '0', RATE_LIMIT_REPORTS_PER_MINUTE: '1' }));
    expect((await post(app, DASHBOARD)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await post(app, DASHBOARD)).status).toBe(429);
    await until('every slot to be given back', () => app.services.admission.inFlight === 0);
    const other = await app.services.accounts.createApiKey(app.accountId, { name: 'other', role: Role.ANALYST });
    if (!other.ok) throw new Error('key');
    const res = await request(app.http.app)
      .post('/graphql')
      .set('content-type', 'application/json')
      .set('authorization', `Bearer ${other.value.secret}`)
      .send({ query: DASHBOARD });
    expect(res.status).toBe(200);
  });

  it('never queues without bound: with every slot held, a burst gets as many 503s as exceed the queue', async () => {
    const app = (t = await createTestApp(driver, { REPORT_CONCURRENCY: '1', REPORT_QUEUE: '3', REPORT_QUEUE_TIMEOUT_MS: '60000' }));
    const held = await app.services.admission.acquire();
    let refused = 0;
    const burst = Array.from({ length: 10 }, () =>
      post(app, DASHBOARD).then((r) => {
        if (r.status === 503) refused++;
        return r;
      }),
    );
    // The seven beyond the queue are answered while the slot is still held.
    await until('the refusals', () => refused === 7 && app.services.admission.queued === 3);
    held();
    const answers = await Promise.all(burst);
    expect(answers.filter((r) => r.status === 503)).toHaveLength(7);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(3);
  });

  const exportCsv = (app: TestApp) =>
    request(app.http.app)
      .get('/export/flow-hits.csv')
      .query({ from: '2025-01-01T00:00:00Z', to: '2025-02-01T00:00:00Z' })
      .set('authorization', `Bearer ${app.keys.admin}`);

  it('puts /export/* downloads under admission in slots of their own: refused with 503 + Retry-After when full, reports unaffected, slot given back when the download ends', async () => {
    const app = (t = await createTestApp(driver, { EXPORT_CONCURRENCY: '1', EXPORT_QUEUE: '0', REPORT_CONCURRENCY: '1', REPORT_QUEUE: '0' }));
    const held = await app.services.exportAdmission.acquire();
    const refused = await exportCsv(app);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toEqual({ error: 'The server is busy with other exports; nothing was sent. Retry in 1 s.', code: 'OVERLOADED', reason: 'queue_full' });
    // Reports have their own slots: a long download does not starve them, nor they it.
    expect((await post(app, DASHBOARD)).status).toBe(200);
    held();
    const reportHeld = await app.services.admission.acquire();
    const served = await exportCsv(app);
    reportHeld();
    expect(served.status).toBe(200);
    expect(served.text.split('\n')[0]).toMatch(/^id,first_seen_at,/);
    await until('the export slot to be given back', () => app.services.exportAdmission.inFlight === 0);
    expect(await app.services.metrics.registry.getSingleMetricAsString('pcap_defense_exports_refused_total')).toContain('reason="queue_full"} 1');
    // Refused before any slot is taken: no key, or a bad filter.
    const held2 = await app.services.exportAdmission.acquire();
    expect((await request(app.http.app).get('/export/flow-hits.csv')).status).toBe(401);
    held2();
  });

  it('queues a download for a slot up to EXPORT_QUEUE, and gives the slot of a client that left while waiting to the next', async () => {
    const app = (t = await createTestApp(driver, { EXPORT_CONCURRENCY: '1', EXPORT_QUEUE: '1', REPORT_QUEUE_TIMEOUT_MS: '60000' }));
    const held = await app.services.exportAdmission.acquire();
    const server = app.http.app.listen(0);
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const http = await import('node:http');
      // A client that gives up while its download waits for a slot.
      const leaving = http.get({
        port,
        path: '/export/flow-hits.ndjson?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z',
        headers: { authorization: `Bearer ${app.keys.admin}` },
      });
      leaving.on('error', () => undefined);
      await until('the download to queue', () => app.services.exportAdmission.queued === 1);
      expect((await exportCsv(app)).status).toBe(503);
      leaving.destroy();
      await sleep(50);
      held();
      await until('the slot of the client that left to be given back', () => app.services.exportAdmission.inFlight === 0);
      expect((await exportCsv(app)).status).toBe(200);
    } finally {
      server.close();
    }
  });

  /**
   * Uploads first (REPORT_GIVE_WAY_MS): while an upload parses, a report request waits (a bounded time) before it is
   * admitted, and the report threads before each grouping (report-threads.test.ts): on a machine with fewer cores
   * than busy threads, report work would otherwise slow every upload down (bench/load.bench.ts).
   */
  describe('giving way to uploads parsing', () => {
    const waitedSeconds = async (app: TestApp, at: string) => {
      const text = await app.services.metrics.registry.getSingleMetricAsString('pcap_defense_report_give_way_seconds_total');
      const m = new RegExp(`at="${at}"} ([0-9.e-]+)`).exec(text);
      return m ? Number(m[1]) : 0;
    };

    it('admits a report once the upload parsing ends, and counts the wait', async () => {
      const app = (t = await createTestApp(driver, { REPORT_GIVE_WAY_MS: '10000' }));
      const leave = app.services.giveWay!.enter();
      let answered = false;
      const pending = post(app, DASHBOARD).then((r) => ((answered = true), r));
      await sleep(300);
      expect(answered).toBe(false);
      // Not report work: served meanwhile.
      expect((await post(app, '{ __typename }')).status).toBe(200);
      expect((await request(app.http.app).get('/healthz')).status).toBe(200);
      leave();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.body.data.dashboard).toEqual({ inboundHits: 0, outboundHits: 0 });
      expect(await waitedSeconds(app, 'admission')).toBeGreaterThanOrEqual(0.25);
    });

    it('admits a report after its bound however long the parse runs, and not later than that', async () => {
      const app = (t = await createTestApp(driver, { REPORT_GIVE_WAY_MS: '200' }));
      const leave = app.services.giveWay!.enter();
      try {
        const t0 = performance.now();
        const res = await post(app, DASHBOARD);
        const took = performance.now() - t0;
        expect(res.status).toBe(200);
        expect(took).toBeGreaterThanOrEqual(195);
        expect(took).toBeLessThan(5_000);
        const waited = await waitedSeconds(app, 'admission');
        expect(waited).toBeGreaterThanOrEqual(0.195);
        expect(waited).toBeLessThan(1);
      } finally {
        leave();
      }
      // Nothing running: no wait.
      const before = await waitedSeconds(app, 'admission');
      expect((await post(app, DASHBOARD)).status).toBe(200);
      expect(await waitedSeconds(app, 'admission')).toBe(before);
    });

    it('REPORT_GIVE_WAY_MS=0: reports never wait', async () => {
      const app = (t = await createTestApp(driver, { REPORT_GIVE_WAY_MS: '0' }));
      expect(app.services.giveWay).toBeNull();
      expect((await post(app, DASHBOARD)).status).toBe(200);
    });

    it('the processor raises the signal while an upload parses, and lowers it when the parse ends, fails or throws', async () => {
      const faults = new Int32Array(new SharedArrayBuffer(4));
      const seen: number[] = [];
      const app = (t = await createTestApp(
        driver,
        { REPORT_GIVE_WAY_MS: '250' },
        {
          parseThread: { script: FAULTY, workerData: { mode: 'throw', atBytes: 0, faults } },
          onProgress: () => seen.push(t!.services.giveWay!.active),
        },
      ));
      const q = async (query: string, v: Record<string, unknown> = {}) => ok(await app.gql(query, v));
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      });
      const giveWay = app.services.giveWay!;
      const send = async (text: string) => expect(ok(await upload(app, text, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);

      await send(CAPTURE);
      expect((await processQueued(app.services)).map((o) => o.status)).toEqual(['COMPLETED']);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((n) => n === 1)).toBe(true);
      expect(giveWay.active).toBe(0);

      // Parsed, then refused (no -tt timestamps).
      seen.length = 0;
      await send('12:00:00.000001 IP 10.0.0.5.51000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0\n'.repeat(3000));
      expect((await processQueued(app.services)).map((o) => o.status)).toEqual(['FAILED']);
      expect(seen.every((n) => n === 1)).toBe(true);
      expect(giveWay.active).toBe(0);

      // The parse thread's job throws.
      Atomics.store(faults, 0, 1);
      await send(`${CAPTURE}# another file\n`);
      await expect(processQueued(app.services)).rejects.toThrow('injected parse failure');
      expect(giveWay.active).toBe(0);
    });
  });
});

describe('admission settings', () => {
  it('are read and validated with the rest of the configuration', () => {
    expect(loadConfig({}).admission).toEqual({ concurrency: 2, queue: 32, queueTimeoutMs: 2000, maxLagMs: 200, retryAfterSeconds: 1 });
    expect(
      loadConfig({ REPORT_CONCURRENCY: '3', REPORT_QUEUE: '0', REPORT_QUEUE_TIMEOUT_MS: '500', REPORT_MAX_EVENT_LOOP_LAG_MS: '0', REPORT_RETRY_AFTER_S: '5' })
        .admission,
    ).toEqual({
      concurrency: 3,
      queue: 0,
      queueTimeoutMs: 500,
      maxLagMs: 0,
      retryAfterSeconds: 5,
    });
    // Exports: slots of their own; the wait, the lag check and Retry-After are the reports'.
    expect(loadConfig({}).exportAdmission).toEqual({ concurrency: 2, queue: 4, queueTimeoutMs: 2000, maxLagMs: 200, retryAfterSeconds: 1 });
    expect(loadConfig({ EXPORT_CONCURRENCY: '1', EXPORT_QUEUE: '0', REPORT_RETRY_AFTER_S: '5' }).exportAdmission).toMatchObject({
      concurrency: 1,
      queue: 0,
      retryAfterSeconds: 5,
    });
    for (const [name, value] of [
      ['EXPORT_CONCURRENCY', '0'],
      ['EXPORT_QUEUE', 'x'],
      ['REPORT_CONCURRENCY', '0'],
      ['REPORT_QUEUE', '-1'],
      ['REPORT_QUEUE_TIMEOUT_MS', 'soon'],
      ['REPORT_MAX_EVENT_LOOP_LAG_MS', '1.5'],
      ['REPORT_RETRY_AFTER_S', '0'],
    ]) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(name);
    }
  });
});
