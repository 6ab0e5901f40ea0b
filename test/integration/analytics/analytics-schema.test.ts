import { ANALYTICS_HITS_TABLE, ANALYTICS_MIGRATIONS, migrateAnalytics } from '../../../src/modules/analytics/analytics-schema';
import { ANALYTICS_ROLLUP_TABLE, rollUpSelect } from '../../../src/modules/analytics/analytics-rollup';
import { HIT_COLUMNS } from '../../../src/modules/flow-hit/flow-hit.columns';
import { chAggregate } from '../../../src/modules/report/groupings/clickhouse.executor';
import { chdbConfig, closeChdb, describeChdb, openAnalyticsClient } from './chdb';

async function rows<T>(client: ReturnType<typeof openAnalyticsClient>, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

describeChdb('analytics schema on chDB', () => {
  // Opened in beforeAll: a skipped describe still runs its body, and without chDB opening it throws.
  let config: ReturnType<typeof chdbConfig>;
  let client: ReturnType<typeof openAnalyticsClient>;
  beforeAll(() => {
    config = chdbConfig();
    client = openAnalyticsClient(config);
  });
  afterAll(() => closeChdb(client, config));
  /** A property of each flow_hit column (system.columns), by column name. */
  const columnsBy = async (property: 'type' | 'compression_codec') =>
    new Map(
      (
        await rows<{ name: string; value: string }>(
          client,
          `SELECT name, ${property} AS value FROM system.columns WHERE database = currentDatabase() AND table = '${ANALYTICS_HITS_TABLE}'`,
        )
      ).map((c) => [c.name, c.value]),
    );

  /** The tables of an install at `version`: the versions up to it run and recorded, nothing else. */
  const installAt = async (version: number) => {
    for (const table of [ANALYTICS_HITS_TABLE, ANALYTICS_ROLLUP_TABLE, 'schema_migrations']) await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
    await client.command({
      query: 'CREATE TABLE schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version',
    });
    for (const m of ANALYTICS_MIGRATIONS.filter((x) => x.version <= version)) {
      for (const statement of m.statements()) await client.command({ query: statement });
      await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
    }
  };

  it('applies every version once, then nothing on a second start', async () => {
    const first = await migrateAnalytics(client, { database: 'default', retentionDays: 35 });
    expect(first).toEqual(ANALYTICS_MIGRATIONS.map((m) => m.version));
    expect(await migrateAnalytics(client, { database: 'default', retentionDays: 35 })).toEqual([]);
    const recorded = await rows<{ version: number }>(client, 'SELECT version FROM schema_migrations ORDER BY version');
    expect(recorded.map((r) => r.version)).toEqual(first);
  });

  it('has every flow_hit column of flow-hit.columns.ts, the attempt and its place in it, and the host as a number', async () => {
    const columns = await rows<{ name: string }>(
      client,
      `SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '${ANALYTICS_HITS_TABLE}' ORDER BY position`,
    );
    expect(columns.map((c) => c.name)).toEqual([...HIT_COLUMNS.map((c) => c.sql), 'attempt', 'seq', 'host_ip']);
  });

  it('compresses each column with its codec (version 31: integers T64 + ZSTD, text ZSTD, the capture time Delta + ZSTD)', async () => {
    const codecs = await columnsBy('compression_codec');
    expect(codecs.get('severity')).toBe('CODEC(T64, ZSTD(3))');
    expect(codecs.get('internal_port')).toBe('CODEC(T64, ZSTD(3))');
    expect(codecs.get('seq')).toBe('CODEC(T64, ZSTD(3))');
    expect(codecs.get('host_ip')).toBe('CODEC(T64, ZSTD(3))');
    expect(codecs.get('internal_ip')).toBe('CODEC(ZSTD(3))');
    expect(codecs.get('first_seen_at')).toBe('CODEC(Delta(8), ZSTD(1))');
    expect([...codecs.values()].filter((c) => c === '')).toEqual([]);
  });

  it('keeps the internal host, its key and the CIDR matched dictionary-encoded (version 32), the external side as plain text', async () => {
    const types = await columnsBy('type');
    for (const c of ['internal_ip', 'internal_key', 'matched_cidr']) expect([c, types.get(c)]).toEqual([c, 'LowCardinality(String)']);
    for (const c of ['external_ip', 'external_key', 'matched_ip']) expect([c, types.get(c)]).toEqual([c, 'String']);
  });

  it('is partitioned by month and ordered by account then time', async () => {
    const [table] = await rows<{ partition_key: string; sorting_key: string }>(
      client,
      `SELECT partition_key, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = '${ANALYTICS_HITS_TABLE}'`,
    );
    expect(table.partition_key).toContain('toYYYYMM');
    expect(table.sorting_key.split(',').map((s) => s.trim())).toEqual(['account_id', 'first_seen_at', 'upload_id', 'attempt', 'seq']);
  });

  it('keeps RETENTION_DAYS as the TTL, changes it with the setting, and removes it at 0', async () => {
    const ttl = async (table = ANALYTICS_HITS_TABLE) =>
      (await rows<{ engine_full: string }>(client, `SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '${table}'`))[0]
        .engine_full;
    // The daily roll-up keeps its days two days longer (a day is read from it only while none of its hits can have gone).
    expect(await ttl()).toMatch(/TTL .*toIntervalDay\(35\)/);
    expect(await ttl(ANALYTICS_ROLLUP_TABLE)).toMatch(/TTL .*toIntervalDay\(37\)/);
    await migrateAnalytics(client, { database: 'default', retentionDays: 7 });
    expect(await ttl()).toMatch(/TTL .*toIntervalDay\(7\)/);
    expect(await ttl(ANALYTICS_ROLLUP_TABLE)).toMatch(/TTL .*toIntervalDay\(9\)/);
    await migrateAnalytics(client, { database: 'default', retentionDays: 0 });
    expect(await ttl()).not.toMatch(/TTL/);
    expect(await ttl(ANALYTICS_ROLLUP_TABLE)).not.toMatch(/TTL/);
  });

  it('drops hits past the TTL when the table is optimized', async () => {
    await migrateAnalytics(client, { database: 'default', retentionDays: 30 });
    const now = Date.now();
    const hit = (firstSeenAt: number, seq: number) => ({
      account_id: 1,
      first_seen_at: firstSeenAt,
      last_seen_at: firstSeenAt,
      upload_id: 1,
      attempt: 1,
      seq,
      id: seq,
    });
    await client.insert({ table: ANALYTICS_HITS_TABLE, values: [hit(now - 40 * 86_400_000, 1), hit(now - 86_400_000, 2)], format: 'JSONEachRow' });
    await client.command({ query: `OPTIMIZE TABLE ${ANALYTICS_HITS_TABLE} FINAL` });
    expect(await rows<{ seq: number }>(client, `SELECT seq FROM ${ANALYTICS_HITS_TABLE}`)).toEqual([{ seq: 2 }]);
  });
  it('rewrites hits stored before version 32 with the same values', async () => {
    // The state of an install at version 31: its statements run and recorded, then hits written.
    await installAt(31);
    const hit = (seq: number, ip: string, cidr: string) => ({
      account_id: 1,
      first_seen_at: 1_700_000_000_000 + seq,
      last_seen_at: 1_700_000_000_000 + seq,
      upload_id: 1,
      attempt: 1,
      seq,
      id: seq,
      internal_ip: ip,
      internal_key: `k-${ip}`,
      matched_cidr: cidr,
      external_ip: '198.51.100.7',
    });
    const before = [hit(1, '10.0.0.1', '198.51.100.0/24'), hit(2, 'fd00::1', '198.51.100.7/32'), hit(3, '10.0.0.1', '198.51.100.0/24')];
    await client.insert({ table: ANALYTICS_HITS_TABLE, values: before, format: 'JSONEachRow' });
    const partType = async () =>
      (
        await rows<{ type: string }>(
          client,
          `SELECT DISTINCT type FROM system.parts_columns WHERE active AND database = currentDatabase() AND table = '${ANALYTICS_HITS_TABLE}' AND column = 'internal_ip'`,
        )
      ).map((r) => r.type);
    expect(await partType()).toEqual(['String']);
    expect(await migrateAnalytics(client, { database: 'default', retentionDays: 0 })).toEqual([32, 33, 34]);
    await client.command({ query: `OPTIMIZE TABLE ${ANALYTICS_HITS_TABLE} FINAL` });
    // The parts themselves now hold the dictionary, and every value reads back as it was written.
    expect(await partType()).toEqual(['LowCardinality(String)']);
    expect(
      await rows<Record<string, unknown>>(client, `SELECT seq, internal_ip, internal_key, matched_cidr FROM ${ANALYTICS_HITS_TABLE} ORDER BY seq`),
    ).toEqual(before.map((h) => ({ seq: h.seq, internal_ip: h.internal_ip, internal_key: h.internal_key, matched_cidr: h.matched_cidr })));
    // Version 33 filled the daily roll-up from the hits already there; the backfill run again (a second process
    // migrating at once) leaves the same rows.
    const rollup = () =>
      rows<Record<string, number>>(
        client,
        `SELECT sum(hits) AS hits, uniqExactIfMerge(hosts_ip) + uniqExactIfMerge(hosts_text) AS hosts, uniqExactMerge(entries) AS entries,
                uniqExactIfMerge(externals_ip) + uniqExactIfMerge(externals_text) AS externals, count() AS rows FROM ${ANALYTICS_ROLLUP_TABLE} FINAL`,
      );
    expect(await rollup()).toEqual([{ hits: 3, hosts: 2, entries: 1, externals: 1, rows: 1 }]);
    await client.command({ query: rollUpSelect(ANALYTICS_HITS_TABLE, '1') });
    expect(await rollup()).toEqual([{ hits: 3, hosts: 2, entries: 1, externals: 1, rows: 1 }]);
  });

  it('gives hits stored before version 34 their host number, and every hit written after it', async () => {
    await installAt(33);
    const hit = (seq: number, device: number, ip: string) => ({
      account_id: 1,
      first_seen_at: 1_700_000_000_000 + seq,
      upload_id: 1,
      attempt: 1,
      seq,
      id: seq,
      device_id: device,
      internal_ip: ip,
    });
    // An IPv4 host, the same address on another device, an IPv6 host, and texts that are not an IPv4 address as it
    // prints (a leading zero, IPv4-mapped IPv6): only the first two are numbers, and device 0 has none.
    const ipv4 = (device: number, a: number) => (BigInt(device) << 32n) | BigInt(a);
    const rowsOf = [
      [hit(1, 3, '10.0.0.1'), ipv4(3, 0x0a000001)],
      [hit(2, 4, '10.0.0.1'), ipv4(4, 0x0a000001)],
      [hit(3, 3, 'fd00::1'), 0n],
      [hit(4, 3, '010.0.0.1'), 0n],
      [hit(5, 3, '::ffff:10.0.0.1'), 0n],
      [hit(6, 0, '10.0.0.1'), 0n],
      [hit(7, 3, '10.0.0.1'), ipv4(3, 0x0a000001)],
      [hit(8, 3, 'fd00::1'), 0n],
    ] as const;
    await client.insert({ table: ANALYTICS_HITS_TABLE, values: rowsOf.slice(0, 3).map(([h]) => h), format: 'JSONEachRow' });
    expect(await migrateAnalytics(client, { database: 'default', retentionDays: 0 })).toEqual([34]);
    await client.insert({ table: ANALYTICS_HITS_TABLE, values: rowsOf.slice(3).map(([h]) => h), format: 'JSONEachRow' });
    const hosts = async () =>
      (await rows<{ seq: number; host_ip: string }>(client, `SELECT seq, toString(host_ip) AS host_ip FROM ${ANALYTICS_HITS_TABLE} ORDER BY seq`)).map((r) => [
        r.seq,
        BigInt(r.host_ip),
      ]);
    const expected = rowsOf.map(([h, n]) => [h.seq, n]);
    // Right when read before the parts are rewritten, and after (the mutation, then a merge).
    expect(await hosts()).toEqual(expected);
    await client.command({ query: `OPTIMIZE TABLE ${ANALYTICS_HITS_TABLE} FINAL` });
    expect(await hosts()).toEqual(expected);
    // Run again (a second process migrating at once): nothing changes.
    for (const statement of ANALYTICS_MIGRATIONS.find((m) => m.version === 34)!.statements()) await client.command({ query: statement });
    expect(await hosts()).toEqual(expected);
    const stored = await rows<{ n: number }>(
      client,
      `SELECT count() AS n FROM system.parts_columns WHERE active AND database = currentDatabase() AND table = '${ANALYTICS_HITS_TABLE}' AND column = 'host_ip'`,
    );
    expect(Number(stored[0].n)).toBeGreaterThan(0);
    // Distinct hosts over both sides of the number (the executor's measure): each (device, text) once, 6 of 8 hits.
    expect(await rows<{ n: number }>(client, `SELECT ${chAggregate('distinctHosts')} AS n FROM ${ANALYTICS_HITS_TABLE}`)).toEqual([{ n: 6 }]);
  });
});
