import fs from 'node:fs';
import fc from 'fast-check';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { bulkInsert, bulkInsertObjects, execute } from '../../../src/db/bulk';
import { idOfType } from '../../../src/common/ids/global-id';
import { parseIp } from '../../../src/common/net/ip';
import { ipKey } from '../../../src/modules/ioc/ioc-range';
import { INSERT_COLUMNS, NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { insertRollups } from '../../../src/modules/flow-hit/hit-rollup';
import { HitMemory } from '../../../src/modules/report/hit-memory';
import { ReportService } from '../../../src/modules/report/report.service';
import { MemoryExecutor } from '../../../src/modules/report/groupings/memory.executor';
import { SqlExecutor } from '../../../src/modules/report/groupings/sql.executor';
import { ReportThreads } from '../../../src/modules/report/report-thread/report-threads';
import { SharedReports } from '../../../src/modules/report/shared-reports';
import { BY_IOC, GROUPINGS, TOTALS } from '../../../src/modules/report/groupings/groupings';
import { resolveHitFilter, ResolvedHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { HitFilter } from '../../../src/modules/flow-hit/hit-filter.inputs';
import { TimeBucket } from '../../../src/modules/report/report.enums';
import { HitKind } from '../../../src/modules/flow-hit/flow-hit.enums';
import { Analytics } from '../../../src/modules/analytics/analytics';
import { AnalyticsHits } from '../../../src/modules/analytics/analytics-hits';
import { chdbInstalled } from '../../../src/modules/analytics/analytics-client';
import { ClickHouseExecutor } from '../../../src/modules/report/groupings/clickhouse.executor';
import { threats } from '../../../src/modules/report/groupings/threats.memory';
import { severityLevels } from '../../../src/modules/report/groupings/executor';
import { chdbConfig } from '../analytics/chdb';
import { recordHitChange } from '../../../src/modules/flow-hit/hit-change';
import { TriageStatus } from '../../../src/modules/flow-hit/hit-triage.enums';
import { HitTriageService, triageKey } from '../../../src/modules/flow-hit/hit-triage.service';
import { FlowHit } from '../../../src/modules/flow-hit/flow-hit.entity';

/**
 * Every grouping (and threats, the timeline and the dashboard's pieces) gives the same answer from the SQL
 * executor and the memory executor (on the main thread and on a report thread), for random hits (devices, lists, entries recorded at their list's severity
 * or an older one, directions, protocols, ports, IPv4 and IPv6 addresses, times to the millisecond), random
 * windows (aligned on days or hours, or ragged) and random combinations of filters. Hits are written as the
 * worker writes them (flow_hit and its roll-ups); the store is loaded afresh from them each run.
 *
 * With chDB installed (always under CI), the ClickHouse executor (ANALYTICS_URL) answers too: the same hits are
 * written to ClickHouse under a committed attempt, beside a stale attempt of other hits that no read may count.
 *
 * Seeded: PROPERTY_SEED and PROPERTY_RUNS override the seed and the number of data sets (fast-check prints
 * the seed and the shrunk counterexample of a failure).
 */

const SEED = Number(process.env.PROPERTY_SEED ?? 15_2024);
const RUNS = Number(process.env.PROPERTY_RUNS ?? 25);
const START = Date.parse('2024-05-01T00:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;

const LISTS = [
  { name: 'C2', severity: 5, category: 'C2_BOTNET', entries: { '198.51.100.10': ['198.51.100.10'], '2001:db8:c2::1': ['2001:db8:c2::1'] } },
  {
    name: 'Scanners',
    severity: 2,
    category: 'SCANNER',
    entries: { '203.0.113.0/28': ['203.0.113.3', '203.0.113.9', '203.0.113.14'], '2001:db8:5c::/120': ['2001:db8:5c::7', '2001:db8:5c::ab'] },
  },
  { name: 'Malware', severity: 4, category: 'MALWARE', entries: { '192.0.2.50': ['192.0.2.50'], '192.0.2.51': ['192.0.2.51'] } },
];
/** What a list's hits recorded before it was changed (one entry's hits in two groups). */
const OLDER = { severity: 3, category: 'BRUTE_FORCE' };
/** Inside addresses; some that order differently by bytes than by a case-insensitive collation, and shared by devices. */
const INSIDE = ['10.0.0.1', '10.0.0.2', '10.0.0.12', '10.0.0.5', 'fd00::1', 'fd00::15', 'fd00::1:5', 'fd00::a'];
const PORTS = [22, 53, 443, 8080];

interface Entry {
  iocId: number;
  listId: number;
  listIndex: number;
  cidr: string;
  addresses: string[];
}

interface HitSpec {
  device: number;
  entry: number;
  address: number;
  older: boolean;
  inside: number;
  outbound: boolean;
  protocol: 'TCP' | 'UDP' | 'ICMP';
  port: number;
  at: number;
  duration: number;
  packets: [number, number];
  /** 0: found by its upload at START; n: by a retro-hunt n days later. */
  found: number;
  /** Its triage row's status; null: never triaged (OPEN). */
  triage: TriageStatus | null;
}

const hitArb = fc.record<HitSpec>({
  device: fc.nat(2),
  entry: fc.nat(5),
  address: fc.nat(4),
  older: fc.nat(4).map((x) => x === 0),
  inside: fc.nat(INSIDE.length - 1),
  outbound: fc.boolean(),
  protocol: fc.constantFrom('TCP', 'TCP', 'UDP', 'ICMP'),
  port: fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 })),
  // Anywhere, or on a minute or an hour: where roll-up buckets and window edges meet.
  at: fc.oneof(
    fc.integer({ min: 0, max: 3 * DAY - 1 }),
    fc.nat(3 * 24 * 60 - 1).map((m) => m * 60_000),
    fc.nat(3 * 24 - 1).map((h) => h * HOUR),
  ),
  duration: fc.integer({ min: 0, max: 10 * 60_000 }),
  packets: fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 9 })),
  found: fc.nat(3),
  triage: fc.constantFrom(null, null, null, ...Object.values(TriageStatus)),
});

