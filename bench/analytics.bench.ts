/**
 * The analytics tier's reads (#16): the dashboard, `hitReport` with every grouping, the drill-down (page 1 and
 * page 50) and the CSV export from ClickHouse (chDB, in this process) against the SQL executor (SQLite) on the
 * same hits, measured in the same run, interleaved; and the bytes per hit ClickHouse stores (system.parts).
 *
 *   node -r @swc-node/register --expose-gc bench/analytics.bench.ts [--hits 10000000] [--days 120] [--runs 20]
 *        [--sql-runs 20] [--export-runs 3] [--window-days 30]
 *
 * Hits are spread evenly over --days days (ending now), one upload per day, each written to SQLite as the SQL
 * path keeps them (flow_hit and its roll-ups) and to ClickHouse through AnalyticsHits under a committed attempt,
 * as the hit writer does with ANALYTICS_URL. Reads go through the services the resolvers call (ReportService,
 * FlowHitService, exportHits), not over HTTP: the figures are the executors'. Every case runs once per run, both
 * executors in turn, so a noisy neighbour on this shared machine hits all alike. p95 is nearest-rank. With fewer
 * runs than 20 (--sql-runs, --export-runs: the SQL executor takes seconds a report at 10M hits) a figure is flagged
 * as indicative. The answers of the two executors are compared on each case's first run. Asserts nothing.
 *
 * --analytics-only (for 100M hits): ClickHouse alone, no SQL executor. The first --app-days days (default 2) are
 * written through AnalyticsHits as the hit writer does (the app's load rate); the rest are made by ClickHouse
 * itself (INSERT ... SELECT with the same distribution: hitsSql()), its own load rate. Each day is an upload with
 * its committed attempt in SQL, as the reads need.
 */
import './lib/production-env';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { DataSource } from 'typeorm';
import { argValue } from './lib/args';
import { createDataSource } from '../src/db/data-source';
import { bulkInsertObjects, execute } from '../src/db/bulk';
import { sqliteHandle } from '../src/db/sqlite-handle';
import { INSERT_COLUMNS, NewHit } from '../src/modules/flow-hit/flow-hit.columns';
import { insertRollups } from '../src/modules/flow-hit/hit-rollup';
import { ipv4Key } from '../src/modules/ioc/ioc-range';
import { parseIpv4 } from '../src/common/net/ip';
import { resolveHitFilter, ResolvedHitFilter } from '../src/modules/flow-hit/hit-filter';
import { FlowHitOrder } from '../src/modules/flow-hit/flow-hit.enums';
import { FlowHitService } from '../src/modules/flow-hit/flow-hit.service';
import { Analytics } from '../src/modules/analytics/analytics';
import { AnalyticsHits, HIT_ID_UPLOAD_STRIDE } from '../src/modules/analytics/analytics-hits';
import { AnalyticsFlowHits } from '../src/modules/analytics/analytics-flow-hits';
import { rollUpSelect } from '../src/modules/analytics/analytics-rollup';
import { ReportService } from '../src/modules/report/report.service';
import { GROUPINGS, TOTALS, TOTALS_BUT_HITS } from '../src/modules/report/groupings/groupings';
import { TriageStatus } from '../src/modules/flow-hit/hit-triage.enums';
import { TimeBucket } from '../src/modules/report/report.enums';
import { exportHits } from '../src/modules/report/export/hit-export';
import { toGlobalId } from '../src/common/ids/global-id';

const HITS = Number(argValue('hits') ?? 10_000_000);
const DAYS = Number(argValue('days') ?? 120);
const RUNS = Number(argValue('runs') ?? 20);
const SQL_RUNS = Math.min(RUNS, Number(argValue('sql-runs') ?? RUNS));
const EXPORT_RUNS = Number(argValue('export-runs') ?? 3);
const WINDOW_DAYS = Number(argValue('window-days') ?? 30);
const ANALYTICS_ONLY = process.argv.includes('--analytics-only');
const APP_DAYS = Number(argValue('app-days') ?? 2);
const DAY = 86_400_000;
const ACCOUNT = 1;
const DEVICES = 20;
const HOSTS = 250;
const ENTRIES = 2_000;
const LISTS = 5;
const CATEGORIES = ['C2_BOTNET', 'SCANNER', 'MALWARE', 'BRUTE_FORCE', 'PHISHING'];

