import request from 'supertest';
import { drivers } from '../helpers/db';
import { createTestApp, ok, TestApp } from '../helpers/app';
import path from 'node:path';
import { processQueued, upload } from '../helpers/ingest';

const DASHBOARD = `query Dash { dashboard(from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z", timeZone: "UTC") { inboundHits outboundHits } }`;
const CAPTURE = '1700000000.000001 IP 10.0.0.5.51000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0\n';
const FAULTY = path.resolve(__dirname, '../helpers/faulty-parse-thread.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Uploads first (REPORT_GIVE_WAY_MS): while an upload parses, a report request waits (a bounded time) before it
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