const STATUSES = Object.values(TriageStatus);

/** An instant near the data: on a day, on an hour, or anywhere. */
const instantArb = fc.oneof(
  fc.integer({ min: -1, max: 4 }).map((d) => START + d * DAY),
  fc.integer({ min: -24, max: 96 }).map((h) => START + h * HOUR),
  fc.integer({ min: -24 * 60, max: 96 * 60 }).map((m) => START + m * 60_000),
  fc.integer({ min: -DAY, max: 4 * DAY }).map((ms) => START + ms),
);

type FilterPart = Partial<HitFilter>;

const queryArb = (devices: string[], lists: string[]) =>
  fc.record({
    window: fc
      .tuple(instantArb, instantArb)
      .filter(([a, b]) => a !== b)
      .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
    filter: fc
      .subarray<fc.Arbitrary<FilterPart>>(
        [
          fc.subarray(devices, { minLength: 1 }).map((d) => ({ devices: d })),
          fc.subarray(['INBOUND', 'OUTBOUND'], { minLength: 1 }).map((d) => ({ directions: d as HitFilter['directions'] })),
          fc.integer({ min: 0, max: 5 }).map((s) => ({ minSeverity: s })),
          fc.subarray([0, 1, 2, 3, 4, 5], { minLength: 1 }).map((s) => ({ severities: s })),
          fc.subarray(lists, { minLength: 1 }).map((l) => ({ iocLists: l })),
          fc.subarray(['C2_BOTNET', 'SCANNER', 'MALWARE', 'BRUTE_FORCE'], { minLength: 1 }).map((c) => ({ categories: c as HitFilter['categories'] })),
          fc.subarray(['TCP', 'UDP', 'ICMP'], { minLength: 1 }).map((p) => ({ protocols: p as HitFilter['protocols'] })),
          fc.subarray(PORTS, { minLength: 1 }).map((p) => ({ destinationPorts: p })),
          fc.subarray(PORTS, { minLength: 1 }).map((p) => ({ excludeDestinationPorts: p })),
          fc.constantFrom('10.0.0.0/30', '10.0.0.12/32', 'fd00::/120', '0.0.0.0/0').map((a) => ({ internalAddress: a })),
          fc.constantFrom('203.0.113.8/29', '198.51.100.0/24', '2001:db8::/32').map((a) => ({ externalAddress: a })),
          fc.subarray(['UPLOAD', 'RETRO_HUNT'], { minLength: 1 }).map((b) => ({ foundBy: b as HitFilter['foundBy'] })),
          fc.integer({ min: 0, max: 4 }).map((d) => ({ foundSince: new Date(START + d * DAY) })),
          fc.subarray(STATUSES, { minLength: 1 }).map((s) => ({ triageStatuses: s })),
        ],
        { maxLength: 3 },
      )
      .chain((parts) => (parts.length ? fc.tuple(...parts) : fc.constant([] as FilterPart[])))
      .map((parts) => Object.assign({}, ...parts) as FilterPart),
    first: fc.integer({ min: 1, max: 6 }),
    bucket: fc.constantFrom(TimeBucket.HOUR, TimeBucket.DAY),
    zone: fc.constantFrom('UTC', 'Europe/Berlin', 'Asia/Kolkata'),
  });

