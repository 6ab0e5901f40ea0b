import { countStatements, watchStatements } from '../../helpers/sql-count';
import { turnCounter } from '../../helpers/turns';
import { RetentionService } from '../../../src/modules/report/retention.service';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { analyticsAvailable, analyticsEnv, moveHitsToAnalytics, removeAnalyticsDir } from '../analytics/analytics-seed';
import { exportHits } from '../../../src/modules/report/export/hit-export';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';

const BAD = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
const DAY = 24 * 3600_000;
// 120 connections, one every 30 minutes from 2024-03-30T00:00Z (spanning the Europe/Berlin DST change on
// 2024-03-31 at 01:00Z), each to one of the bad addresses; packets vary so PACKETS_DESC has ties to break.
const START = Date.parse('2024-03-30T00:00:00Z');
const N = 120;
const flows = Array.from({ length: N }, (_, i) => ({
  at: START + i * 30 * 60_000,
  inside: `10.0.${i % 4}.${1 + (i % 7)}`,
  port: 40000 + i,
  bad: BAD[i % 3],
  packets: 1 + (i % 5),
}));
const text = flows
  .flatMap((f) =>
    Array.from(
      { length: f.packets },
      (_, k) => `${(f.at / 1000 + k).toFixed(6)} IP ${f.inside}.${f.port} > ${f.bad}.443: Flags [${k === 0 ? 'S' : '.'}], seq 1, win 1, length ${10 * (k + 1)}`,
    ),
  )
  .join('\n');
const WINDOW = { from: '2024-03-29T00:00:00Z', to: '2024-04-03T00:00:00Z' };

// Every expectation from SQL, and from ClickHouse (ANALYTICS_URL on chDB, when installed: always under CI).
const paths = drivers.flatMap((driver) => [[driver, 'SQL'], ...(analyticsAvailable ? [[driver, 'ClickHouse']] : [])]) as Array<
  [(typeof drivers)[number], 'SQL' | 'ClickHouse']
>;

