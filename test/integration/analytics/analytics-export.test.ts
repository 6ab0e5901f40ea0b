import type { DataSource } from 'typeorm';
import { migrateAnalytics } from '../../../src/modules/analytics/analytics-schema';
import { AnalyticsHits } from '../../../src/modules/analytics/analytics-hits';
import { AnalyticsFlowHits } from '../../../src/modules/analytics/analytics-flow-hits';
import type { Analytics } from '../../../src/modules/analytics/analytics';
import { NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { FlowHitOrder } from '../../../src/modules/flow-hit/flow-hit.enums';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { csvCell, EXPORT_SQL_COLUMNS, ExportFormat, exportLineFormatter, ExportNames, ExportRow } from '../../../src/modules/report/export/export-format';
import { chdbConfig, closeChdb, describeChdb, openAnalyticsClient } from './chdb';

/**
 * The export and the drill-down read ClickHouse in the table's sort key order (account_id, first_seen_at,
 * upload_id, attempt, seq) where they promise (first_seen_at, id): the same order for the rows a read keeps, one
 * committed attempt per upload. Checked on the real engine with hits of several uploads at the same instants,
 * written in the reverse order of their ids, beside an attempt that never committed and another account's hits;
 * and the export's TabSeparated path against ClickHouse's escaping of every awkward character.
 */
const T0 = Date.parse('2024-05-01T00:00:00Z');
const AWKWARD = ['tab\there', 'line\nbreak', 'cr\rx', 'back\\slash', "quote'", 'say "hi", ok', '=1+1', '-x', 'zürich', '日本', 'nul\0', '\b\f', ''];

function hit(accountId: number, uploadId: number, i: number): NewHit {
  const awkward = AWKWARD[(uploadId * 7 + i) % AWKWARD.length];
  return {
    accountId,
    // Three instants shared by every upload: ties that only the id orders.
    firstSeenAt: T0 + (i % 3) * 1000,
    lastSeenAt: T0 + 5000,
    deviceId: 1 + (i % 3),
    uploadId,
    direction: i % 2 ? 'INBOUND' : 'OUTBOUND',
    protocol: i % 5 === 0 ? awkward : 'TCP',
    internalIp: `10.0.${uploadId}.${i}`,
    internalKey: `k${i}`,
    internalPort: i % 4 === 0 ? null : 40000 + i,
    externalIp: awkward,
    externalKey: `e${i}`,
    externalPort: i % 4 === 0 ? null : 443,
    destinationPort: i % 4 === 0 ? null : 443,
    matchedSide: 'EXTERNAL',
    matchedIp: '198.51.100.7',
    matchedCidr: '198.51.100.0/24',
    iocId: 1 + i,
    iocListId: 1 + (i % 2),
    severity: i % 6,
    category: i % 3 === 0 ? awkward : 'MALWARE',
    packetsForward: i,
    packetsReverse: 0,
    // Past 2^53: JSON.parse rounds it, and so must the text path.
    bytesForward: i === 4 ? Number.MAX_SAFE_INTEGER + 2 : i * 100,
    bytesReverse: -i,
    foundBy: 'UPLOAD',
    foundAt: T0 + i,
    retroHuntId: i % 2 ? null : 9,
  } as NewHit;
}

describeChdb('export and drill-down order on chDB', () => {
  let config: ReturnType<typeof chdbConfig>;
  let client: ReturnType<typeof openAnalyticsClient>;
  let reads: AnalyticsFlowHits;
  const committed: Array<{ id: number; analytics_attempt: number }> = [];
  const names: ExportNames = {
    Device: new Map([
      [1, 'hq'],
      [2, 'lab, "east"'],
    ]),
    IocList: new Map([[1, 'bad']]),
  };
  const filter = () => resolveHitFilter(1, { from: new Date(T0 - 60_000), to: new Date(T0 + 60_000) });

  beforeAll(async () => {
    config = chdbConfig();
    client = openAnalyticsClient(config);
    await migrateAnalytics(client, { database: 'default', retentionDays: 0 });
    const hits = new AnalyticsHits(client);
    // Uploads written newest first, so the parts do not hold them in id order; another account's at the same instants.
    for (const uploadId of [5, 3, 2]) {
      const attempt = await hits.write(
        { accountId: 1, uploadId },
        Array.from({ length: 9 }, (_, i) => hit(1, uploadId, i)),
        null,
      );
      committed.push({ id: uploadId, analytics_attempt: attempt });
    }
    await hits.write(
      { accountId: 2, uploadId: 4 },
      Array.from({ length: 6 }, (_, i) => hit(2, 4, i)),
      null,
    );
    // A second attempt of upload 3 that never committed: no read may keep its rows.
    const kept = committed.find((c) => c.id === 3)!.analytics_attempt;
    await hits.write(
      { accountId: 1, uploadId: 3 },
      Array.from({ length: 4 }, (_, i) => hit(1, 3, 100 + i)),
      kept,
    );
    const dataSource = { manager: { query: async () => committed } } as unknown as DataSource;
    reads = new AnalyticsFlowHits({ client, ready: true } as unknown as Analytics, dataSource);
  });
  afterAll(() => closeChdb(client, config));

  /** The committed rows in (first_seen_at, id) order, decoded as JSONCompactEachRow decodes them: the rows path's input. */
  async function expectedRows(): Promise<ExportRow[]> {
    const pairs = committed.map((c) => `(${c.id}, ${c.analytics_attempt})`).join(', ');
    const result = await client.query({
      query: `SELECT ${EXPORT_SQL_COLUMNS.join(', ')} FROM flow_hit WHERE account_id = 1 AND (upload_id, attempt) IN (${pairs}) ORDER BY first_seen_at, id`,
      format: 'JSONCompactEachRow',
    });
    return (await result.json()) as ExportRow[];
  }

  it.each<[ExportFormat, number]>([
    ['csv', 1],
    ['csv', 2],
    ['csv', 5],
    ['csv', 1000],
    ['ndjson', 4],
  ])('exports every committed row once, in (first_seen_at, id) order, with the bytes of the rows path (%s, batches of %d)', async (format, size) => {
    const rows = await expectedRows();
    expect(rows).toHaveLength(27);
    const expected = exportLineFormatter(format, names, EXPORT_SQL_COLUMNS).lines(rows).toString('utf8');
    const parts: string[] = [];
    let count = 0;
    let batches = 0;
    for await (const b of reads.exportRows(filter(), size)) {
      parts.push(exportLineFormatter(format, names, b.columns).tsv(b.tsv).toString('utf8'));
      count += b.rows;
      batches++;
    }
    expect(count).toBe(27);
    expect(batches).toBe(Math.ceil(27 / size));
    expect(parts.join('')).toBe(expected);
    // Every awkward text went through ClickHouse's escaping and back.
    for (const s of AWKWARD.filter((a) => a !== '')) expect(expected).toContain(format === 'csv' ? `,${csvCell(s)},` : `:${JSON.stringify(s)},`);
  });

  /** The reads over a client whose statement number `failing` (counted from 1) fails as a dropped connection would. */
  function failingReads(failing: number, settle?: Promise<void>): { reads: AnalyticsFlowHits; statements: () => number } {
    let n = 0;
    const flaky = Object.create(client) as typeof client;
    flaky.query = (async (args: Parameters<typeof client.query>[0]) => {
      n++;
      if (n !== failing) return client.query(args);
      await settle;
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }) as typeof client.query;
    const dataSource = { manager: { query: async () => committed } } as unknown as DataSource;
    return { reads: new AnalyticsFlowHits({ client: flaky, ready: true } as unknown as Analytics, dataSource), statements: () => n };
  }

  it('hands over the batches read before ClickHouse failed, then ANALYTICS_UNAVAILABLE for the batch read ahead', async () => {
    const { reads: flaky } = failingReads(3);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const b of flaky.exportRows(filter(), 5)) got.push(b.rows);
      })(),
    ).rejects.toMatchObject({ extensions: { code: 'ANALYTICS_UNAVAILABLE' } });
    // Statements 1 and 2 were read; the third (read ahead while the second was handed over) failed.
    expect(got).toEqual([5, 5]);
  });

  it('leaves no unhandled rejection when the caller stops while the batch read ahead fails', async () => {
    let release!: () => void;
    const settle = new Promise<void>((resolve) => (release = resolve));
    const { reads: flaky, statements } = failingReads(2, settle);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for await (const b of flaky.exportRows(filter(), 5)) {
        expect(b.rows).toBe(5);
        break;
      }
      // The caller is gone; the statement read ahead fails only now.
      expect(statements()).toBe(2);
      release();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it.each([
    [FlowHitOrder.FIRST_SEEN_ASC, 1],
    [FlowHitOrder.FIRST_SEEN_DESC, 1],
    [FlowHitOrder.FIRST_SEEN_ASC, 4],
    [FlowHitOrder.FIRST_SEEN_DESC, 5],
  ])('pages the drill-down in %s order across ties at one instant (pages of %d)', async (order, first) => {
    const ids: number[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await reads.search(filter(), order, { first, after });
      ids.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    const rows = await expectedRows();
    const idAt = EXPORT_SQL_COLUMNS.indexOf('id');
    const ascending = rows.map((r) => Number(r[idAt]));
    expect(ids).toEqual(order === FlowHitOrder.FIRST_SEEN_ASC ? ascending : [...ascending].reverse());
  });
});