type Query = { window: readonly [number, number]; filter: FilterPart; first: number; bucket: TimeBucket; zone: string };

/** Every declared grouping, threats, the timeline and the dashboard's pieces, from one service (one filter object: one request). */
async function everything(s: ReportService, f: ResolvedHitFilter, q: { first: number; bucket: TimeBucket; zone: string }) {
  const trend = { ...f, from: f.to - 7 * DAY };
  const groupings: Record<string, unknown> = {};
  for (const g of GROUPINGS) {
    groupings[g.name] = await s.group(f, g, { first: 100 });
    if (g.top) groupings[`${g.name} top ${q.first}`] = await s.group(f, g, { first: q.first });
    // A measure nobody selected is skipped alike.
    const skip = Object.keys(g.measures)
      .filter((field) => field !== 'hits')
      .slice(-1);
    groupings[`${g.name} without ${skip.join()}`] = await s.group(f, g, { first: 100, skip });
  }
  // Every grouping asked for at once, as GraphQL resolves a report's fields: the ClickHouse executor reads those of
  // few-valued keys in one statement (GROUPING SETS), the same grouping twice with different cuts and skips too.
  const asked = GROUPINGS.flatMap((g) => [
    [g.name, g, { first: 100 }],
    ...(g.top ? [[`${g.name} top ${q.first}`, g, { first: q.first }]] : []),
    [
      `${g.name} without its first measure but hits`,
      g,
      {
        first: 100,
        skip: Object.keys(g.measures)
          .filter((field) => field !== 'hits')
          .slice(0, 1),
      },
    ],
  ]) as Array<[string, (typeof GROUPINGS)[number], { first: number; skip?: string[] }]>;
  const answers = await Promise.all(asked.map(([, g, options]) => s.group(f, g, options)));
  const together = Object.fromEntries(asked.map(([name], i) => [name, answers[i]]));
  return {
    ...groupings,
    together,
    threats: await s.threats(f, 100),
    threatsTop: await s.threats(f, q.first),
    timeline: await s.timeline(f, q.bucket, q.zone),
    dashboard: {
      totals: await s.group(f, TOTALS, { skip: ['externalAddresses'] }),
      topThreats: await s.threats(f, 3),
      trend: await s.timeline(trend, TimeBucket.DAY, q.zone),
    },
  };
}

