import type { ClickHouseClient } from '@clickhouse/client';
import { AnalyticsHits, CommittedAttempt } from '../../../src/modules/analytics/analytics-hits';
import { migrateAnalytics } from '../../../src/modules/analytics/analytics-schema';
import { ANALYTICS_ROLLUP_TABLE, DAY_MS, rollupFrom, rollUpSelect } from '../../../src/modules/analytics/analytics-rollup';
import { NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { ResolvedHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { ipKey } from '../../../src/modules/ioc/ioc-range';
import { parseIp } from '../../../src/common/net/ip';
import { ClickHouseExecutor } from '../../../src/modules/report/groupings/clickhouse.executor';
import { BY_CATEGORY, BY_DEVICE, BY_DIRECTION, BY_IOC_LIST, BY_SEVERITY, KIND_TOTALS, TOTALS } from '../../../src/modules/report/groupings/groupings';
import { Grouping } from '../../../src/modules/report/groupings/grouping';
import { chdbConfig, closeChdb, describeChdb, openAnalyticsClient } from './chdb';
import { rng } from '../../helpers/capture';

/**
 * The daily roll-up (#16, analytics-rollup.ts) against the hits themselves: every grouping it serves gives the
 * same rows read through it as read from the hits alone, for windows of whole days, parts of days and both,
 * with each filter it takes; an attempt that never committed is not counted; every delete of hits (an attempt,
 * a device, uploads, the retention purge) leaves it agreeing, and the day the purge cut into is not read from it.
 * (The executors' property test also runs every grouping on this executor, the roll-up in use.)
 */
const START = Date.UTC(2024, 4, 1);
const FEW_VALUED: ReadonlyArray<Grouping<unknown>> = [TOTALS, KIND_TOTALS, BY_DIRECTION, BY_IOC_LIST, BY_CATEGORY, BY_SEVERITY, BY_DEVICE] as ReadonlyArray<
  Grouping<unknown>
>;

/** Hits of one upload spread over four days: IPv4 and IPv6 hosts and addresses, devices, lists, directions. */
function hits(accountId: number, uploadId: number, deviceIds: number[], n: number, seed: number): NewHit[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  return Array.from({ length: n }, () => {
    const list = 1 + Math.floor(r() * 3);
    const entry = list * 10 + Math.floor(r() * 4);
    const internal = pick(['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::5', '::ffff:10.0.0.1']);
    const external = pick(['198.51.100.7', '198.51.100.8', '2001:db8::7', '203.0.113.9']);
    const at = START + Math.floor(r() * 4 * DAY_MS);
    const outbound = r() < 0.6;
    return {
      accountId,
      firstSeenAt: at,
      lastSeenAt: at + Math.floor(r() * 60_000),
      deviceId: pick(deviceIds),
      uploadId,
      direction: outbound ? 'OUTBOUND' : 'INBOUND',
      protocol: 'TCP',
      internalIp: internal,
      internalKey: ipKey(parseIp(internal)!),
      internalPort: 40000,
      externalIp: external,
      externalKey: ipKey(parseIp(external)!),
      externalPort: 443,
      destinationPort: pick([443, 80]),
      matchedSide: 'EXTERNAL',
      matchedIp: external,
      matchedCidr: `${external}/${external.includes(':') ? 128 : 32}`,
      iocId: entry,
      iocListId: list,
      severity: list + 2,
      category: pick(['C2_BOTNET', 'SCANNER']),
      packetsForward: 1 + Math.floor(r() * 9),
      packetsReverse: Math.floor(r() * 9),
      bytesForward: Math.floor(r() * 9000),
      bytesReverse: Math.floor(r() * 9000),
      foundBy: 'UPLOAD',
      foundAt: at,
      retroHuntId: null,
    } as NewHit;
  });
}

describeChdb('the daily roll-up on chDB', () => {
  const config = chdbConfig();
  let client: ClickHouseClient;
  let writer: AnalyticsHits;
  let committed: CommittedAttempt[];

  beforeAll(async () => {
    client = openAnalyticsClient(config);
    await migrateAnalytics(client, { database: 'default', retentionDays: 0 });
    writer = new AnalyticsHits(client);
    committed = [];
    for (const [account, upload, devices, n] of [
      [1, 1, [1, 2], 400],
      [1, 2, [3], 300],
      [1, 3, [1], 200],
      [2, 4, [9], 150],
    ] as Array<[number, number, number[], number]>) {
      const attempt = await writer.write({ accountId: account, uploadId: upload }, hits(account, upload, devices, n, upload), null);
      committed.push({ uploadId: upload, attempt });
    }
    // A later run of upload 1 that never committed: other hits under another attempt, beside the committed one.
    await writer.write({ accountId: 1, uploadId: 1 }, hits(1, 1, [1, 2], 250, 99), committed[0].attempt);
  });
  afterAll(() => closeChdb(client, config));

  const filter = (from: number, to: number, more: Partial<ResolvedHitFilter> = {}): ResolvedHitFilter => ({ accountId: 1, from, to, ...more });
  /** Every few-valued grouping, alone and all asked for in one turn (one GROUPING SETS statement), through the roll-up and not. */
  const both = async (f: ResolvedHitFilter, from = Number.MIN_SAFE_INTEGER) => {
    const run = async (executor: ClickHouseExecutor) => ({
      alone: await FEW_VALUED.reduce<Promise<unknown[]>>(async (acc, g) => [...(await acc), await executor.group(g, f, { first: 10 })], Promise.resolve([])),
      together: await Promise.all(FEW_VALUED.map((g) => executor.group(g, f, { first: 10 }))),
    });
    return { rolled: await run(new ClickHouseExecutor(client, committed, from)), hits: await run(new ClickHouseExecutor(client, committed)) };
  };
  const statements = async (f: ResolvedHitFilter) => {
    const spy = jest.spyOn(client, 'query');
    try {
      await new ClickHouseExecutor(client, committed, Number.MIN_SAFE_INTEGER).group(TOTALS, f);
      return spy.mock.calls.map((c) => c[0].query);
    } finally {
      spy.mockRestore();
    }
  };

  it.each([
    ['whole days', START, START + 4 * DAY_MS],
    ['whole days inside a wider window', START - 3 * DAY_MS, START + 9 * DAY_MS],
    ['parts of days at both ends', START + 5 * 3_600_000 + 17, START + 3 * DAY_MS + 7 * 3_600_000],
    ['one whole day and a part', START + DAY_MS - 1, START + 2 * DAY_MS + 1],
    ['part of one day', START + 3_600_000, START + 20 * 3_600_000],
  ])('%s: the same rows as the hits give', async (_name, from, to) => {
    const { rolled, hits: raw } = await both(filter(from, to));
    expect(rolled).toEqual(raw);
    expect((raw.together[0] as Array<{ hits: number }>)[0].hits).toBeGreaterThan(0);
  });

  it.each([
    ['devices', { deviceIds: [1, 3] }],
    ['directions', { directions: ['INBOUND'] }],
    ['severities', { severities: [3, 5] }],
    ['lists', { listIds: [2] }],
    ['categories', { categories: ['SCANNER'] }],
    ['a minimum severity', { minSeverity: 4 }],
    ['nothing to match', { deviceIds: [] }],
    ['a port (read from the hits)', { ports: [443] }],
    // No upload has a verdict: every hit is OPEN, from the roll-up; none is anything else.
    ['verdicts: OPEN', { triageStatuses: ['OPEN'] }],
    ['verdicts: ACKNOWLEDGED', { triageStatuses: ['ACKNOWLEDGED'] }],
  ] as Array<[string, Partial<ResolvedHitFilter>]>)('filtered on %s: the same rows', async (_name, more) => {
    const { rolled, hits: raw } = await both(filter(START + 3_600_000, START + 3 * DAY_MS, more));
    expect(rolled).toEqual(raw);
  });

  it('reads whole days from the roll-up, and the hits alone when the filter or the window needs them', async () => {
    expect((await statements(filter(START, START + 2 * DAY_MS))).join('\n')).toContain(ANALYTICS_ROLLUP_TABLE);
    expect((await statements(filter(START, START + 2 * DAY_MS, { ports: [443] }))).join('\n')).not.toContain(ANALYTICS_ROLLUP_TABLE);
    expect((await statements(filter(START, START + 2 * DAY_MS, { foundSince: START }))).join('\n')).not.toContain(ANALYTICS_ROLLUP_TABLE);
    // No port excluded is no condition.
    expect((await statements(filter(START, START + 2 * DAY_MS, { excludePorts: [] }))).join('\n')).toContain(ANALYTICS_ROLLUP_TABLE);
    expect((await statements(filter(START + 1, START + DAY_MS + 1))).join('\n')).not.toContain(ANALYTICS_ROLLUP_TABLE);
    // The run of upload 1 that never committed has roll-up rows too: the reads above left them out, as they leave
    // its hits out.
    const [row] = await (
      await client.query({ query: `SELECT uniqExact(attempt) AS n FROM ${ANALYTICS_ROLLUP_TABLE} WHERE upload_id = 1`, format: 'JSONEachRow' })
    ).json<{ n: number }>();
    expect(Number(row.n)).toBe(2);
  });

  it('keeps each account to its own', async () => {
    const [mine] = await new ClickHouseExecutor(client, committed, Number.MIN_SAFE_INTEGER).group(TOTALS, filter(START, START + 4 * DAY_MS));
    const [theirs] = await new ClickHouseExecutor(client, committed, Number.MIN_SAFE_INTEGER).group(TOTALS, {
      ...filter(START, START + 4 * DAY_MS),
      accountId: 2,
    });
    expect([mine.hits, theirs.hits]).toEqual([900, 150]);
  });

  it('agrees after an attempt, a device and an upload are deleted, and keeps none of their rows', async () => {
    const [stale] = await (
      await client.query({
        query: 'SELECT max(attempt) AS a FROM flow_hit WHERE upload_id = 1 AND attempt != {c:UInt32}',
        query_params: { c: committed[0].attempt },
        format: 'JSONEachRow',
      })
    ).json<{ a: number }>();
    await writer.removeAttempt(1, Number(stale.a));
    await writer.deleteDevice(1, 2);
    await writer.deleteUploads([3]);
    const count = async (where: string) =>
      Number(
        (
          await (
            await client.query({ query: `SELECT count() AS n FROM ${ANALYTICS_ROLLUP_TABLE} WHERE ${where}`, format: 'JSONEachRow' })
          ).json<{ n: number }>()
        )[0].n,
      );
    expect([await count('device_id = 2'), await count('upload_id = 3'), await count(`upload_id = 1 AND attempt != ${committed[0].attempt}`)]).toEqual([
      0, 0, 0,
    ]);
    const { rolled, hits: raw } = await both(filter(START - DAY_MS, START + 5 * DAY_MS));
    expect(rolled).toEqual(raw);
    // Written again (a retry of the same attempt's roll-up), the rows are the same: read with FINAL, counted once.
    await client.command({ query: rollUpSelect('flow_hit', `upload_id = 2 AND attempt = ${committed[1].attempt}`) });
    expect(await count('upload_id = 2')).toBeGreaterThan(0);
    const again = await both(filter(START - DAY_MS, START + 5 * DAY_MS));
    expect(again.rolled).toEqual(raw);
    expect(again.hits).toEqual(raw);
  });

  it('lists an attempt the roll-up alone still holds (a stop between the two deletes), so the sweep removes it', async () => {
    const attempt = await writer.write({ accountId: 1, uploadId: 2 }, hits(1, 2, [3], 20, 7), committed[1].attempt);
    await client.command({ query: `DELETE FROM flow_hit WHERE upload_id = 2 AND attempt = ${attempt}` });
    const left = (await writer.attempts()).filter((a) => a.uploadId === 2 && a.attempt === attempt);
    expect(left).toEqual([{ uploadId: 2, attempt, rows: 0 }]);
    await writer.removeAttempts(left);
    const [row] = await (
      await client.query({ query: `SELECT count() AS n FROM ${ANALYTICS_ROLLUP_TABLE} WHERE upload_id = 2 AND attempt = ${attempt}`, format: 'JSONEachRow' })
    ).json<{ n: number }>();
    expect(Number(row.n)).toBe(0);
  });

  it('after the retention purge, answers from the days it still holds whole, and never from the day the purge cut into', async () => {
    const cutoff = START + DAY_MS + 9 * 3_600_000;
    await writer.purge(cutoff);
    const f = filter(START - DAY_MS, START + 5 * DAY_MS);
    // rollupFrom() of a retention whose cutoff was this one: from the second day after the cut.
    const from = rollupFrom(10, cutoff + 10 * DAY_MS);
    expect(from).toBe(START + 3 * DAY_MS);
    const { rolled, hits: raw } = await both(f, from);
    expect(rolled).toEqual(raw);
    // The day of the cutoff, read from the roll-up, would count the hits the purge removed: that is why it is not.
    const [wrong] = await new ClickHouseExecutor(client, committed, START).group(TOTALS, f);
    expect(wrong.hits).toBeGreaterThan((raw.alone[0] as Array<{ hits: number }>)[0].hits);
    // The roll-up's days wholly before the cutoff are gone with their hits.
    const [left] = await (await client.query({ query: `SELECT min(day) AS d FROM ${ANALYTICS_ROLLUP_TABLE}`, format: 'JSONEachRow' })).json<{ d: number }>();
    expect(Number(left.d)).toBe(START + DAY_MS);
  });
});
