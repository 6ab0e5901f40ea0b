import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { rng } from '../../helpers/capture';
import { idOfType } from '../../../src/common/ids/global-id';
import { resolveHitFilter, ResolvedHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { HitFilter } from '../../../src/modules/flow-hit/hit-filter.inputs';
import { TimeBucket } from '../../../src/modules/report/report.enums';
import { ReportService } from '../../../src/modules/report/report.service';
import { splitWindow } from '../../../src/modules/report/groupings/sql-source';
import { SqlExecutor } from '../../../src/modules/report/groupings/sql.executor';
import { MemoryExecutor } from '../../../src/modules/report/groupings/memory.executor';
import { ThreadedExecutor } from '../../../src/modules/report/report-thread/report-threads';
import { SharingExecutor } from '../../../src/modules/report/shared-reports';
import {
  BY_CATEGORY,
  BY_DEVICE,
  BY_DIRECTION,
  BY_INTERNAL_HOST,
  BY_IOC,
  BY_IOC_LIST,
  BY_SEVERITY,
  TOTALS,
} from '../../../src/modules/report/groupings/groupings';
import { HitMemory } from '../../../src/modules/report/hit-memory';

/**
 * The SQL executor reads roll-ups for the whole hours and days of a window and raw hits for its edges (raw hits
 * only under address and port filters); the memory executor computes everything from the account's hits in
 * memory (hit-memory.ts). Here every grouping, over windows aligned and not, under every filter, is compared
 * between the two, for the app's store and a store loaded afresh; then again after an upload is reprocessed
 * with fewer hits, after a retention purge that cuts through an hour and after a device is deleted: the store
 * the app loaded before those changes must follow them through the change log, and the roll-ups must keep
 * summing to the hits. (hit-report.test.ts checks the answers themselves against the input;
 * report-executors.property.test.ts compares the executors over random hits and filters.)
 */

// Each comparison runs every grouping over 5 windows x 12 filters on both executors: on MariaDB, on a shared
// machine, over a minute.
jest.setTimeout(240_000);

const LISTS = [
  { name: 'C2', severity: 5, category: 'C2_BOTNET', values: ['198.51.100.10', '198.51.100.11', '2001:db8:c2::1'] },
  { name: 'Scanners', severity: 2, category: 'SCANNER', values: ['203.0.113.0/28'] },
  { name: 'Malware', severity: 4, category: 'MALWARE', values: ['192.0.2.50', '192.0.2.51'] },
];
const OUTSIDE = ['198.51.100.10', '198.51.100.11', '203.0.113.3', '203.0.113.9', '192.0.2.50', '192.0.2.51', '2001:db8:c2::1', '192.0.2.200'];
const START = Date.parse('2024-05-01T00:00:00Z');
const SPAN = 4 * 24 * 3600_000;

interface Flow {
  at: number;
  inside: string;
  outside: string;
  outbound: boolean;
  proto: 'TCP' | 'UDP' | 'ICMP';
  port: number;
  packets: number;
}

function flowsFor(seed: number, count: number): Flow[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  return Array.from({ length: count }, () => {
    const outside = pick(OUTSIDE);
    const v6 = outside.includes(':');
    const proto = v6 ? 'TCP' : pick(['TCP', 'TCP', 'UDP', 'ICMP'] as const);
    return {
      at: START + Math.floor((r() * SPAN) / 1000) * 1000,
      inside: v6 ? `fd00::${1 + Math.floor(r() * 4)}` : `10.0.0.${1 + Math.floor(r() * 12)}`,
      outside,
      outbound: r() < 0.6,
      proto,
      port: pick([22, 53, 443, 8080]),
      packets: 1 + Math.floor(r() * 4),
    };
  });
}

function tcpdump(flows: Flow[]): string {
  const lines: Array<[number, string]> = [];
  flows.forEach((f, i) => {
    const fam = f.inside.includes(':') ? 'IP6' : 'IP';
    const ephemeral = 40000 + i;
    const ep = (ip: string, port: number) => (f.proto === 'ICMP' ? ip : `${ip}.${port}`);
    const [a, b] = f.outbound ? [ep(f.inside, ephemeral), ep(f.outside, f.port)] : [ep(f.outside, ephemeral), ep(f.inside, f.port)];
    const tail = (first: boolean) =>
      f.proto === 'TCP'
        ? `Flags [${first ? 'S' : '.'}], seq 1, win 512, length 40`
        : f.proto === 'UDP'
          ? 'UDP, length 60'
          : 'ICMP echo request, id 1, seq 1, length 64';
    for (let k = 0; k < f.packets; k++) lines.push([f.at + k * 1000, `${((f.at + k * 1000) / 1000).toFixed(6)} ${fam} ${a} > ${b}: ${tail(k === 0)}`]);
  });
  return `${lines
    .sort((x, y) => x[0] - y[0])
    .map((l) => l[1])
    .join('\n')}\n`;
}

const HOUR = 3600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const WINDOWS: Array<[string, number, number]> = [
  ['whole days', START - 24 * HOUR, START + SPAN + 24 * HOUR],
  ['whole hours', START + 5 * HOUR, START + 53 * HOUR],
  ['ragged edges', START + 5 * HOUR + 17 * 60_000 + 3_000, START + 70 * HOUR + 41 * 60_000 + 999],
  ['within one hour', START + 30 * HOUR + 60_000, START + 30 * HOUR + 59 * 60_000],
  ['one day and a bit', START + 23 * HOUR + 30 * 60_000, START + 48 * HOUR + 30 * 60_000],
];

describe.each(drivers)('report roll-ups agree with the raw hits (%s)', (driver) => {
  let t: TestApp;
  let sql: ReportService;
  let devices: string[];
  let lists: string[];
  let uploads: string[];

  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '35' });
    sql = new ReportService(t.dataSource);
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    lists = [];
    for (const l of LISTS) {
      const id = (
        await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
          i: { name: l.name, kind: 'BLOCK', severity: l.severity, category: l.category },
        })
      ).iocListCreate.iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: id, entries: l.values.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [id] } });
      lists.push(id);
    }
    devices = [];
    uploads = [];
    for (const [d, nickname] of ['hq', 'branch'].entries()) {
      devices.push(
        (
          await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
            i: { nickname, ipType: 'STATIC', ipAddress: `8.8.${d}.8`, policy },
          })
        ).deviceCreate.device.id,
      );
      // Two uploads per device: roll-up rows are per upload, so one bucket holds rows of both.
      for (const part of [0, 1]) {
        const res = ok(await upload(t, tcpdump(flowsFor(100 * d + part, 220)), { deviceNickname: nickname }));
        expect(res.logUploadCreate.userErrors).toEqual([]);
        uploads.push(res.logUploadCreate.logUpload.id);
      }
    }
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
  });
  afterAll(() => t.close());

  const filters = (): Array<[string, Partial<HitFilter>]> => [
    ['no filter', {}],
    ['a device', { devices: [devices[1]] }],
    ['a direction', { directions: ['INBOUND'] as HitFilter['directions'] }],
    ['minSeverity', { minSeverity: 4 }],
    ['severities', { severities: [2, 5] }],
    ['a list', { iocLists: [lists[2]] }],
    ['categories', { categories: ['SCANNER', 'C2_BOTNET'] as HitFilter['categories'] }],
    ['protocols', { protocols: ['UDP', 'ICMP'] as HitFilter['protocols'] }],
    ['a port (raw only)', { destinationPorts: [443] }],
    ['internal CIDR (raw only)', { internalAddress: '10.0.0.0/29' }],
    ['excluded ports (raw only)', { excludeDestinationPorts: [443, 53] }],
    ['external CIDR (raw only)', { externalAddress: '198.51.100.0/24' }],
  ];

  async function everything(s: ReportService, f: ResolvedHitFilter) {
    return {
      totals: await s.group(f, TOTALS),
      byDirection: await s.group(f, BY_DIRECTION),
      // Rankings cut at a small `first` must cut at the same tie.
      byIoc: await s.group(f, BY_IOC, { first: 100 }),
      byIocTop1: await s.group(f, BY_IOC, { first: 1 }),
      byIocTop2: await s.group(f, BY_IOC, { first: 2 }),
      byIocTop3: await s.group(f, BY_IOC, { first: 3 }),
      byIocList: await s.group(f, BY_IOC_LIST, { first: 100 }),
      byCategory: await s.group(f, BY_CATEGORY),
      bySeverity: await s.group(f, BY_SEVERITY),
      byDevice: await s.group(f, BY_DEVICE, { first: 100 }),
      byDeviceTop1: await s.group(f, BY_DEVICE, { first: 1 }),
      byInternalHost: await s.group(f, BY_INTERNAL_HOST, { first: 100 }),
      byInternalHostTop3: await s.group(f, BY_INTERNAL_HOST, { first: 3 }),
      threats: await s.threats(f, 100),
      threatsTop2: await s.threats(f, 2),
      hourly: await s.timeline(f, TimeBucket.HOUR, 'UTC'),
      berlinDays: await s.timeline(f, TimeBucket.DAY, 'Europe/Berlin'),
      kolkataHours: await s.timeline(f, TimeBucket.HOUR, 'Asia/Kolkata'),
    };
  }

  async function agreeEverywhere(): Promise<number> {
    // The app's store, loaded at start and kept since, and one loaded now from the database.
    const fresh = new HitMemory(t.dataSource, { maxHits: 1_000_000, batch: 97 });
    await fresh.warm(t.accountId);
    const held = new ReportService(t.dataSource, { memory: fresh });
    expect(await t.services.reportMemory.view(t.accountId)).not.toBeNull();
    expect((await fresh.view(t.accountId))?.hits).toBe((await t.services.reportMemory.view(t.accountId))?.hits);
    const any = resolveHitFilter(t.accountId, { preset: 'LAST_24_HOURS' } as HitFilter);
    expect(await sql.executor(any)).toBeInstanceOf(SqlExecutor);
    expect(await held.executor(any)).toBeInstanceOf(MemoryExecutor);
    // The server's: on the report thread, shared between requests that ask the same of the same hits.
    const served = await t.services.reports.executor(any);
    expect(served).toBeInstanceOf(SharingExecutor);
    expect((served as SharingExecutor).inner).toBeInstanceOf(ThreadedExecutor);
    let compared = 0;
    for (const [, from, to] of WINDOWS) {
      for (const [, extra] of filters()) {
        const f = () => resolveHitFilter(t.accountId, { from: new Date(from), to: new Date(to), ...extra } as HitFilter);
        const expected = { window: [iso(from), iso(to)], extra, ...(await everything(sql, f())) };
        expect({ window: [iso(from), iso(to)], extra, ...(await everything(t.services.reports, f())) }).toEqual(expected);
        expect({ window: [iso(from), iso(to)], extra, ...(await everything(held, f())) }).toEqual(expected);
        compared++;
      }
    }
    fresh.close();
    return compared;
  }

  async function rollupSums() {
    const q = async (sql: string) => Number((await t.dataSource.query(sql))[0].n);
    return {
      hits: await q('SELECT COUNT(*) AS n FROM flow_hit'),
      hourHits: await q('SELECT COALESCE(SUM(hits), 0) AS n FROM hit_hour'),
      dayHostHits: await q('SELECT COALESCE(SUM(hits), 0) AS n FROM hit_day_host'),
    };
  }

  it('splits a window into whole buckets and ragged edges', () => {
    expect(splitWindow(START, START + 2 * HOUR, HOUR)).toEqual({ whole: [START, START + 2 * HOUR], edges: [] });
    expect(splitWindow(START + 1, START + 2 * HOUR + 5, HOUR)).toEqual({
      whole: [START + HOUR, START + 2 * HOUR],
      edges: [
        [START + 1, START + HOUR],
        [START + 2 * HOUR, START + 2 * HOUR + 5],
      ],
    });
    expect(splitWindow(START + 1, START + HOUR - 1, HOUR)).toEqual({ whole: null, edges: [[START + 1, START + HOUR - 1]] });
  });

  it('gives every grouping the same answer from SQL and from memory, for every window and filter', async () => {
    const sums = await rollupSums();
    expect(sums.hits).toBeGreaterThan(500);
    expect(sums).toEqual({ hits: sums.hits, hourHits: sums.hits, dayHostHits: sums.hits });
    expect(await agreeEverywhere()).toBe(WINDOWS.length * filters().length);
  });

  it("replaces an upload's roll-ups with its hits when it is reprocessed", async () => {
    const before = await rollupSums();
    // Fewer entries now: the reprocessed upload has fewer hits, and its old roll-ups must go with them.
    const c2 = (await t.dataSource.query(`SELECT id FROM ioc WHERE list_id = ?`, [idOfType(lists[0], 'IocList')])).map((r: { id: number }) => Number(r.id));
    expect((await t.services.iocs.remove(t.accountId, c2)).ok).toBe(true);
    // And the malware list changes severity and category: the reprocessed uploads' hits on its entries get the
    // new ones, the others keep the old, so one entry's hits fall into two groups (byIoc, threats).
    ok(
      await t.gql(`mutation($i: IocListUpdateInput!) { iocListUpdate(input: $i) { userErrors { message } } }`, {
        i: { id: lists[2], severity: 3, category: 'BRUTE_FORCE' },
      }),
    );
    for (const id of uploads.slice(0, 2)) expect((await t.services.logUploads.reprocess(t.accountId, idOfType(id, 'LogUpload'))).ok).toBe(true);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    const after = await rollupSums();
    expect(after.hits).toBeLessThan(before.hits);
    const split = await t.dataSource.query(`SELECT ioc_id FROM flow_hit WHERE ioc_list_id = ? GROUP BY ioc_id HAVING COUNT(DISTINCT severity) = 2`, [
      idOfType(lists[2], 'IocList'),
    ]);
    expect(split.length).toBeGreaterThan(0);
    expect(after).toEqual({ hits: after.hits, hourHits: after.hits, dayHostHits: after.hits });
    await agreeEverywhere();
  });

  it('keeps the roll-ups equal to the hits left after a retention purge that cuts through an hour', async () => {
    const cutoff = START + 37 * HOUR + 13 * 60_000;
    const purged = await t.services.retention.purge(cutoff + 35 * 24 * HOUR);
    expect(purged.flowHits).toBeGreaterThan(0);
    const sums = await rollupSums();
    expect(sums).toEqual({ hits: sums.hits, hourHits: sums.hits, dayHostHits: sums.hits });
    expect(Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE first_seen_at < ?', [cutoff]))[0].n)).toBe(0);
    await agreeEverywhere();
  });

  it("drops a deleted device's hits from the store, as the database cascades them", async () => {
    const before = (await t.services.reportMemory.view(t.accountId))?.hits ?? 0;
    ok(await t.gql(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, { i: { id: devices[0] } }));
    const left = Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE account_id = ?', [t.accountId]))[0].n);
    expect(left).toBeLessThan(before);
    expect((await t.services.reportMemory.view(t.accountId))?.hits).toBe(left);
    await agreeEverywhere();
  });
});