describe.each(drivers)('the SQL and memory executors agree on random hits and filters (%s)', (driver) => {
  let t: TestApp;
  let devices: string[];
  let lists: string[];
  let uploadOf: number[];
  let entries: Entry[];
  let threads: ReportThreads;
  /** Shared by the threaded services of every data set: a result kept from an earlier one must never answer. */
  const shared = new SharedReports({ maxEntries: 1_000, maxRows: 100_000 });
  /** The ClickHouse tier on chDB, when installed (CI=true without it fails here, as the analytics tests do). */
  let analytics: Analytics | null = null;
  const chdb = chdbInstalled() || process.env.CI === 'true' ? chdbConfig() : null;

  beforeAll(async () => {
    t = await createTestApp(driver);
    threads = new ReportThreads({ threads: 1 });
    if (chdb) {
      analytics = new Analytics(chdb, 0);
      await analytics.migrate();
    }
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    lists = [];
    for (const l of LISTS) {
      const id = (
        await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
          i: { name: l.name, kind: 'BLOCK', severity: l.severity, category: l.category },
        })
      ).iocListCreate.iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: id, entries: Object.keys(l.entries).map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [id] } });
      lists.push(id);
    }
    entries = [];
    for (const [listIndex, l] of LISTS.entries()) {
      const listId = idOfType(lists[listIndex], 'IocList')!;
      const rows: Array<{ id: number; cidr: string }> = await t.dataSource.query('SELECT id, cidr FROM ioc WHERE list_id = ? ORDER BY id', [listId]);
      for (const [value, addresses] of Object.entries(l.entries)) {
        const row = rows.find((r) => r.cidr === value || r.cidr.startsWith(`${value}/`));
        if (!row) throw new Error(`entry ${value} not stored`);
        entries.push({ iocId: Number(row.id), listId, listIndex, cidr: row.cidr, addresses });
      }
    }
    devices = [];
    uploadOf = [];
    for (const [d, nickname] of ['hq', 'branch', 'lab'].entries()) {
      devices.push(
        (
          await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
            i: { nickname, ipType: 'STATIC', ipAddress: `8.8.${d}.8`, policy },
          })
        ).deviceCreate.device.id,
      );
      // An upload whose capture matches nothing: the random hits below are written under it.
      const res = ok(
        await upload(t, `${(START / 1000).toFixed(6)} IP 10.0.0.1.40000 > 192.0.2.200.443: Flags [S], seq 1, win 512, length 0\n`, {
          deviceNickname: nickname,
        }),
      );
      uploadOf.push(idOfType(res.logUploadCreate.logUpload.id, 'LogUpload')!);
    }
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
  });
  afterAll(async () => {
    await threads.close();
    await analytics?.close();
    if (chdb) fs.rmSync(chdb.path, { recursive: true, force: true });
    await t.close();
  });

  /** Replaces the account's hits with `specs`, written as the worker writes them. */
  async function writeHits(specs: HitSpec[]): Promise<void> {
    const byUpload = new Map<number, NewHit[]>();
    const rowsOf: NewHit[] = [];
    for (const h of specs) {
      const e = entries[h.entry];
      const external = e.addresses[h.address % e.addresses.length];
      const inside = INSIDE[h.inside];
      // An IPv6 entry is hit from an IPv6 host, an IPv4 one from an IPv4 host.
      const internal = external.includes(':') === inside.includes(':') ? inside : external.includes(':') ? 'fd00::1' : '10.0.0.1';
      const list = LISTS[e.listIndex];
      const portless = h.protocol === 'ICMP';
      const ephemeral = 40000 + (h.port % 1000);
      const first = START + h.at;
      const row: NewHit = {
        accountId: t.accountId,
        deviceId: idOfType(devices[h.device], 'Device')!,
        uploadId: uploadOf[h.device],
        firstSeenAt: first,
        lastSeenAt: first + h.duration,
        direction: h.outbound ? 'OUTBOUND' : 'INBOUND',
        protocol: h.protocol,
        internalIp: internal,
        internalKey: ipKey(parseIp(internal)!),
        internalPort: portless ? null : h.outbound ? ephemeral : h.port,
        externalIp: external,
        externalKey: ipKey(parseIp(external)!),
        externalPort: portless ? null : h.outbound ? h.port : ephemeral,
        destinationPort: portless ? null : h.port,
        matchedSide: 'EXTERNAL',
        matchedIp: external,
        packetsForward: h.packets[0],
        bytesForward: h.packets[0] * 60,
        packetsReverse: h.packets[1],
        bytesReverse: h.packets[1] * 1400,
        foundBy: h.found ? 'RETRO_HUNT' : 'UPLOAD',
        foundAt: START + h.found * DAY,
        retroHuntId: null,
        iocId: e.iocId,
        iocListId: e.listId,
        matchedCidr: e.cidr,
        severity: h.older ? OLDER.severity : list.severity,
        category: h.older ? OLDER.category : list.category,
      };
      rowsOf.push(row);
      const rows = byUpload.get(uploadOf[h.device]) ?? [];
      rows.push(row);
      byUpload.set(uploadOf[h.device], rows);
    }
    // Hits of one identity share one verdict: the last one given wins.
    const triage = new Map<string, unknown[]>();
    specs.forEach((h, i) => {
      if (h.triage === null) return;
      const row = rowsOf[i];
      const [uploadId, identity] = [row.uploadId, triageKey(row as unknown as FlowHit).slice(String(row.uploadId).length + 1)];
      triage.set(`${uploadId}|${identity}`, [t.accountId, uploadId, identity, h.triage, null, 1, START]);
    });
    await t.dataSource.transaction(async (em) => {
      for (const table of ['flow_hit', 'hit_hour', 'hit_day_host', 'flow_hit_triage'])
        await execute(em, `DELETE FROM ${table} WHERE account_id = ?`, [t.accountId]);
      for (const rows of byUpload.values()) {
        await bulkInsertObjects(em, 'flow_hit', INSERT_COLUMNS, rows);
        await insertRollups(em, rows);
      }
      await bulkInsert(em, 'flow_hit_triage', ['account_id', 'upload_id', 'identity', 'status', 'note', 'api_key_id', 'updated_at'], [...triage.values()]);
      // As every verdict does (hit-triage.service.ts): ClickHouse's mirror of the verdicts follows these changes.
      for (const uploadId of uploadOf) await recordHitChange(em, { accountId: t.accountId, uploadId, kind: 'TRIAGE' });
    });
    if (!analytics) return;
    // As the worker writes them with ANALYTICS_URL: each upload's hits under a new attempt that SQL records as
    // committed; then a stale attempt (a run that never committed) of other hits, which reads must not count.
    const ch = new AnalyticsHits(analytics.client);
    for (const uploadId of uploadOf) {
      const rows = byUpload.get(uploadId) ?? [];
      const attempt = await ch.write({ accountId: t.accountId, uploadId }, rows, null);
      await execute(t.dataSource.manager, 'UPDATE log_upload SET analytics_attempt = ? WHERE id = ?', [attempt, uploadId]);
      const stale = [...rows, ...(byUpload.get(uploadOf[(uploadOf.indexOf(uploadId) + 1) % uploadOf.length]) ?? [])].map((h) => ({ ...h, uploadId }));
      await ch.write({ accountId: t.accountId, uploadId }, stale, attempt);
    }
  }

  it("ranks the top entries right when a heavy entry's hits are split between two groups", async () => {
    // Entry 0: 10 hits, 5 recorded at an older severity; entry 1: 9; entry 2: 6. The top two rows are entry 1's
    // and entry 2's, although entry 0 has the most hits: a ranking by entry alone must look past it.
    const at = (i: number) => 3_600_000 + i * 60_000;
    const hit = (entry: number, i: number, older: boolean): HitSpec => ({
      device: 0,
      entry,
      address: 0,
      older,
      inside: 0,
      outbound: true,
      protocol: 'TCP',
      port: 443,
      at: at(i),
      duration: 0,
      packets: [1, 0],
      found: 0,
      triage: null,
    });
    await writeHits([
      ...Array.from({ length: 10 }, (_, i) => hit(0, i, i % 2 === 0)),
      ...Array.from({ length: 9 }, (_, i) => hit(1, i, false)),
      ...Array.from({ length: 6 }, (_, i) => hit(2, i, false)),
    ]);
    const store = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
    await store.warm(t.accountId);
    const f = () => resolveHitFilter(t.accountId, { from: new Date(START), to: new Date(START + DAY) } as HitFilter);
    const expected = [
      { iocId: entries[1].iocId, hits: 9 },
      { iocId: entries[2].iocId, hits: 6 },
    ];
    const services = [new ReportService(t.dataSource), new ReportService(t.dataSource, { memory: store })];
    if (analytics) services.push(new ReportService(t.dataSource, { analytics }));
    for (const s of services) {
      expect((await s.group(f(), BY_IOC, { first: 2 })).map((r) => ({ iocId: r.iocId, hits: r.hits }))).toEqual(expected);
    }
    store.close();
  });

  it('gives identical answers for every grouping, window and combined filter', async () => {
    const started = Date.now();
    let queries = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(hitArb, { maxLength: 200, size: 'max' }),
        fc.array(queryArb(devices, lists), { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(199), fc.constantFrom(...STATUSES)), { maxLength: 4 }),
        async (hits, qs, retriage) => {
          await writeHits(hits);
          const store = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
          try {
            await store.warm(t.accountId);
            const memory = new ReportService(t.dataSource, { memory: store });
            const threaded = new ReportService(t.dataSource, { memory: store, threads, shared });
            const sql = new ReportService(t.dataSource);
            const clickhouse = analytics ? new ReportService(t.dataSource, { memory: store, analytics }) : null;
            // Verdicts given after the store (and the thread) loaded reach both through the change log.
            const ids = (await t.dataSource.query('SELECT id FROM flow_hit WHERE account_id = ? ORDER BY id', [t.accountId])) as Array<{ id: number }>;
            if (ids.length) await compare(store, memory, threaded, sql, clickhouse, qs.slice(0, 1));
            for (const [i, status] of retriage) {
              if (!ids.length) break;
              const res = await new HitTriageService(t.dataSource).triage(
                { accountId: t.accountId, apiKeyId: 1 },
                { ids: [Number(ids[i % ids.length].id)], status },
              );
              expect(res.ok).toBe(true);
            }
            await compare(store, memory, threaded, sql, clickhouse, qs);
          } finally {
            store.close();
          }
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    // Not a timing assertion: the figure for the note, on the machine the suite ran on.
    process.stdout.write(`report executors property (${driver}): ${RUNS} data sets, ${queries} queries in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    async function compare(
      store: HitMemory,
      memory: ReportService,
      threaded: ReportService,
      sql: ReportService,
      clickhouse: ReportService | null,
      qs: Query[],
    ) {
      for (const q of qs) {
        const f = () => resolveHitFilter(t.accountId, { from: new Date(q.window[0]), to: new Date(q.window[1]), ...q.filter } as HitFilter);
        const [fs, fm, ft, fc] = [f(), f(), f(), f()];
        expect(await sql.executor(fs)).toBeInstanceOf(SqlExecutor);
        expect(await memory.executor(fm)).toBeInstanceOf(MemoryExecutor);
        const asked = { window: q.window.map((ms) => new Date(ms).toISOString()), filter: q.filter };
        const expected = { asked, ...(await everything(sql, fs, q)) };
        expect({ asked, ...(await everything(memory, fm, q)) }).toEqual(expected);
        // The threats' second pass with a map of (host, group) cells, as for an account with too many entry groups
        // for the cell array, gives the same rows.
        const fx = f();
        const mapped = threats((await store.view(t.accountId))!, fx, 100, severityLevels(fx), 0).map((r) => ({ ...r, kind: fx.kind ?? HitKind.IP }));
        expect({ asked, threats: mapped }).toEqual({ asked, threats: expected.threats });
        expect({ asked, ...(await everything(threaded, ft, q)) }).toEqual(expected);
        // Asked again (a filter object of its own): the results kept for it.
        const kept = shared.stats.kept;
        expect({ asked, ...(await everything(threaded, f(), q)) }).toEqual(expected);
        expect(shared.stats.kept).toBeGreaterThan(kept);
        // Verdicts given since the last read reach ClickHouse's mirror of them first (analytics-triage.ts).
        if (clickhouse) {
          expect(await clickhouse.executor(fc)).toBeInstanceOf(ClickHouseExecutor);
          expect({ asked, ...(await everything(clickhouse, fc, q)) }).toEqual(expected);
        }
        queries++;
      }
    }
  }, 300_000);
});