describe.each(paths)('drill-down, export, lookup stats, retention (%s, %s)', (driver, path) => {
  let t: TestApp;
  let device: string;
  const analytics = path === 'ClickHouse' ? analyticsEnv() : null;
  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '35', ...analytics?.env });
    // With ANALYTICS_URL the worker writes the hits to ClickHouse: its tables first, as the server makes them at start.
    if (analytics) await t.services.analytics!.migrate();
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    device = (
      await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "site", ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { device { id } } }`, {
        p: policy,
      })
    ).deviceCreate.device.id;
    ok(await upload(t, `${text}\n`, { deviceNickname: 'site' }));
    await processQueued(t.services);
    if (analytics) await moveHitsToAnalytics(t);
  });
  afterAll(async () => {
    await t.close();
    removeAnalyticsDir(analytics?.dir);
  });

  const page = (v: Record<string, unknown>, sel = 'firstSeenAt packets severity') =>
    t.gql(
      `query($f: HitFilter!, $first: Int, $after: String, $o: FlowHitOrder) { flowHits(filter: $f, first: $first, after: $after, orderBy: $o) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${sel} } } } }`,
      v,
    );

  it.each([
    ['FIRST_SEEN_DESC', (a: any, b: any) => b.at - a.at],
    ['FIRST_SEEN_ASC', (a: any, b: any) => a.at - b.at],
    ['PACKETS_DESC', (a: any, b: any) => b.packets - a.packets || b.at - a.at],
  ])('pages through every hit exactly once in %s order with keyset cursors', async (order, cmp) => {
    const seen: any[] = [];
    let after: string | null = null;
    let total = 0;
    do {
      const r: any = ok(await page({ f: WINDOW, first: 17, after, o: order }, 'firstSeenAt packets')).flowHits;
      total = r.totalCount;
      seen.push(...r.edges.map((e: any) => ({ at: Date.parse(e.node.firstSeenAt), packets: e.node.packets })));
      after = r.pageInfo.hasNextPage ? r.pageInfo.endCursor : null;
    } while (after);
    expect(total).toBe(N);
    expect(seen).toHaveLength(N);
    const expected = flows.map((f) => ({ at: f.at, packets: f.packets * 1 })).sort(cmp as any);
    // Hits have packets one way only (no replies in this capture): each flow's packets equal its lines.
    if (order !== 'PACKETS_DESC') expect(seen.map((s) => s.at)).toEqual(expected.map((e) => e.at));
    else expect(seen.map((s) => s.packets)).toEqual(expected.map((e) => e.packets));
  });

  it('pages one device at a severity floor like the unfiltered list (page keys from the device index, rows by key)', async () => {
    const all = async (f: Record<string, unknown>) => {
      const ids: string[] = [];
      let after: string | null = null;
      do {
        const r: any = ok(await page({ f, first: 17, after }, 'id')).flowHits;
        ids.push(...r.edges.map((e: any) => e.node.id));
        after = r.pageInfo.hasNextPage ? r.pageInfo.endCursor : null;
      } while (after);
      return ids;
    };
    const everything = await all(WINDOW);
    expect(everything).toHaveLength(N);
    expect(await all({ ...WINDOW, devices: [device], minSeverity: 4 })).toEqual(everything);
    expect(await all({ ...WINDOW, devices: [device], minSeverity: 5 })).toEqual([]);
  });

  it('refuses a cursor from another ordering, and pages over 100', async () => {
    const first = ok(await page({ f: WINDOW, first: 5, o: 'FIRST_SEEN_ASC' })).flowHits;
    const cross = await page({ f: WINDOW, first: 5, after: first.pageInfo.endCursor, o: 'PACKETS_DESC' });
    expect(cross.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await page({ f: WINDOW, first: 101 })).errors?.[0].message).toBe('"first" must be between 1 and 100.');
  });

  it('resolves every relation of a 100-hit page with a fixed, small number of SQL statements', async () => {
    const selection = `id direction protocol internalIp externalIp matchedCidr firstSeenAt lastSeenAt packets bytes
      device { id nickname policy { name iocLists { name } } } upload { id status fileName device { nickname } }
      ioc { cidr list { name } } iocList { name severity }`;
    const count = (first: number) =>
      countStatements(t.dataSource, async () => {
        const r = ok(await page({ f: WINDOW, first }, selection)).flowHits;
        expect(r.edges).toHaveLength(first);
      });
    const small = await count(10);
    const large = await count(100);
    // Auth + page + one batched query per relation, whatever the page size.
    expect(large).toBe(small);
    expect(large).toBeLessThanOrEqual(12);
  });

  it('gives iocLookup the hit count and first/last seen of an address', async () => {
    const l = ok(await t.gql(`query($a: String!) { iocLookup(address: $a) { address hitCount firstSeenAt lastSeenAt } }`, { a: BAD[1] })).iocLookup;
    const mine = flows.filter((f) => f.bad === BAD[1]);
    expect(l).toEqual({
      address: BAD[1],
      hitCount: mine.length,
      firstSeenAt: new Date(mine[0].at).toISOString(),
      lastSeenAt: new Date(mine[mine.length - 1].at + (mine[mine.length - 1].packets - 1) * 1000).toISOString(),
    });
    expect(ok(await t.gql(`{ iocLookup(address: "198.51.100.1") { hitCount firstSeenAt } }`, {}, t.keys.otherAdmin)).iocLookup).toEqual({
      hitCount: 0,
      firstSeenAt: null,
    });
  });

  it('buckets the timeline by local day and hour across a DST change, with empty buckets', async () => {
    const r = ok(
      await t.gql(
        `query($f: HitFilter!) { hitReport(filter: $f) { days: timeline(bucket: DAY, timeZone: "Europe/Berlin") { start end hits }
        hours: timeline(bucket: HOUR, timeZone: "Europe/Berlin") { start hits } } }`,
        { f: { from: '2024-03-29T23:00:00Z', to: '2024-04-01T22:00:00Z' } },
      ),
    ).hitReport;
    // Local days in Berlin: the 30th (CET, starts 23:00Z), the 31st (23 hours: CET until 02:00 local), 1 April (CEST).
    expect(r.days.map((d: any) => [d.start, d.end])).toEqual([
      ['2024-03-29T23:00:00.000Z', '2024-03-30T23:00:00.000Z'],
      ['2024-03-30T23:00:00.000Z', '2024-03-31T22:00:00.000Z'],
      ['2024-03-31T22:00:00.000Z', '2024-04-01T22:00:00.000Z'],
    ]);
    const inDay = (from: string, to: string) => flows.filter((f) => f.at >= Date.parse(from) && f.at < Date.parse(to)).length;
    // Flows run from 2024-03-30T00:00Z for 60 hours.
    expect(r.days.map((d: any) => d.hits)).toEqual([
      inDay('2024-03-29T23:00:00Z', '2024-03-30T23:00:00Z'),
      inDay('2024-03-30T23:00:00Z', '2024-03-31T22:00:00Z'),
      inDay('2024-03-31T22:00:00Z', '2024-04-01T22:00:00Z'),
    ]);
    expect(r.days.map((d: any) => d.hits)).toEqual([46, 46, 28]);
    // 24 + 23 + 24 local hours; the first (00:00 local = 23:00Z) has no flows: empty buckets are present.
    expect(r.hours).toHaveLength(71);
    expect(r.hours[0]).toEqual({ start: '2024-03-29T23:00:00.000Z', hits: 0 });
    expect(r.hours.reduce((a: number, h: any) => a + h.hits, 0)).toBe(N);
    expect(r.hours.every((h: any) => h.hits <= 2)).toBe(true);
  });

  it('shows the dashboard: directions, devices, hosts, top threats and a 7-day trend', async () => {
    const d = ok(
      await t.gql(`{ dashboard(from: "2024-03-30T00:00:00Z", to: "2024-04-02T00:00:00Z", timeZone: "UTC") {
        inboundHits outboundHits devices internalHosts topThreats { internalIp matchedCidr hits device { nickname } } trend { start hits } } }`),
    ).dashboard;
    expect(d.inboundHits).toBe(0);
    expect(d.outboundHits).toBe(N);
    expect(d.devices).toBe(1);
    expect(d.internalHosts).toBe(new Set(flows.map((f) => f.inside)).size);
    expect(d.topThreats).toHaveLength(3);
    const pairs = new Map<string, number>();
    for (const f of flows) pairs.set(`${f.inside}|${f.bad}/32`, (pairs.get(`${f.inside}|${f.bad}/32`) ?? 0) + 1);
    const best = Math.max(...pairs.values());
    expect(d.topThreats[0].hits).toBe(best);
    expect(d.trend.map((x: any) => x.start)).toEqual(
      ['2024-03-26', '2024-03-27', '2024-03-28', '2024-03-29', '2024-03-30', '2024-03-31', '2024-04-01'].map((s) => `${s}T00:00:00.000Z`),
    );
    expect(d.trend.map((x: any) => x.hits)).toEqual([0, 0, 0, 0, 48, 48, 24]);
  });

  it('exports CSV and NDJSON with the same filters, a header row and stable columns', async () => {
    const csv = await request(t.http.app)
      .get('/export/flow-hits.csv')
      .query({ from: WINDOW.from, to: WINDOW.to, external: BAD[0] })
      .set('authorization', `Bearer ${t.keys.analyst}`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.trim().split('\n');
    expect(lines[0]).toBe(
      'id,first_seen_at,last_seen_at,device_id,device,upload_id,direction,protocol,internal_ip,internal_port,external_ip,external_port,destination_port,matched_side,matched_ip,matched_cidr,ioc_id,ioc_list_id,ioc_list,severity,category,packets_sent,packets_received,bytes_sent,bytes_received,found_by,found_at,retro_hunt_id',
    );
    const mine = flows.filter((f) => f.bad === BAD[0]);
    expect(lines).toHaveLength(1 + mine.length);
    const first = lines[1].split(',');
    expect(first[1]).toBe(new Date(mine[0].at).toISOString());
    expect(first[3]).toBe(device);
    expect(first.slice(6, 13)).toEqual(['OUTBOUND', 'TCP', mine[0].inside, String(mine[0].port), BAD[0], '443', '443']);
    const nd = await request(t.http.app).get('/export/flow-hits.ndjson').query({ preset: 'LAST_7_DAYS' }).set('authorization', `Bearer ${t.keys.admin}`);
    expect(nd.status).toBe(200);
    expect(nd.text).toBe('');
    const all = await request(t.http.app)
      .get('/export/flow-hits.ndjson')
      .query({ ...WINDOW, direction: 'OUTBOUND', port: '443', minSeverity: '4' })
      .set('authorization', `Bearer ${t.keys.admin}`);
    const records = all.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(N);
    expect(Object.keys(records[0])).toHaveLength(28);
    expect(records[0]).toMatchObject({
      device: 'site',
      ioc_list: 'bad',
      severity: 4,
      category: 'MALWARE',
      matched_side: 'RESPONDER',
      found_by: 'UPLOAD',
      retro_hunt_id: null,
    });
  });

  it('exports the same bytes in keyset batches of 7 as in one batch', async () => {
    const all = async (batchSize: number) => {
      const filter = resolveHitFilter(t.accountId, { from: new Date(WINDOW.from), to: new Date(WINDOW.to) });
      const { header, batches } = await exportHits(t.dataSource, t.accountId, filter, 'csv', batchSize, t.services.analyticsFlowHits);
      const parts: Buffer[] = [Buffer.from(header)];
      let n = 0;
      let rows = 0;
      for await (const b of batches) {
        parts.push(b.lines);
        n++;
        rows += b.rows;
      }
      return { text: Buffer.concat(parts).toString('utf8'), n, rows };
    };
    const whole = await all(1_000_000);
    const small = await all(7);
    expect(whole.rows).toBe(N);
    expect(small.rows).toBe(N);
    expect(small.n).toBe(Math.ceil(N / 7));
    expect(small.text).toBe(whole.text);
  });

  it('refuses exports without a key, for UPLOADER, and with a bad filter; another account gets nothing', async () => {
    expect((await request(t.http.app).get('/export/flow-hits.csv').query(WINDOW)).status).toBe(401);
    expect((await request(t.http.app).get('/export/flow-hits.csv').query(WINDOW).set('authorization', `Bearer ${t.keys.uploader}`)).status).toBe(403);
    const bad = await request(t.http.app)
      .get('/export/flow-hits.csv')
      .query({ from: 'yesterday', to: WINDOW.to })
      .set('authorization', `Bearer ${t.keys.admin}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/from: "yesterday" is not an ISO date-time/);
    // A misspelt filter is refused, not ignored (it would export every hit of the window), naming what was meant.
    for (const [query, meant] of [
      [{ minseverity: '5' }, / \(did you mean "minSeverity"\?\)/],
      [{ directions: 'INBOUND' }, / \(did you mean "direction"\?\)/],
      [{ externalAddress: '1.2.3.4' }, / \(did you mean "external"\?\)/],
      [{ colour: 'red' }, /"colour"; the export takes kind, from, to/],
    ] as const) {
      const typo = await request(t.http.app)
        .get('/export/flow-hits.csv')
        .query({ ...WINDOW, ...query })
        .set('authorization', `Bearer ${t.keys.admin}`);
      expect(typo.status).toBe(400);
      expect(typo.body).toEqual({ error: expect.stringMatching(/^Unknown query parameter "/), code: 'BAD_USER_INPUT' });
      expect(typo.body.error).toMatch(meant);
    }
    const none = await request(t.http.app).get('/export/flow-hits.csv').query(WINDOW).set('authorization', `Bearer ${t.keys.otherAdmin}`);
    expect(none.text.trim().split('\n')).toHaveLength(1);
  });

  // Retention in ClickHouse (a TTL and the purge's DELETE) is the writer's side, tested with it.
  (path === 'ClickHouse' ? it.skip : it)('purges hits and uploads older than the retention period, in batches; 0 keeps everything', async () => {
    const keep = new RetentionService(t.dataSource, 0);
    expect((await keep.purge(Date.parse('2030-01-01T00:00:00Z'))).flowHits).toBe(0);
    // 35 days after the 60th flow: the first 60 flows' hits go; the upload was received today, so it stays.
    // In batches of 25 (3 DELETEs), each in a later turn of the event loop than the one before: on SQLite the
    // statements are synchronous, and a purge that never yielded held up every request until it ended.
    const now = flows[60].at + 35 * DAY;
    const turns = turnCounter();
    const deletes: number[] = [];
    let r!: Awaited<ReturnType<RetentionService['purge']>>;
    try {
      await watchStatements(
        t.dataSource,
        async () => (r = await new RetentionService(t.dataSource, 35, { batch: 25 }).purge(now)),
        (sql) => void (/^DELETE FROM flow_hit /.test(sql) && deletes.push(turns.now)),
      );
    } finally {
      turns.stop();
    }
    expect(deletes).toHaveLength(3);
    expect(deletes[1]).toBeGreaterThan(deletes[0]);
    expect(deletes[2]).toBeGreaterThan(deletes[1]);
    expect(r.flowHits).toBe(60);
    expect(r.uploads).toBe(0);
    expect(ok(await page({ f: WINDOW, first: 1 })).flowHits.totalCount).toBe(N - 60);
    // Far in the future the upload itself is older than 35 days: it goes, with its remaining hits.
    const later = await t.services.retention.purge(Date.now() + 36 * DAY);
    expect(later).toMatchObject({ flowHits: N - 60, uploads: 1 });
    expect(Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM log_upload_blob'))[0].n)).toBe(0);
  });
});
