import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { analyticsEnv, removeAnalyticsDir } from './analytics-seed';
import { describeChdb } from './chdb';

/**
 * Reads with ANALYTICS_URL when ClickHouse fails (or its tables are not migrated yet): every read of hits
 * answers ANALYTICS_UNAVAILABLE (the export a 503 before any row), never a number computed without it; and
 * the same reads answer again once it is back. The numbers themselves are tested on ClickHouse by the report
 * suites (hit-report.test.ts, drilldown-export.test.ts, report-executors.property.test.ts).
 */
const BAD = ['198.51.100.7', '203.0.113.9'];
const START = Date.parse('2024-06-01T20:00:00Z');
const WINDOW = { from: '2024-06-01T00:00:00Z', to: '2024-06-03T00:00:00Z' };
const text = `${Array.from(
  { length: 30 },
  (_, i) => `${((START + i * 60_000) / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 3)}.${30000 + i} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length 10`,
).join('\n')}\n`;

const READS = {
  hitReport: `query($f: HitFilter!) { hitReport(filter: $f) { totals { hits internalHosts } byIoc(first: 5) { hits } threats(first: 3) { hits } timeline(bucket: HOUR) { hits } } }`,
  dashboard: `{ dashboard(from: "${WINDOW.from}", to: "${WINDOW.to}", timeZone: "UTC") { outboundHits openHits internalHosts topThreats { hits } trend { hits } } }`,
  flowHits: `query($f: HitFilter!) { flowHits(filter: $f, first: 5) { totalCount edges { node { id firstSeenAt } } } }`,
  iocLookup: `{ iocLookup(address: "${BAD[0]}") { hitCount firstSeenAt } }`,
};

describe.each(drivers)('reads of hits with ClickHouse unavailable (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const analytics = analyticsEnv();
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp(driver, analytics?.env ?? {});
      const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
        .iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      });
      // Accepted, and waiting: with ANALYTICS_URL the hits are written to ClickHouse, whose tables come below.
      ok(await upload(t, text, { deviceNickname: 'hq' }));
    });

    afterAll(async () => {
      jest.restoreAllMocks();
      await t?.close();
      removeAnalyticsDir(analytics?.dir);
    });

    const read = (name: keyof typeof READS) => t.gql(READS[name], { f: WINDOW });
    const exportCsv = () => request(t.http.app).get('/export/flow-hits.csv').query(WINDOW).set('authorization', `Bearer ${t.keys.admin}`);

    async function expectUnavailable(): Promise<void> {
      for (const name of Object.keys(READS) as Array<keyof typeof READS>) {
        const r = await read(name);
        // One error per field that read hits (iocLookup's hitCount and firstSeenAt: two), every one this code.
        const codes = r.errors?.map((e) => e.extensions?.code) ?? [];
        expect({ name, codes: [...new Set(codes)] }).toEqual({ name, codes: ['ANALYTICS_UNAVAILABLE'] });
        expect(r.errors?.[0].message).toMatch(/analytics store \(ClickHouse\) cannot be reached/);
        // No number at all: the field that failed is null, and with it the answer.
        expect(JSON.stringify(r.data ?? null)).not.toMatch(/\d/);
      }
      const csv = await exportCsv();
      expect(csv.status).toBe(503);
      expect(csv.body.code).toBe('ANALYTICS_UNAVAILABLE');
    }

    it('refuses every read before the tables are migrated', async () => {
      expect(t.services.analytics!.ready).toBe(false);
      await expectUnavailable();
    });

    it('answers from ClickHouse once it is up, and ANALYTICS_UNAVAILABLE while its queries fail', async () => {
      await t.services.analytics!.migrate();
      expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
      const up = {
        hitReport: ok(await read('hitReport')).hitReport,
        dashboard: ok(await read('dashboard')).dashboard,
        flowHits: ok(await read('flowHits')).flowHits,
        iocLookup: ok(await read('iocLookup')).iocLookup,
      };
      expect(up.hitReport.totals).toEqual({ hits: 30, internalHosts: 3 });
      expect(up.dashboard.outboundHits).toBe(30);
      expect(up.dashboard.openHits).toBe(30);
      expect(up.flowHits.totalCount).toBe(30);
      expect(up.iocLookup.hitCount).toBe(15);
      expect((await exportCsv()).text.trim().split('\n')).toHaveLength(31);

      const client = t.services.analytics!.client;
      const down = jest.spyOn(client, 'query').mockRejectedValue(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }));
      await expectUnavailable();
      down.mockRestore();

      // Back: the same answers.
      expect(ok(await read('hitReport')).hitReport).toEqual(up.hitReport);
      expect(ok(await read('dashboard')).dashboard).toEqual(up.dashboard);
      expect(ok(await read('flowHits')).flowHits).toEqual(up.flowHits);
      expect(ok(await read('iocLookup')).iocLookup).toEqual(up.iocLookup);
    });
  });
});
