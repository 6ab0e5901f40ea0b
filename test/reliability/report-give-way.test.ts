import request from 'supertest';
import { drivers } from '../helpers/db';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { upload } from '../helpers/ingest';
import { captureLog } from '../helpers/logs';
import { LogUploadWorker } from '../../src/modules/log-upload/log-upload.worker';
import type { LogUploadProcessor } from '../../src/modules/log-upload/log-upload.processor';

const DASHBOARD = `query Dash { dashboard(from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z", timeZone: "UTC") { inboundHits outboundHits } }`;
const CAPTURE = '1700000000.000001 IP 10.0.0.5.51000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0\n';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Uploads first (REPORT_GIVE_WAY_MS): while an upload job runs, a report request waits (a bounded time) before it
 * is admitted, and the report threads before each grouping (report-threads.test.ts): on a machine with fewer cores
 * than busy threads, report work would otherwise slow every upload down (bench/load.bench.ts).
 */
describe.each(drivers)('reports give way to upload jobs (%s)', (driver) => {
  let t: TestApp | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  const post = (app: TestApp, query: string) =>
    request(app.http.app).post('/graphql').set('content-type', 'application/json').set('authorization', `Bearer ${app.keys.admin}`).send({ query });
  const waitedSeconds = async (app: TestApp, at: string) => {
    const text = await app.services.metrics.registry.getSingleMetricAsString('pcap_defense_report_give_way_seconds_total');
    const m = new RegExp(`at="${at}"} ([0-9.e-]+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };

  it('admits a report once the job running ends, and counts the wait', async () => {
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

  it('admits a report after its bound however long the job runs, and not at all later than that', async () => {
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

  it('the worker raises the signal for each job, from claim to commit, and lowers it when the job ends or fails', async () => {
    const app = (t = await createTestApp(driver, { REPORT_GIVE_WAY_MS: '250' }));
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await app.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    const giveWay = app.services.giveWay!;
    const seen: number[] = [];
    let fail = false;
    const real = app.services.processor;
    // The real processor, watched: the signal as each job starts, and a job that throws.
    const processor = Object.assign(Object.create(real) as LogUploadProcessor, {
      process: async (...args: Parameters<LogUploadProcessor['process']>) => {
        seen.push(giveWay.active);
        if (fail) throw new Error('injected processing failure');
        return real.process(...args);
      },
    });
    const log = captureLog();
    const worker = new LogUploadWorker(app.services.queue, processor, { leaseMs: 60_000, pollMs: 20, retryBaseMs: 5, giveWay }, log.logger);
    worker.start();
    const settled = async (id: string) => {
      for (;;) {
        const u = ok(await app.gql(`query($id: ID!) { logUpload(id: $id) { status } }`, { id })).logUpload;
        if (u.status === 'COMPLETED' || u.status === 'FAILED') return u.status;
        await sleep(20);
      }
    };
    try {
      const first = ok(await upload(app, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.logUpload.id;
      worker.notify();
      expect(await settled(first)).toBe('COMPLETED');
      expect(seen).toEqual([1]);
      expect(giveWay.active).toBe(0);
      fail = true;
      const second = ok(await upload(app, `${CAPTURE}# another file\n`, { deviceNickname: 'edge' })).logUploadCreate.logUpload.id;
      worker.notify();
      expect(await settled(second)).toBe('FAILED');
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen.every((n) => n === 1)).toBe(true);
      expect(giveWay.active).toBe(0);
    } finally {
      await worker.stop(false);
    }
  });
});