const progress = (s: string) => process.stderr.write(`${s}\n`);

/** A small fast PRNG (mulberry32): the same hits every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hitsOfDay(day: number, n: number, start: number, r: () => number): NewHit[] {
  const out: NewHit[] = [];
  for (let i = 0; i < n; i++) {
    // Skewed: a few entries and hosts take most hits, as in real captures.
    const entry = Math.floor(ENTRIES * r() ** 3);
    const list = entry % LISTS;
    const device = 1 + Math.floor(DEVICES * r() ** 2);
    const host = Math.floor(HOSTS * r() ** 2);
    const internal = `10.${device}.${host >> 8}.${host & 255}`;
    const external = `198.${18 + (entry >> 16)}.${(entry >> 8) & 255}.${entry & 255}`;
    const at = start + Math.floor(r() * DAY);
    const outbound = r() < 0.7;
    const port = [443, 80, 22, 53, 8080][Math.floor(r() * 5)];
    const packets = 1 + Math.floor(r() * 20);
    out.push({
      accountId: ACCOUNT,
      firstSeenAt: at,
      lastSeenAt: at + Math.floor(r() * 60_000),
      deviceId: device,
      uploadId: day + 1,
      direction: outbound ? 'OUTBOUND' : 'INBOUND',
      protocol: port === 53 ? 'UDP' : 'TCP',
      internalIp: internal,
      internalKey: ipv4Key(parseIpv4(internal)!),
      internalPort: outbound ? 40000 + (i % 20000) : port,
      externalIp: external,
      externalKey: ipv4Key(parseIpv4(external)!),
      externalPort: outbound ? port : 40000 + (i % 20000),
      destinationPort: port,
      matchedSide: 'EXTERNAL',
      matchedIp: external,
      matchedCidr: `${external}/32`,
      iocId: entry + 1,
      iocListId: list + 1,
      severity: 1 + (list % 5),
      category: CATEGORIES[list],
      packetsForward: packets,
      packetsReverse: packets >> 1,
      bytesForward: packets * 80,
      bytesReverse: (packets >> 1) * 900,
      foundBy: 'UPLOAD',
      foundAt: at,
      retroHuntId: null,
    });
  }
  return out;
}

/**
 * hitsOfDay()'s hits of one day made by ClickHouse itself (--analytics-only): the same columns and distribution
 * (entries, devices and hosts skewed alike), from ClickHouse's random numbers instead of the bench's PRNG.
 */
function hitsSql(day: number, n: number, start: number, attempt: number): string {
  const upload = day + 1;
  const r = (k: number) => `(rand(${k}) / 4294967296)`;
  return `INSERT INTO flow_hit (id, account_id, upload_id, device_id, direction, protocol, internal_ip, internal_key, internal_port, external_ip,
      external_key, external_port, destination_port, matched_side, matched_ip, matched_cidr, ioc_id, ioc_list_id, severity, category,
      packets_forward, packets_reverse, bytes_forward, bytes_reverse, first_seen_at, last_seen_at, found_by, found_at, retro_hunt_id, attempt, seq)
    SELECT ${upload} * ${HIT_ID_UPLOAD_STRIDE} + i, ${ACCOUNT}, ${upload}, device, if(outbound, 'OUTBOUND', 'INBOUND'), if(port = 53, 'UDP', 'TCP'),
      internal, concat('${ipv4Key(0).slice(0, -8)}', lower(leftPad(hex(IPv4StringToNum(internal)), 8, '0'))), if(outbound, 40000 + i % 20000, port),
      external, concat('${ipv4Key(0).slice(0, -8)}', lower(leftPad(hex(IPv4StringToNum(external)), 8, '0'))), if(outbound, port, 40000 + i % 20000), port,
      'EXTERNAL', external, concat(external, '/32'), entry + 1, entry % ${LISTS} + 1, 1 + entry % ${LISTS} % 5,
      [${CATEGORIES.map((c) => `'${c}'`).join(', ')}][entry % ${LISTS} + 1], packets, intDiv(packets, 2), packets * 80, intDiv(packets, 2) * 900,
      at, at + toInt64(floor(${r(5)} * 60000)), 'UPLOAD', at, NULL, ${attempt}, i
    FROM (SELECT number AS i, toInt64(floor(${ENTRIES} * pow(${r(1)}, 3))) AS entry, 1 + toInt64(floor(${DEVICES} * pow(${r(2)}, 2))) AS device,
      toInt64(floor(${HOSTS} * pow(${r(3)}, 2))) AS host,
      concat('10.', toString(device), '.', toString(bitShiftRight(host, 8)), '.', toString(bitAnd(host, 255))) AS internal,
      concat('198.', toString(18 + bitShiftRight(entry, 16)), '.', toString(bitAnd(bitShiftRight(entry, 8), 255)), '.', toString(bitAnd(entry, 255))) AS external,
      ${start} + toInt64(floor(${r(4)} * ${DAY})) AS at, ${r(6)} < 0.7 AS outbound, [443, 80, 22, 53, 8080][1 + toInt64(floor(${r(7)} * 5))] AS port,
      1 + toInt64(floor(${r(8)} * 20)) AS packets
      FROM numbers(${n}))`;
}

