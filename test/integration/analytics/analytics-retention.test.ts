import fs from 'node:fs';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { RetentionService } from '../../../src/modules/report/retention.service';
import { chdbConfig, describeChdb } from './chdb';

/**
 * The retention purge with ANALYTICS_URL deletes the hits captured before the cutoff in ClickHouse and moves the
 * uploads' counts (`hits` to `hits_purged`) exactly as on SQL, also after a stop between the ClickHouse delete
 * and the SQL counts, and again (nothing more); an old upload's rows go with it.
 */
const BAD = ['198.51.100.7', '203.0.113.9'];
const START = Date.parse('2024-06-01T20:00:00Z');
const DAY = 86_400_000;
/** 30 days after the capture's third hour: the first half of its hits are older than RETENTION_DAYS. */
const NOW = START + 30 * DAY + 3 * 3_600_000;
const CUTOFF = NOW - 30 * DAY;

function capture(hours: number): string {
  const lines: string[] = [];
  for (let i = 0, at = START; at < START + hours * 3_600_000; i++, at += 7 * 60_000) {
    lines.push(`${(at / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 5)}.${30000 + i} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length ${i % 50}`);
  }
  return `${lines.join('\n')}\n`;
}

describe.each(drivers)('the retention purge with ClickHouse (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const dir = chdbConfig().path;
    let sql: TestApp;
    let ch: TestApp;

    async function setup(env: Record<string, string>): Promise<TestApp> {
      // No TTL (RETENTION_DAYS=0): the capture is of 2024, and ClickHouse's TTL would delete it by the real clock
      // at a merge of its choosing; the purge below runs with 30 days at a `now` of the test's.
      const t = await createTestApp(driver, { REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0', ...env });
      if (t.services.analytics) await t.services.analytics.migrate();
      const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
        .iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      });
      ok(await upload(t, capture(6), { deviceNickname: 'hq' }));
      expect((await processQueued(t.services))[0].status).toBe('COMPLETED');
      return t;
    }

    const counts = async (t: TestApp) =>
      (await t.dataSource.query(`SELECT id, hits, hits_purged FROM log_upload ORDER BY id`)).map((r: Record<string, unknown>) => [
        Number(r.id),
        Number(r.hits),
        Number(r.hits_purged),
      ]);
    const chRows = async (query: string) =>
      (await (await ch.services.analytics!.client.query({ query, format: 'JSONEachRow' })).json()) as Array<Record<string, number>>;
    const purge = (t: TestApp) => new RetentionService(t.dataSource, 30, { batch: 2, hitWriter: t.services.hitWriter }).purge(NOW);

    beforeAll(async () => {
      sql = await setup({});
      ch = await setup({ ANALYTICS_URL: `chdb://${dir}` });
    });
    afterAll(async () => {
      await sql?.close();
      await ch?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('deletes the hits captured before the cutoff and moves the counts as SQL does, also after a stop between the two writes, and once only', async () => {
      const [[, total]] = await counts(ch);
      const old = Number((await chRows(`SELECT count() AS n FROM flow_hit WHERE first_seen_at < ${CUTOFF}`))[0].n);
      expect(old).toBeGreaterThan(5);
      expect(old).toBeLessThan(total);
      // A purge stopped after its ClickHouse delete, before the counts (or the TTL deleting first).
      await ch.services.hitWriter.purgeAnalytics(CUTOFF);
      expect(await counts(ch)).toEqual([[expect.any(Number), total, 0]]);

      const [a, b] = [await purge(sql), await purge(ch)];
      expect(a.flowHits).toBe(old);
      expect(b.flowHits).toBe(old);
      expect(await counts(ch)).toEqual(await counts(sql));
      expect(await counts(ch)).toEqual([[expect.any(Number), total - old, old]]);
      expect(await chRows(`SELECT count() AS n FROM flow_hit WHERE first_seen_at < ${CUTOFF}`)).toEqual([{ n: 0 }]);
      expect(await chRows(`SELECT count() AS n FROM flow_hit`)).toEqual([{ n: total - old }]);

      // Again: nothing more to move.
      expect((await purge(ch)).flowHits).toBe(0);
      expect(await counts(ch)).toEqual([[expect.any(Number), total - old, old]]);
    });

    it('deletes an old upload with its ClickHouse rows, counting them', async () => {
      const left = Number((await chRows(`SELECT count() AS n FROM flow_hit`))[0].n);
      for (const t of [sql, ch]) await t.dataSource.query(`UPDATE log_upload SET received_at = ?`, [CUTOFF - DAY]);
      const [a, b] = [await purge(sql), await purge(ch)];
      expect(b).toMatchObject({ uploads: 1, flowHits: left });
      expect(a).toMatchObject({ uploads: 1, flowHits: left });
      expect(await chRows(`SELECT count() AS n FROM flow_hit`)).toEqual([{ n: 0 }]);
      expect(await counts(ch)).toEqual([]);
    });
  });
});
