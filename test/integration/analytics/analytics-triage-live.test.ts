import fs from 'node:fs';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { chdbConfig, describeChdb } from './chdb';

/**
 * With ANALYTICS_URL the flow hits live only in ClickHouse: triage (by IDs and by filter) finds them there, and the
 * hitsFound subscription counts them there, as both do on SQL. Triage itself stays in SQL.
 */
const BAD = ['198.51.100.7', '203.0.113.9'];
const START = Date.parse('2024-06-01T20:00:00Z');
const WINDOW = { from: '2024-06-01T00:00:00Z', to: '2024-06-03T00:00:00Z' };

function capture(seed: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const at = START + seed * 3_600_000 + i * 60_000;
    lines.push(`${(at / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 3)}.${30000 + i} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length ${i}`);
  }
  return `${lines.join('\n')}\n`;
}

describe.each(drivers)('triage and hitsFound with the hits in ClickHouse (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const dir = chdbConfig().path;
    let t: TestApp;
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));

    beforeAll(async () => {
      t = await createTestApp(driver, { ANALYTICS_URL: `chdb://${dir}`, REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0' });
      await t.services.analytics!.migrate();
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
        .iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      });
    });

    afterAll(async () => {
      await t?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('triages hits by IDs and by filter, read from ClickHouse (SQL holds none), and another account sees them missing', async () => {
      ok(await upload(t, capture(0), { deviceNickname: 'hq' }));
      expect((await processQueued(t.services))[0]).toMatchObject({ status: 'COMPLETED', hits: 12 });
      expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit`))[0].n)).toBe(0);
      const page = (
        await q(`query($f: HitFilter!) { flowHits(first: 100, filter: $f) { edges { node { id externalIp triageStatus } } } }`, { f: WINDOW })
      ).flowHits.edges.map((e: { node: { id: string; externalIp: string; triageStatus: string } }) => e.node);
      expect(page).toHaveLength(12);
      expect(page.every((h: { triageStatus: string }) => h.triageStatus === 'OPEN')).toBe(true);

      const TRIAGE = `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } userErrors { code field message } } }`;
      const byIds = ok(await t.gql(TRIAGE, { i: { ids: [page[0].id, page[1].id], status: 'ACKNOWLEDGED', note: 'seen' } })).flowHitTriage;
      expect(byIds).toEqual({ result: { count: 2 }, userErrors: [] });
      // Another account's key: the same IDs look missing.
      const foreign = ok(await t.gql(TRIAGE, { i: { ids: [page[2].id], status: 'RESOLVED' } }, t.keys.otherAdmin)).flowHitTriage;
      expect(foreign.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'ids', '0'] })]);

      const byFilter = ok(await t.gql(TRIAGE, { i: { filter: { ...WINDOW, externalAddress: BAD[1] }, status: 'RESOLVED' } })).flowHitTriage;
      expect(byFilter).toEqual({ result: { count: 6 }, userErrors: [] });
      const after = (
        await q(`query($f: HitFilter!) { flowHits(first: 100, filter: $f) { edges { node { id externalIp triageStatus } } } }`, { f: WINDOW })
      ).flowHits.edges.map((e: { node: { id: string; externalIp: string; triageStatus: string } }) => e.node);
      const status = new Map(after.map((h: { id: string; triageStatus: string }) => [h.id, h.triageStatus]));
      expect(status.get(page[0].id)).toBe(page[0].externalIp === BAD[1] ? 'RESOLVED' : 'ACKNOWLEDGED');
      expect(after.filter((h: { externalIp: string }) => h.externalIp === BAD[1]).every((h: { triageStatus: string }) => h.triageStatus === 'RESOLVED')).toBe(
        true,
      );
    });

    it('hitsFound counts an upload’s hits in ClickHouse, with its filter', async () => {
      const all = t.services.live.hitsFound(t.accountId, null);
      const severe = t.services.live.hitsFound(t.accountId, { minSeverity: 5 });
      const first = all.next();
      const none = Promise.race([severe.next().then(() => 'event'), new Promise((r) => setTimeout(() => r('quiet'), 3_000))]);
      // The generators start listening before the upload is processed.
      await new Promise((r) => setTimeout(r, 300));
      ok(await upload(t, capture(5), { deviceNickname: 'hq' }));
      const [outcome] = await processQueued(t.services);
      expect(outcome).toMatchObject({ status: 'COMPLETED', hits: 12 });
      expect((await first).value).toEqual({ uploadId: expect.any(Number), hitCount: 12, ipHitCount: 12, dnsHitCount: 0, maxSeverity: 4 });
      expect(await none).toBe('quiet');
      await all.return(undefined);
      // Its next() is still waiting (nothing matched): a return() would queue behind it; closing the app ends it.
      void severe.return(undefined);
    });
  });
});