let engineMs = 0;
let engineHits = 0;

async function seed(ds: DataSource, ch: AnalyticsHits, client: ClickHouseClient, end: number): Promise<{ sqlMs: number; chMs: number; genMs: number }> {
  const db = sqliteHandle(ds)!;
  // Raw rows for the benchmark: accounts, devices and uploads are not what is measured.
  db.pragma('foreign_keys = OFF');
  const r = rng(16);
  let sqlMs = 0;
  let chMs = 0;
  let genMs = 0;
  const perDay = Math.floor(HITS / DAYS);
  for (let day = 0; day < DAYS; day++) {
    const n = day === DAYS - 1 ? HITS - perDay * (DAYS - 1) : perDay;
    if (ANALYTICS_ONLY && day >= APP_DAYS) {
      const t = performance.now();
      const attempt = 1 + day;
      await client.command({ query: hitsSql(day, n, end - (DAYS - day) * DAY, attempt) });
      // Its daily roll-up rows, as the hit writer writes an attempt's (AnalyticsHits.write).
      await client.command({ query: rollUpSelect('flow_hit', `upload_id = ${day + 1} AND attempt = ${attempt}`) });
      engineMs += performance.now() - t;
      engineHits += n;
      await execute(
        ds.manager,
        `INSERT INTO log_upload (id, account_id, device_id, source, file_name, size, text_bytes, stored_bytes, md5, status, received_at, analytics_attempt) VALUES (?, ?, 1, 'API', 'x', 0, 0, 0, ?, 'COMPLETED', ?, ?)`,
        [day + 1, ACCOUNT, `md5-${day}`, end, attempt],
      );
      if (day % 10 === 9)
        progress(`  seeded ${(((day + 1) * perDay) / 1e6).toFixed(1)}M hits (ClickHouse INSERT ... SELECT ${(engineMs / 1000).toFixed(0)} s)`);
      continue;
    }
    let t = performance.now();
    const hits = hitsOfDay(day, n, end - (DAYS - day) * DAY, r);
    genMs += performance.now() - t;
    t = performance.now();
    await ds.transaction(async (em) => {
      await execute(
        em,
        `INSERT INTO log_upload (id, account_id, device_id, source, file_name, size, text_bytes, stored_bytes, md5, status, received_at) VALUES (?, ?, 1, 'API', 'x', 0, 0, 0, ?, 'COMPLETED', ?)`,
        [day + 1, ACCOUNT, `md5-${day}`, end],
      );
      if (ANALYTICS_ONLY) return;
      await bulkInsertObjects(em, 'flow_hit', INSERT_COLUMNS, hits);
      await insertRollups(em, hits);
    });
    sqlMs += performance.now() - t;
    t = performance.now();
    const attempt = await ch.write({ accountId: ACCOUNT, uploadId: day + 1 }, hits, null);
    chMs += performance.now() - t;
    await execute(ds.manager, `UPDATE log_upload SET analytics_attempt = ? WHERE id = ?`, [attempt, day + 1]);
    if (day % 10 === 9)
      progress(`  seeded ${(((day + 1) * perDay) / 1e6).toFixed(1)}M hits (SQL ${(sqlMs / 1000).toFixed(0)} s, ClickHouse ${(chMs / 1000).toFixed(0)} s)`);
  }
  return { sqlMs, chMs, genMs };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const median = (xs: number[]) => pct(xs, 50);

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

interface Side {
  name: 'SQL' | 'ClickHouse';
  reports: ReportService;
  hits: FlowHitService;
  exportFrom: AnalyticsFlowHits | null;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ch-reads-bench-'));
  const ds = createDataSource({ type: 'sqlite', file: path.join(dir, 'db.sqlite') } as never);
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const analytics = new Analytics({ kind: 'chdb', path: path.join(dir, 'chdb'), database: 'default' }, 0);
  await analytics.migrate();
  const end = Math.floor(Date.now() / DAY) * DAY;
  progress(`seeding ${HITS.toLocaleString('en')} hits over ${DAYS} days into SQLite and chDB ...`);
  const t0 = performance.now();
  const seeded = await seed(ds, new AnalyticsHits(analytics.client), analytics.client, end);
  const seedS = (performance.now() - t0) / 1000;
  const partsNow = async () =>
    Number(
      (
        await (
          await analytics.client.query({
            query: `SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase() AND table = 'flow_hit'`,
            format: 'JSONEachRow',
          })
        ).json<{ n: number }>()
      )[0].n,
    );
  const partsSeeded = await partsNow();
  // A server merges a table's parts in the background; chDB, in this process, has merged what it had time for:
  // the merge a server would have done is asked for here (timed apart), unless --no-optimize.
  const t1 = performance.now();
  if (!process.argv.includes('--no-optimize')) await analytics.client.command({ query: 'OPTIMIZE TABLE flow_hit FINAL' });
  const optimizeS = (performance.now() - t1) / 1000;
  const partsRead = await partsNow();
  if (!process.argv.includes('--no-optimize')) await analytics.client.command({ query: 'OPTIMIZE TABLE flow_hit_daily FINAL' });
  // The hits and their daily roll-up: what storing a hit costs.
  const [stored] = await (
    await analytics.client.query({
      query: `SELECT sum(bytes_on_disk) AS all_bytes, sumIf(rows, table = 'flow_hit') AS hit_rows, sumIf(bytes_on_disk, table = 'flow_hit_daily') AS rollup_bytes,
                     sumIf(rows, table = 'flow_hit_daily') AS rollup_rows
              FROM system.parts WHERE active AND database = currentDatabase() AND table IN ('flow_hit', 'flow_hit_daily')`,
      format: 'JSONEachRow',
    })
  ).json<{ all_bytes: number; hit_rows: number; rollup_bytes: number; rollup_rows: number }>();
  const parts = { bytes: Number(stored.all_bytes), rows: Number(stored.hit_rows), rollup: Number(stored.rollup_bytes), rollupRows: Number(stored.rollup_rows) };
  // Where the bytes go: each column's compressed size, the largest first.
  const columnBytes = await (
    await analytics.client.query({
      query: `SELECT column AS name, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns
              WHERE active AND database = currentDatabase() AND table = 'flow_hit' GROUP BY column ORDER BY bytes DESC`,
      format: 'JSONEachRow',
    })
  ).json<{ name: string; bytes: number }>();

  const sides: Side[] = [
    ...(ANALYTICS_ONLY ? [] : [{ name: 'SQL' as const, reports: new ReportService(ds), hits: new FlowHitService(ds), exportFrom: null }]),
    {
      name: 'ClickHouse',
      reports: new ReportService(ds, { analytics }),
      hits: new FlowHitService(ds, new AnalyticsFlowHits(analytics, ds)),
      exportFrom: new AnalyticsFlowHits(analytics, ds),
    },
  ];
  const filter = (): ResolvedHitFilter => resolveHitFilter(ACCOUNT, { from: new Date(end - WINDOW_DAYS * DAY), to: new Date(end) } as never);
  const windowHits = (await sides[sides.length - 1].reports.group(filter(), TOTALS))[0].hits;
  // Every field of the dashboard query (report.resolver.ts): the totals, the open hits (the hits no verdict has
  // closed: on ClickHouse, the hits of uploads without verdicts from the roll-up, the others read one by one), the
  // top threats and the 7-day trend.
  const dashboard = (s: Side, f: ResolvedHitFilter) =>
    Promise.all([
      s.reports.group(f, TOTALS, { skip: ['externalAddresses'] }),
      s.reports.group({ ...f, triageStatuses: [TriageStatus.OPEN] }, TOTALS, { skip: TOTALS_BUT_HITS }),
      s.reports.threats(f, 3),
      s.reports.timeline({ ...f, from: f.to - 7 * DAY }, TimeBucket.DAY, 'UTC'),
    ]);
  const cases: Record<string, (s: Side) => Promise<unknown>> = {
    dashboard: (s) => dashboard(s, filter()),
    // The same, the window ending at 11:00 instead of midnight (as "the last 30 days" asked at any hour is): on
    // ClickHouse the daily roll-up answers for the whole days, the hits for the two parts of days at its ends.
    'dashboard, window off midnight': (s) => {
      const f = filter();
      return dashboard(s, { ...f, from: f.from - 13 * 3_600_000, to: f.to - 13 * 3_600_000 });
    },
    // Every grouping at once, as GraphQL resolves a hitReport's fields (a query's fields run concurrently): on
    // ClickHouse the statements overlap, on SQLite they queue on its one connection.
    hitReport: async (s) => {
      const f = filter();
      return Promise.all([
        ...GROUPINGS.map((g) => s.reports.group(f, g, { first: 10 })),
        s.reports.threats(f, 10),
        s.reports.timeline(f, TimeBucket.DAY, 'UTC'),
      ]);
    },
    // The same statements one after another: the sum of their times.
    'hitReport, one at a time': async (s) => {
      const f = filter();
      const out: unknown[] = [];
      for (const g of GROUPINGS) out.push(await s.reports.group(f, g, { first: 10 }));
      out.push(await s.reports.threats(f, 10), await s.reports.timeline(f, TimeBucket.DAY, 'UTC'));
      return out;
    },
    'drill-down page 1': async (s) =>
      (await s.hits.search(filter(), FlowHitOrder.FIRST_SEEN_DESC, { first: 20 })).edges.map((e) => e.node.firstSeenAt.getTime()),
  };
  // Page 50's cursor, walked once per side (not timed).
  const cursors = new Map<string, string>();
  for (const s of sides) {
    let after: string | null = null;
    for (let p = 0; p < 49; p++) after = (await s.hits.search(filter(), FlowHitOrder.FIRST_SEEN_DESC, { first: 20, after })).pageInfo.endCursor;
    cursors.set(s.name, after!);
  }
  // A selective drill-down: the device with the fewest hits, severity 4 and up (the page's rows are far apart).
  const narrow = (): ResolvedHitFilter =>
    resolveHitFilter(ACCOUNT, {
      from: new Date(end - WINDOW_DAYS * DAY),
      to: new Date(end),
      devices: [toGlobalId('Device', DEVICES)],
      minSeverity: 4,
    } as never);
  cases['drill-down filtered'] = async (s) =>
    (await s.hits.search(narrow(), FlowHitOrder.FIRST_SEEN_DESC, { first: 20 })).edges.map((e) => e.node.firstSeenAt.getTime());
  cases['drill-down page 50'] = async (s) =>
    (await s.hits.search(filter(), FlowHitOrder.FIRST_SEEN_DESC, { first: 20, after: cursors.get(s.name) })).edges.map((e) => e.node.firstSeenAt.getTime());

  const times: Record<string, Record<string, number[]>> = {};
  const same: Record<string, boolean> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, fn] of Object.entries(cases)) {
      const answers: unknown[] = [];
      for (const s of sides) {
        if (s.name === 'SQL' && run >= SQL_RUNS) continue;
        const [ms, v] = await timed(() => fn(s));
        ((times[name] ??= {})[s.name] ??= []).push(ms);
        answers.push(v);
      }
      if (run === 0 && answers.length === 2) same[name] = isDeepStrictEqual(answers[0], answers[1]);
    }
    progress(`  run ${run + 1}/${RUNS}`);
  }

  // The export: rows per second and the process's RSS growth (sampled every 10 ms) over the window.
  const exportFigures: Record<string, { rowsPerS: number[]; rssGrowthMB: number[]; rows: number }> = {};
  for (let run = 0; run < EXPORT_RUNS; run++)
    for (const s of sides) {
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const t = performance.now();
      const { batches } = await exportHits(ds, ACCOUNT, filter(), 'csv', undefined, s.exportFrom);
      let rows = 0;
      for await (const b of batches) rows += b.rows;
      const ms = performance.now() - t;
      clearInterval(sampler);
      const e = (exportFigures[s.name] ??= { rowsPerS: [], rssGrowthMB: [], rows });
      e.rowsPerS.push(rows / (ms / 1000));
      e.rssGrowthMB.push((peak - before) / 1e6);
    }

  const fmt = (xs: number[] | undefined) =>
    xs?.length ? `p50 ${median(xs).toFixed(1)} / p95 ${pct(xs, 95).toFixed(1)} ms (${xs.length} runs${xs.length < 20 ? ', indicative' : ''})` : '-';
  const out: string[] = [];
  out.push(`analytics bench: ${HITS.toLocaleString('en')} hits over ${DAYS} days, ${WINDOW_DAYS}-day window ${windowHits.toLocaleString('en')} hits`);
  out.push(
    `load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (${os.cpus().length} cores)`,
  );
  const appHits = HITS - engineHits;
  out.push(
    ANALYTICS_ONLY
      ? `seeding: ${seedS.toFixed(0)} s (ClickHouse only: ${appHits.toLocaleString('en')} hits through AnalyticsHits in ${(seeded.chMs / 1000).toFixed(0)} s = ${Math.round(appHits / (seeded.chMs / 1000)).toLocaleString('en')} hits/s; ${engineHits.toLocaleString('en')} by INSERT ... SELECT in ${(engineMs / 1000).toFixed(0)} s = ${Math.round(engineHits / (engineMs / 1000)).toLocaleString('en')} hits/s)`
      : `seeding: ${seedS.toFixed(0)} s (generating ${(seeded.genMs / 1000).toFixed(0)} s, SQLite with roll-ups ${(seeded.sqlMs / 1000).toFixed(0)} s, ClickHouse ${(seeded.chMs / 1000).toFixed(0)} s = ${Math.round(HITS / (seeded.chMs / 1000)).toLocaleString('en')} hits/s)`,
  );
  out.push(`ClickHouse parts: ${partsSeeded} after seeding, ${partsRead} read by the queries (OPTIMIZE FINAL ${optimizeS.toFixed(1)} s)`);
  out.push(
    `ClickHouse stored: ${(parts.bytes / 1e6).toFixed(1)} MB for ${Number(parts.rows).toLocaleString('en')} rows = ${(parts.bytes / parts.rows).toFixed(1)} bytes per hit (target <= 40), of which the daily roll-up ${(parts.rollup / parts.rows).toFixed(1)} (${Number(parts.rollupRows).toLocaleString('en')} rows)`,
  );
  out.push(`  per column (bytes per hit, compressed): ${columnBytes.map((c) => `${c.name} ${(Number(c.bytes) / Number(parts.rows)).toFixed(1)}`).join(', ')}`);
  const targets: Record<string, string> = {
    dashboard: '<= 300 ms',
    'dashboard, window off midnight': '<= 300 ms',
    hitReport: '<= 1000 ms',
    'hitReport, one at a time': '- (the sum)',
    'drill-down page 1': '<= 50 ms',
    'drill-down page 50': '<= 50 ms',
    'drill-down filtered': '<= 50 ms',
  };
  for (const name of Object.keys(cases)) {
    const t = times[name];
    out.push(
      t.SQL
        ? `${name.padEnd(24)} ClickHouse ${fmt(t.ClickHouse)} | SQL ${fmt(t.SQL)} | p95 ratio SQL/ClickHouse ${(pct(t.SQL, 95) / pct(t.ClickHouse, 95)).toFixed(1)}x | target p95 ${targets[name]} | same answers: ${same[name]}`
        : `${name.padEnd(24)} ClickHouse ${fmt(t.ClickHouse)} | target p95 ${targets[name]}`,
    );
  }
  for (const [name, e] of Object.entries(exportFigures))
    out.push(
      `export ${name.padEnd(11)} ${e.rows.toLocaleString('en')} rows: median ${Math.round(median(e.rowsPerS)).toLocaleString('en')} rows/s, RSS growth max ${Math.max(...e.rssGrowthMB).toFixed(0)} MB (${e.rowsPerS.length} runs; target >= 200,000 rows/s, flat memory)`,
    );
  const ce = exportFigures.ClickHouse;
  const se = exportFigures.SQL;
  if (ce && se) out.push(`export ratio ClickHouse/SQL: ${(median(ce.rowsPerS) / median(se.rowsPerS)).toFixed(2)}x`);
  process.stdout.write(`${out.join('\n')}\n`);
  await analytics.close();
  await ds.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
