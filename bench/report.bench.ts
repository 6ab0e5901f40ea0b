/**
 * Read-path benchmark: the dashboard, `hitReport` with every grouping, the drill-down (page 1 and page 50) and
 * the CSV export, against the real server in this process over seeded flow hits.
 *
 *   node -r @swc-node/register --expose-gc bench/report.bench.ts [--db sqlite|mysql|both] [--hits 1000000]
 *        [--also 10000000] [--runs 20] [--also-runs 20] [--json] [--explain] [--max-seed-s 600]
 *        [--export-budget-s 300] [--keep] [--seed-only] [--mysql-url mysql://root@127.0.0.1:3306] [--mysql-db pcd_bench_report]
 *        [--mysql-buffer-pool-mb 1024] [--report-memory-max-hits N]
 *
 * `--also N` measures a second size (a fresh database each); `--also 0` skips it. A size whose projected seeding
 * time (from the rate measured at the first size of the same database) exceeds --max-seed-s is skipped and said so,
 * and so is one whose seeding is still running after --max-seed-s (0: no limit); the rate reached is printed.
 * `--explain` prints the query plans of the report, drill-down and export SQL (captured from the server while it
 * answers). An export (and its raw baseline) still running after --export-budget-s is cut there and reported as a rate over
 * the rows received. `--keep` leaves the database in place for manual EXPLAINs (its location is printed; remove it
 * yourself); `--seed-only` stops after seeding.
 *
 * Prints figures beside the product targets and ratios to baselines measured in the same run (STYLE.md rule 12);
 * asserts nothing. Progress goes to stderr; `--json` prints one JSON document on stdout instead of tables.
 *
 * Measurement notes:
 * - HTTP requests are sent from a worker thread (fetch, keep-alive), which also samples RSS every 10 ms during the
 *   export, so the main thread's event loop is the server's. Latency = request start until the whole body is read.
 * - Runs are interleaved (every case once per run), so a noisy neighbour on the shared machine hits all alike.
 * - p95 is nearest-rank over the runs (with 20 runs: the 19th of 20). Fewer than 20 runs (--runs, --also-runs) are
 *   flagged in the output as indicative only.
 * - NODE_ENV is production in this process (bench/lib/production-env.ts), as in the documented deployment: graphql-js
 *   reads it when loaded, and the drill-down page's GraphQL execution is ~20% slower without it.
 * - SQLite is measured as the service leaves it (no ANALYZE: the service never runs it); on MySQL the bench runs
 *   ANALYZE TABLE after seeding, which InnoDB's automatic statistics would do on their own shortly after.
 */
import './lib/production-env'; // first: graphql-js reads NODE_ENV when loaded
import { INSERT_COLUMNS, NewHit } from '../src/modules/flow-hit/flow-hit.columns';
import { insertRollups } from '../src/modules/flow-hit/hit-rollup';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { createConnection } from 'mysql2/promise';
import { dropMysqlDatabase, freshMysqlDatabase } from './lib/mysql-db';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/config';
import { startServer, RunningServer } from '../src/app/server';
import { silentLogger } from '../src/app/logger';
import { bulkInsert, bulkInsertObjects, dialectOf } from '../src/db/bulk';
import { cidr4, cidr6 } from '../src/common/net/cidr';
import { classifyIpv4, isScopeInternetRoutable, parseIpv4, parseIpv6 } from '../src/common/net/ip';
import { toGlobalId } from '../src/common/ids/global-id';
import { ipv4Key } from '../src/modules/ioc/ioc-range';
import { IocCategory, IocListKind } from '../src/modules/ioc/ioc.enums';
import { IpType } from '../src/modules/device/device.enums';
import { resolveHitFilter, ResolvedHitFilter } from '../src/modules/flow-hit/hit-filter';
import { FlowHitOrder } from '../src/modules/flow-hit/flow-hit.enums';
import { TimeBucket } from '../src/modules/report/report.enums';
import { recordHitChange } from '../src/modules/flow-hit/hit-change';
import { HitMemory } from '../src/modules/report/hit-memory';
import { ReportService } from '../src/modules/report/report.service';
import { BY_CATEGORY, BY_DEVICE, BY_DIRECTION, BY_INTERNAL_HOST, BY_IOC, BY_IOC_LIST, BY_SEVERITY, TOTALS } from '../src/modules/report/groupings/groupings';
import { DASHBOARD_QUERY, HITS_QUERY, REPORT_QUERY } from './lib/report-queries';
import { PUBLIC_FIRST_OCTETS, PUBLIC_V6_PREFIXES, rng } from './lib/tcpdump-text';
import { argValue } from './lib/args';

// ---- arguments --------------------------------------------------------------------------------------------

const DB_ARG = argValue('db') ?? 'both';
if (!['sqlite', 'mysql', 'both'].includes(DB_ARG)) throw new Error(`--db must be sqlite, mysql or both, not ${DB_ARG}`);
const HITS = Number(argValue('hits') ?? 1_000_000);
const ALSO = Number(argValue('also') ?? 10_000_000);
const RUNS_MAIN = Math.max(1, Number(argValue('runs') ?? 20));
const RUNS = RUNS_MAIN;
/** Runs for the --also size; fewer than 20 only to get indicative figures where 20 would take hours (flagged in the output). */
const ALSO_RUNS = Math.max(1, Number(argValue('also-runs') ?? RUNS));
const WARMUPS = 2;
const BREAKDOWN_RUNS = 5;
const JSON_OUT = process.argv.includes('--json');
const EXPLAIN = process.argv.includes('--explain');
const MAX_SEED_S = Number(argValue('max-seed-s') ?? 600);
const EXPORT_BUDGET_MS = Number(argValue('export-budget-s') ?? 300) * 1000;
const KEEP = process.argv.includes('--keep');
/** REPORT_MEMORY_MAX_HITS for the server under test (unset: the service's default; 0: reports on SQL only). */
const REPORT_MEMORY_MAX_HITS = argValue('report-memory-max-hits');
const SEED_ONLY = process.argv.includes('--seed-only');
const MYSQL_URL = argValue('mysql-url') ?? 'mysql://root@127.0.0.1:3306';
/** Another bench (load.bench.ts seeds through this one) may use the default database at the same time. */
const MYSQL_DB = argValue('mysql-db') ?? 'pcd_bench_report';
if (!(HITS > 0) || !(ALSO >= 0)) throw new Error('--hits must be > 0 and --also >= 0');

/** The product's targets; sqlHitReportMs: the SQL executor's (a full hitReport with the store off, or not holding the account). */
const TARGETS = { dashboardP95Ms: 150, hitReportP95Ms: 150, pageP95Ms: 30, exportRowsPerS: 50_000, exportDriftMB: 32, sqlHitReportMs: 2000 };

type DbKind = 'sqlite' | 'mysql';

const DAY = 24 * 3600_000;
/** The data ends here (fixed, so runs are comparable); ~4 months before it. */
const END = Date.UTC(2025, 10, 1);
const DAYS = 120;
const START = END - DAYS * DAY;
const WINDOW_FROM = END - 30 * DAY;
/** Hits per seeding transaction (bulkInsert splits it into multi-row statements). */
const TX_ROWS = 100_000;

const gc = (globalThis as { gc?: () => void }).gc;
const MB = 1024 * 1024;
const progress = (msg: string) => {
  const m = process.memoryUsage();
  process.stderr.write(
    `[report.bench ${new Date().toISOString().slice(11, 19)} +${(performance.now() / 1000).toFixed(1)}s rss ${(m.rss / MB).toFixed(0)} MB] ${msg}\n`,
  );
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
/** Nearest-rank percentile. */
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

// ---- HTTP client in a worker thread -----------------------------------------------------------------------

interface GqlReply {
  ms: number;
  status: number;
  body: string;
}
interface ExportReply {
  ms: number;
  status: number;
  bytes: number;
  lines: number;
  firstByteMs: number;
  cut: boolean;
  /** Rows/s over the first and the last quarter of the transfer time (a falling rate means a growing cost per batch). */
  rateFirst: number;
  rateLast: number;
  /** The client thread's own heap (its isolate), max. */
  clientHeapPeak: number;
  rssBefore: number;
  rssPeak: number;
  /** Max RSS in the first half and in the last quarter of the transfer (by time): a leak keeps rising after the ramp-up. */
  rssFirstHalf: number;
  rssLastQuarter: number;
  samples: number;
}

const CLIENT_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', async ({ seq, op, url, token, body, budget }) => {
  try {
    if (op === 'gql') {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token }, body });
      const text = await res.text();
      parentPort.postMessage({ seq, reply: { ms: performance.now() - t0, status: res.status, body: text } });
      return;
    }
    // export: stream the body, count bytes and newlines, keep nothing; sample RSS every 10 ms meanwhile.
    // Cut after budget ms (the rate is then over the rows received).
    const samples = [];
    const rssBefore = process.memoryUsage.rss();
    const t0 = performance.now();
    let bytes = 0, lines = 0, firstByteMs = -1, cut = false;
    let clientHeapPeak = 0;
    const timer = setInterval(() => {
      samples.push([performance.now() - t0, process.memoryUsage.rss(), lines]);
      clientHeapPeak = Math.max(clientHeapPeak, process.memoryUsage().heapUsed);
    }, 10);
    const abort = new AbortController();
    const deadline = setTimeout(() => { cut = true; abort.abort(); }, budget);
    const res = await fetch(url, { headers: { authorization: 'Bearer ' + token }, signal: abort.signal });
    try {
      for await (const chunk of res.body) {
        if (firstByteMs < 0) firstByteMs = performance.now() - t0;
        bytes += chunk.length;
        for (let p = chunk.indexOf(10); p >= 0; p = chunk.indexOf(10, p + 1)) lines++;
      }
    } catch (err) {
      if (!cut) throw err;
    }
    const ms = performance.now() - t0;
    clearTimeout(deadline);
    clearInterval(timer);
    samples.push([ms, process.memoryUsage.rss(), lines]);
    let peak = rssBefore, q1 = 0, q4 = 0;
    for (const [t, r] of samples) {
      if (r > peak) peak = r;
      if (t <= ms / 2 && r > q1) q1 = r;
      if (t >= (3 * ms) / 4 && r > q4) q4 = r;
    }
    // Rows/s over the first and the last quarter of the transfer time.
    const at = (t) => { let n = 0; for (const s of samples) { if (s[0] <= t) n = s[2]; else break; } return n; };
    const rateFirst = at(ms / 4) / (ms / 4000);
    const rateLast = (lines - at((3 * ms) / 4)) / (ms / 4000);
    parentPort.postMessage({ seq, reply: { ms, status: res.status, bytes, lines, firstByteMs, cut, rateFirst, rateLast, clientHeapPeak, rssBefore, rssPeak: peak, rssFirstHalf: q1, rssLastQuarter: q4, samples: samples.length } });
  } catch (err) {
    parentPort.postMessage({ seq, error: String((err && err.stack) || err) });
  }
});
`;

class Client {
  private readonly worker = new Worker(CLIENT_SOURCE, { eval: true });
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  constructor() {
    this.worker.on('message', (m: { seq: number; reply?: unknown; error?: string }) => {
      const p = this.pending.get(m.seq);
      this.pending.delete(m.seq);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.reply);
    });
    this.worker.unref();
  }

  private send<T>(msg: Record<string, unknown>): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (r: unknown) => void, reject });
      this.worker.postMessage({ seq, ...msg });
    });
  }

  gql(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlReply> {
    return this.send({ op: 'gql', url, token, body: JSON.stringify({ query, variables }) });
  }

  export(url: string, token: string, budget: number): Promise<ExportReply> {
    return this.send({ op: 'export', url, token, budget });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

function data<T>(reply: GqlReply, what: string): T {
  const json = JSON.parse(reply.body) as { data?: T; errors?: unknown };
  if (reply.status !== 200 || json.errors || !json.data) throw new Error(`${what}: HTTP ${reply.status} ${reply.body.slice(0, 500)}`);
  return json.data;
}

// ---- the requests measured --------------------------------------------------------------------------------

const NOOP_QUERY = `query Noop { __typename }`;

/** The same page with only the IDs selected: what the 20 fields and 2 loaders of each node cost. */
const HITS_LEAN_QUERY = `query HitIds($filter: HitFilter!, $after: String) {
  flowHits(filter: $filter, first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } }
}`;

// ---- seeded data ------------------------------------------------------------------------------------------

interface ListSpec {
  name: string;
  severity: number;
  category: IocCategory;
  entries: number;
  /** Share of all hits. */
  share: number;
  /** Share of its hits opened from inside. */
  outbound: number;
  outPorts: number[];
  inPorts: number[];
}

/** Six BLOCK lists: many low-severity scanner hits, few (but persistent) C2 and ransomware hits. */
const LISTS: ListSpec[] = [
  {
    name: 'Feodo C2',
    severity: 5,
    category: IocCategory.C2_BOTNET,
    entries: 300,
    share: 0.08,
    outbound: 0.95,
    outPorts: [443, 8080, 447, 4444],
    inPorts: [443],
  },
  {
    name: 'Ransomware infrastructure',
    severity: 5,
    category: IocCategory.RANSOMWARE,
    entries: 200,
    share: 0.05,
    outbound: 0.9,
    outPorts: [443, 80, 8443],
    inPorts: [445, 3389],
  },
  {
    name: 'Malware distribution',
    severity: 4,
    category: IocCategory.MALWARE,
    entries: 600,
    share: 0.12,
    outbound: 0.85,
    outPorts: [80, 443, 53, 8080],
    inPorts: [80],
  },
  {
    name: 'SSH/RDP brute force',
    severity: 3,
    category: IocCategory.BRUTE_FORCE,
    entries: 800,
    share: 0.25,
    outbound: 0.08,
    outPorts: [22],
    inPorts: [22, 3389, 445, 23],
  },
  {
    name: 'Mass scanners',
    severity: 2,
    category: IocCategory.SCANNER,
    entries: 1200,
    share: 0.35,
    outbound: 0.04,
    outPorts: [80],
    inPorts: [22, 23, 80, 443, 445, 3389, 5900, 8080, 1433, 123],
  },
  {
    name: 'Tor exit nodes',
    severity: 1,
    category: IocCategory.TOR_ANONYMIZER,
    entries: 900,
    share: 0.15,
    outbound: 0.9,
    outPorts: [443, 9001, 9030],
    inPorts: [443],
  },
];
const DEVICE_WEIGHTS = [0.35, 0.25, 0.2, 0.12, 0.08];
const DEVICE_ADDRESSES = ['93.184.216.34', '93.184.216.35', '151.101.1.69', '151.101.65.69', '104.16.132.229'];

interface Entry {
  id: number;
  listIndex: number;
  listId: number;
  cidr: string;
  v6: boolean;
  /** A few addresses inside the entry that the traffic uses (one for a single address). */
  ips: string[];
  keys: string[];
}

interface Host {
  ip: string;
  key: string;
}

interface Seeded {
  accountId: number;
  deviceIds: number[];
  listIds: number[];
  entries: number;
  uploads: number;
  hits: number;
  seedMs: number;
  /** Of which inside the seeding transactions (the rest is generating rows in JS). */
  seedDbMs: number;
  v6Hits: number;
  windowHits: number;
}

/** Seeding ran past --max-seed-s: the size is skipped, with what was reached. */
class SeedAborted extends Error {
  constructor(
    readonly written: number,
    readonly total: number,
    readonly seconds: number,
  ) {
    super(
      `seeding stopped after ${seconds.toFixed(0)} s (--max-seed-s ${MAX_SEED_S}): ${written.toLocaleString('en')} of ${total.toLocaleString('en')} hits at ` +
        `${Math.round(written / seconds).toLocaleString('en')} rows/s, ~${Math.round((total / written) * seconds)} s projected for all`,
    );
  }
}

/** Cumulative distribution of Zipf(s) weights over n items, for sampling by binary search. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s);
  for (let i = 0; i < n; i++) cdf[i] /= sum;
  return cdf;
}
function sample(cdf: ArrayLike<number>, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
function cdfOf(weights: number[]): Float64Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf = new Float64Array(weights.length);
  let acc = 0;
  weights.forEach((w, i) => (cdf[i] = acc += w / total));
  return cdf;
}
const v6Key = (v: bigint) => v.toString(16).padStart(32, '0');

const UPLOAD_COLUMNS = [
  'account_id',
  'device_id',
  'source',
  'file_name',
  'size',
  'text_bytes',
  'stored_bytes',
  'md5',
  'status',
  'attempts',
  'received_at',
  'started_at',
  'finished_at',
  'progress_bytes',
  'progress_lines',
  'policy_id',
  'line_count',
  'packet_lines',
  'connections',
  'inbound_connections',
  'outbound_connections',
  'hits',
  'first_capture_at',
  'last_capture_at',
] as const;

/** Hits per (day, device): device weights, weekends quieter, day-to-day noise, slow growth; sums to `total`. */
function cellCounts(total: number, r: () => number): number[][] {
  const w: number[] = [];
  for (let day = 0; day < DAYS; day++) {
    const weekday = new Date(START + day * DAY).getUTCDay();
    const weekend = weekday === 0 || weekday === 6 ? 0.7 : 1.1;
    for (let d = 0; d < DEVICE_WEIGHTS.length; d++) w.push(DEVICE_WEIGHTS[d] * weekend * (0.8 + 0.4 * r()) * (1 + (0.5 * day) / DAYS));
  }
  const sum = w.reduce((a, b) => a + b, 0);
  const exact = w.map((x) => (x / sum) * total);
  const counts = exact.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i]).sort((a, b) => b[0] - a[0]);
  for (let k = 0; left > 0; k++, left--) counts[order[k % order.length][1]]++;
  const out: number[][] = [];
  for (let day = 0; day < DAYS; day++) out.push(counts.slice(day * DEVICE_WEIGHTS.length, (day + 1) * DEVICE_WEIGHTS.length));
  return out;
}

/** Devices, a policy, six IOC lists with entries (through the services), one COMPLETED upload per device-day, then the hits. */
async function seed(server: RunningServer, total: number): Promise<Seeded> {
  const s = server.services;
  const ds = server.dataSource;
  const r = rng(20251101);
  const int = (n: number) => Math.floor(r() * n);
  const account = await s.accounts.findAccountByName('default');
  if (!account) throw new Error('no default account');
  const accountId = account.id;

  const policy = await s.policies.create(accountId, { name: 'Bench policy' });
  if (!policy.ok) throw new Error('policy create failed');
  const listIds: number[] = [];
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (const [listIndex, spec] of LISTS.entries()) {
    const list = await s.iocLists.create(accountId, { name: spec.name, kind: IocListKind.BLOCK, severity: spec.severity, category: spec.category });
    if (!list.ok) throw new Error(`list create failed: ${JSON.stringify(list)}`);
    listIds.push(list.value.id);
    // 75% IPv4 /32, 17% IPv4 /24, 8% IPv6 (/128 or /64).
    const specs = new Map<string, { v6: boolean; ips: string[]; keys: string[] }>();
    while (specs.size < spec.entries) {
      const roll = r();
      if (roll < 0.92) {
        const a = ((PUBLIC_FIRST_OCTETS[int(PUBLIC_FIRST_OCTETS.length)] << 24) | (int(256) << 16) | (int(256) << 8) | (1 + int(254))) >>> 0;
        if (!isScopeInternetRoutable(classifyIpv4(a))) continue;
        const prefix = roll < 0.75 ? 32 : 24;
        const c = cidr4(a, prefix);
        if (seen.has(c.text)) continue;
        seen.add(c.text);
        const hosts = prefix === 32 ? [a] : Array.from({ length: 4 }, () => (c.network | (1 + int(254))) >>> 0);
        specs.set(c.text, { v6: false, ips: hosts.map((h) => `${h >>> 24}.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}`), keys: hosts.map(ipv4Key) });
      } else {
        const text = `${PUBLIC_V6_PREFIXES[int(PUBLIC_V6_PREFIXES.length)]}:${int(65536).toString(16)}:${int(65536).toString(16)}::${(1 + int(65535)).toString(16)}`;
        const addr = parseIpv6(text) as bigint;
        const prefix = r() < 0.5 ? 128 : 64;
        const c = cidr6(addr, prefix);
        if (seen.has(c.text)) continue;
        seen.add(c.text);
        const hosts = prefix === 128 ? [addr] : Array.from({ length: 3 }, () => c.network | BigInt(1 + int(65535)));
        const ips = hosts.map((h) => cidr6(h, 128).text.replace(/\/128$/, ''));
        specs.set(c.text, { v6: true, ips, keys: hosts.map(v6Key) });
      }
    }
    const values = [...specs.keys()];
    for (let i = 0; i < values.length; i += 1000) {
      const added = await s.iocs.add(
        accountId,
        list.value.id,
        values.slice(i, i + 1000).map((value) => ({ value })),
      );
      if (!added.ok) throw new Error(`ioc add failed: ${JSON.stringify(added).slice(0, 300)}`);
      for (const e of added.value.entries) {
        const g = specs.get(e.cidr);
        if (!g) throw new Error(`unexpected entry ${e.cidr}`);
        entries.push({ id: e.id, listIndex, listId: list.value.id, cidr: e.cidr, ...g });
      }
    }
  }
  const attached = await s.policies.attachIocLists(accountId, policy.value.id, listIds);
  if (!attached.ok) throw new Error('attach failed');

  const deviceIds: number[] = [];
  for (let d = 0; d < DEVICE_WEIGHTS.length; d++) {
    const dev = await s.devices.create(accountId, {
      nickname: `sensor-${d + 1}`,
      ipType: IpType.STATIC,
      ipAddress: DEVICE_ADDRESSES[d],
      policyId: policy.value.id,
      internalNetworks: [],
    });
    if (!dev.ok) throw new Error(`device create failed: ${JSON.stringify(dev)}`);
    deviceIds.push(dev.value.id);
  }

  // Per device: a few hundred internal hosts (8% also on IPv6), chosen with Zipf skew.
  const hosts: Host[][] = [];
  const hosts6: Host[][] = [];
  const hostCdf: Float64Array[] = [];
  for (let d = 0; d < deviceIds.length; d++) {
    const n = 200 + 60 * d;
    const list: Host[] = [];
    const list6: Host[] = [];
    for (let i = 0; i < n; i++) {
      const ip = `10.${d + 1}.${i >> 8}.${(i & 255) + 1}`;
      list.push({ ip, key: ipv4Key(parseIpv4(ip) as number) });
      if (r() < 0.08) {
        const ip6 = `fd00:${d + 1}::${(i + 1).toString(16)}`;
        list6.push({ ip: ip6, key: v6Key(parseIpv6(ip6) as bigint) });
      }
    }
    hosts.push(list);
    hosts6.push(list6);
    hostCdf.push(zipfCdf(n, 0.9));
  }
  // Per list: Zipf over its entries (some IOCs hit far more than others), list shares as given.
  const byList: Entry[][] = LISTS.map((_, i) => entries.filter((e) => e.listIndex === i));
  for (const l of byList)
    for (let i = l.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [l[i], l[j]] = [l[j], l[i]];
    }
  const entryCdf = byList.map((l) => zipfCdf(l.length, 1.1));
  const listCdf = cdfOf(LISTS.map((l) => l.share));
  const portCdf = (ports: number[]) => cdfOf(ports.map((_, i) => 1 / (i + 1)));
  const outPortCdf = LISTS.map((l) => portCdf(l.outPorts));
  const inPortCdf = LISTS.map((l) => portCdf(l.inPorts));
  // Daily shape: quiet nights, busy office hours (96 quarter hours).
  const quarterCdf = cdfOf(Array.from({ length: 96 }, (_, q) => (q >= 28 && q < 76 ? 3 : 1)));

  interface Relation {
    host: Host;
    entry: Entry;
    outbound: boolean;
    port: number;
  }
  const pickEntry = (): Entry => {
    const li = sample(listCdf, r());
    return byList[li][sample(entryCdf[li], r())];
  };
  const pickHost = (d: number, entry: Entry): Host | null => {
    if (!entry.v6) return hosts[d][sample(hostCdf[d], r())];
    return hosts6[d].length ? hosts6[d][int(hosts6[d].length)] : null;
  };
  const pickRelation = (d: number): Relation => {
    for (;;) {
      const entry = pickEntry();
      const host = pickHost(d, entry);
      if (!host) continue;
      const spec = LISTS[entry.listIndex];
      const outbound = r() < spec.outbound;
      const port = outbound ? spec.outPorts[sample(outPortCdf[entry.listIndex], r())] : spec.inPorts[sample(inPortCdf[entry.listIndex], r())];
      return { host, entry, outbound, port };
    }
  };
  // Persistent conversations (beaconing, a scanner that keeps coming back): 45% of hits, Zipf over 400 per device.
  const relations = deviceIds.map((_, d) => Array.from({ length: 400 }, () => pickRelation(d)));
  const relationCdf = zipfCdf(400, 1.3);

  // One COMPLETED upload per device-day, inserted raw.
  const counts = cellCounts(total, r);
  const md5 = (d: number, day: number) => `${d.toString(16).padStart(8, '0')}${day.toString(16).padStart(8, '0')}`.padEnd(32, 'a');
  await ds.transaction(async (em) => {
    const rows: unknown[][] = [];
    for (let day = 0; day < DAYS; day++) {
      for (let d = 0; d < deviceIds.length; d++) {
        const at = START + day * DAY;
        const n = counts[day][d];
        const date = new Date(at).toISOString().slice(0, 10);
        rows.push([
          accountId,
          deviceIds[d],
          'GRAPHQL',
          `capture-${date}.txt`,
          9_000_000,
          14_000_000,
          3_000_000,
          md5(d, day),
          'COMPLETED',
          1,
          at + DAY + 300_000,
          at + DAY + 301_000,
          at + DAY + 302_000,
          14_000_000,
          90_000,
          policy.value.id,
          90_000,
          89_000,
          n * 20,
          Math.round(n * 6),
          Math.round(n * 14),
          n,
          at,
          at + DAY - 1,
        ]);
      }
    }
    await bulkInsert(em, 'log_upload', UPLOAD_COLUMNS, rows);
  });
  const uploadRows: Array<{ id: number | string; device_id: number | string; first_capture_at: number | string }> = await ds.query(
    `SELECT id, device_id, first_capture_at FROM log_upload WHERE account_id = ? ORDER BY id`,
    [accountId],
  );
  const uploadOf = new Map(uploadRows.map((u) => [`${Number(u.device_id)}:${Number(u.first_capture_at)}`, Number(u.id)]));

  // The hits, in upload order (as the worker writes them: one device-day at a time, in capture order).
  const t0 = performance.now();
  let dbMs = 0;
  let buffer: NewHit[] = [];
  let written = 0;
  let v6Hits = 0;
  let windowHits = 0;
  let lastReport = performance.now();
  const flush = async () => {
    const rows = buffer;
    buffer = [];
    const t = performance.now();
    await ds.transaction(async (em) => {
      // The writer's insert and roll-ups (flow-hit/hit-writer.ts), without its replace: an upload's hits come in
      // several flushes here.
      await bulkInsertObjects(em, 'flow_hit', INSERT_COLUMNS, rows);
      await insertRollups(em, rows);
      // And records the change, as the worker does: the in-memory report store re-reads these uploads.
      const found = new Map<number, number>();
      for (const row of rows) found.set(row.uploadId, (found.get(row.uploadId) ?? 0) + 1);
      for (const [uploadId, n] of found) await recordHitChange(em, { accountId, uploadId, found: n });
    });
    dbMs += performance.now() - t;
    written += rows.length;
    const elapsedS = (performance.now() - t0) / 1000;
    if (MAX_SEED_S > 0 && elapsedS > MAX_SEED_S && written < total) throw new SeedAborted(written, total, elapsedS);
    if (performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      const s = (performance.now() - t0) / 1000;
      progress(`  seeded ${written.toLocaleString('en')} hits in ${s.toFixed(0)} s (${Math.round(written / s).toLocaleString('en')} rows/s)`);
    }
  };
  for (let day = 0; day < DAYS; day++) {
    const dayStart = START + day * DAY;
    for (let d = 0; d < deviceIds.length; d++) {
      const uploadId = uploadOf.get(`${deviceIds[d]}:${dayStart}`);
      if (uploadId === undefined) throw new Error('upload missing');
      const n = counts[day][d];
      const times = new Float64Array(n);
      for (let i = 0; i < n; i++) times[i] = dayStart + sample(quarterCdf, r()) * 900_000 + int(900_000);
      times.sort();
      for (let i = 0; i < n; i++) {
        const rel = r() < 0.45 ? relations[d][sample(relationCdf, r())] : pickRelation(d);
        const e = rel.entry;
        const spec = LISTS[e.listIndex];
        const k = e.ips.length === 1 ? 0 : int(e.ips.length);
        const icmp = !e.v6 && r() < 0.02;
        const protocol = icmp ? 'ICMP' : rel.port === 53 || rel.port === 123 ? 'UDP' : 'TCP';
        const ephemeral = 32768 + int(28232);
        const internalPort = icmp ? null : rel.outbound ? ephemeral : rel.port;
        const externalPort = icmp ? null : rel.outbound ? rel.port : ephemeral;
        const fwd = 1 + Math.floor(-Math.log(1 - r()) * 8);
        const rev = !rel.outbound && r() < 0.4 ? 0 : 1 + Math.floor(-Math.log(1 - r()) * 6);
        const first = Math.floor(times[i]);
        if (e.v6) v6Hits++;
        if (first >= WINDOW_FROM) windowHits++;
        buffer.push({
          accountId,
          deviceId: deviceIds[d],
          uploadId,
          firstSeenAt: first,
          lastSeenAt: first + Math.floor(Math.pow(r(), 3) * 600_000),
          direction: rel.outbound ? 'OUTBOUND' : 'INBOUND',
          protocol,
          internalIp: rel.host.ip,
          internalKey: rel.host.key,
          internalPort,
          externalIp: e.ips[k],
          externalKey: e.keys[k],
          externalPort,
          destinationPort: icmp ? null : rel.port,
          matchedSide: rel.outbound ? 'RESPONDER' : 'INITIATOR',
          matchedIp: e.ips[k],
          packetsForward: fwd,
          bytesForward: fwd * (60 + int(900)),
          packetsReverse: rev,
          bytesReverse: rev * (60 + int(1400)),
          foundBy: 'UPLOAD',
          foundAt: 0,
          retroHuntId: null,
          iocId: e.id,
          iocListId: e.listId,
          matchedCidr: e.cidr,
          severity: spec.severity,
          category: spec.category,
        });
        if (buffer.length >= TX_ROWS) await flush();
      }
    }
  }
  if (buffer.length) await flush();
  const seedMs = performance.now() - t0;
  return { accountId, deviceIds, listIds, entries: entries.length, uploads: uploadRows.length, hits: written, seedMs, seedDbMs: dbMs, v6Hits, windowHits };
}

// ---- SQL capture (for EXPLAIN) ----------------------------------------------------------------------------

interface Captured {
  sql: string;
  params: unknown[];
}

/** Records the SQL the server sends while `on` is set (TypeORM calls logger.logQuery for every statement). */
class SqlCapture {
  on = false;
  queries: Captured[] = [];

  attach(ds: DataSource): void {
    const logger = ds.logger;
    const original = logger.logQuery.bind(logger);
    logger.logQuery = (query: string, parameters?: unknown[], runner?: never) => {
      if (this.on) this.queries.push({ sql: query, params: parameters ?? [] });
      return original(query, parameters, runner);
    };
  }

  async during<T>(fn: () => Promise<T>): Promise<{ result: T; queries: Captured[] }> {
    this.queries = [];
    this.on = true;
    try {
      const result = await fn();
      return { result, queries: this.queries.filter((q) => /flow_hit/.test(q.sql)) };
    } finally {
      this.on = false;
    }
  }
}

async function explain(ds: DataSource, q: Captured): Promise<string[]> {
  if (dialectOf(ds.manager) === 'sqlite') {
    const rows: Array<{ id: number; parent: number; detail: string }> = await ds.query(`EXPLAIN QUERY PLAN ${q.sql}`, q.params);
    const depth = new Map<number, number>();
    return rows.map((r) => {
      const d = (depth.get(r.parent) ?? -1) + 1;
      depth.set(r.id, d);
      return `${'  '.repeat(d)}${r.detail}`;
    });
  }
  const rows: Array<Record<string, unknown>> = await ds.query(`EXPLAIN ${q.sql}`, q.params);
  return rows.map((r) => `${r.select_type} ${r.table} type=${r.type} key=${r.key} key_len=${r.key_len} rows=${r.rows} ${r.Extra ?? ''}`.trim());
}

// ---- one database, one size -------------------------------------------------------------------------------

interface Latency {
  medianMs: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
  runs: number;
}
const latency = (xs: number[]): Latency => ({ medianMs: median(xs), p95Ms: pct(xs, 95), minMs: Math.min(...xs), maxMs: Math.max(...xs), runs: xs.length });

interface ExportFigures {
  rows: number;
  bytes: number;
  ms: number;
  rowsPerS: number;
  firstByteMs: number;
  cut: boolean;
  rateFirst: number;
  rateLast: number;
  /** Server heap (main thread): settled before, max sampled every 10 ms during. */
  heapBeforeMB: number;
  heapPeakMB: number;
  /** Server process: external + array buffers (Buffers outside the heap), max. */
  externalPeakMB: number;
  /** The server's event loop during the export: the longest stall and the 99th percentile (ms), i.e. how long another request could wait. */
  loopMaxMs: number;
  loopP99Ms: number;
  clientHeapPeakMB: number;
  rssBeforeMB: number;
  rssPeakMB: number;
  rssGrowthMB: number;
  rssFirstHalfMB: number;
  rssLastQuarterMB: number;
  driftMB: number;
}

interface SizeReport {
  db: DbKind;
  version: string;
  hits: number;
  seeded: Omit<Seeded, 'deviceIds' | 'listIds'>;
  seedRowsPerS: number;
  tableMB: number;
  window: { from: string; to: string; hits: number };
  drillDownRows: number;
  latency: Record<string, Latency>;
  runs: number;
  breakdownMs: Record<string, number>;
  sqlBreakdownMs: Record<string, number>;
  /** A whole hitReport in-process: as served (the store when it holds the account) and on the SQL executor alone. */
  wholeReport: { store: Latency; sql: Latency };
  breakdownRuns: number;
  memoryStore: { coldLoadMs: number; coldHits: number; bytesPerHit: number; catchUpMs: number; serverHeld: number | null; maxHits: number };
  export: ExportFigures[];
  exportBaseline: RawExport[];
  /** The same loop with the sargable keyset predicate. */
  exportSargable: RawExport[];
  drillDownInProcessMs: { page1: number; page50: number };
  plans?: Record<string, Array<{ sql: string; plan: string[] }>>;
  loadavg: number[];
}

/**
 * `--mysql-buffer-pool-mb N` sets InnoDB's buffer pool (a dynamic server setting) for the run and restores it at
 * the end: the machine's MariaDB runs with the 128 MB default, which the 1M-hit tables (~0.5 GB) do not fit.
 */
const BUFFER_POOL_MB = Number(argValue('mysql-buffer-pool-mb') ?? 0);
let bufferPoolBefore: number | null = null;

async function setBufferPool(): Promise<void> {
  if (!BUFFER_POOL_MB) return;
  const conn = await createConnection({ uri: MYSQL_URL });
  const [rows] = await conn.query('SELECT @@innodb_buffer_pool_size AS b');
  bufferPoolBefore = Number((rows as Array<{ b: number | string }>)[0].b);
  await conn.query(`SET GLOBAL innodb_buffer_pool_size = ${BUFFER_POOL_MB * 1024 * 1024}`);
  await conn.end();
}

async function restoreBufferPool(): Promise<void> {
  if (bufferPoolBefore === null) return;
  const conn = await createConnection({ uri: MYSQL_URL });
  await conn.query(`SET GLOBAL innodb_buffer_pool_size = ${bufferPoolBefore}`);
  await conn.end();
  bufferPoolBefore = null;
}

/**
 * The hitReport groupings as the resolvers call them (top 10), for in-process timing. Each call gets its own copy
 * of the filter, as each request does: the in-memory store shares a filter's selected hits between the
 * groupings of one request (one filter object), so each figure here includes selecting the window's hits.
 */
function groupingCases(reports: ReportService, filter: ResolvedHitFilter): Record<string, () => Promise<unknown>> {
  const f = () => ({ ...filter });
  return {
    totals: () => reports.group(f(), TOTALS),
    byDirection: () => reports.group(f(), BY_DIRECTION),
    byIoc: () => reports.group(f(), BY_IOC, { first: 10 }),
    byIocList: () => reports.group(f(), BY_IOC_LIST, { first: 10 }),
    byCategory: () => reports.group(f(), BY_CATEGORY),
    bySeverity: () => reports.group(f(), BY_SEVERITY),
    byDevice: () => reports.group(f(), BY_DEVICE, { first: 10 }),
    byInternalHost: () => reports.group(f(), BY_INTERNAL_HOST, { first: 10 }),
    threats: () => reports.threats(f(), 10),
  };
}

/** Every grouping of REPORT_QUERY started at once on one filter object, as one request's resolvers start them. */
function wholeReport(reports: ReportService, filter: ResolvedHitFilter): Promise<unknown> {
  const f = { ...filter };
  return Promise.all([
    reports.group(f, TOTALS),
    reports.group(f, BY_DIRECTION),
    reports.group(f, BY_IOC, { first: 10 }),
    reports.group(f, BY_IOC_LIST, { first: 10 }),
    reports.group(f, BY_CATEGORY),
    reports.group(f, BY_SEVERITY),
    reports.group(f, BY_DEVICE, { first: 10 }),
    reports.group(f, BY_INTERNAL_HOST, { first: 10 }),
    reports.threats(f, 10),
    reports.timeline(f, TimeBucket.DAY, 'UTC'),
  ]);
}

async function prepareMysql(): Promise<string> {
  await setBufferPool();
  return freshMysqlDatabase(MYSQL_URL, MYSQL_DB);
}

async function dropMysql(): Promise<void> {
  await dropMysqlDatabase(MYSQL_URL, MYSQL_DB);
  await restoreBufferPool();
}

async function tableMB(ds: DataSource, db: DbKind): Promise<number> {
  if (db === 'sqlite') {
    const [{ n }] = await ds.query(`SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()) AS n`);
    return Number(n) / MB;
  }
  const [{ n }] = await ds.query(
    `SELECT data_length + index_length AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'flow_hit'`,
  );
  return Number(n) / MB;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function medianOf(runs: number, fn: () => Promise<unknown>): Promise<number> {
  return (await measure(runs, fn)).ms;
}

/** One warm-up, then the median of `runs`; also hands back the last result. */
async function measure(runs: number, fn: () => Promise<unknown>): Promise<{ ms: number; result: unknown }> {
  let result = await fn();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    result = await fn();
    xs.push(performance.now() - t);
  }
  return { ms: median(xs), result };
}

interface RawExport {
  rows: number;
  ms: number;
  rowsPerS: number;
  cut: boolean;
  /** Mean ms per 2000-row batch over the first and the last 10 batches. */
  firstBatchesMs: number;
  lastBatchesMs: number;
}

/**
 * The export's batches without the route: same WHERE, ORDER BY and batch size, raw rows, no entity mapping, no
 * formatting. `sargable` moves the window's lower bound up to the cursor (first_seen_at >= afterAt instead of
 * >= from; the OR still settles ties): SQLite then seeks to the cursor instead of scanning the index from the
 * window start on every batch (the fix proposed for the route and keysetPaginate).
 */
async function rawExport(ds: DataSource, accountId: number, from: number, to: number, sargable = false, budgetMs = EXPORT_BUDGET_MS): Promise<RawExport> {
  const t = performance.now();
  let rows = 0;
  let after: { at: number; id: number } | null = null;
  const batchMs: number[] = [];
  let cut = false;
  for (;;) {
    const params: unknown[] = [accountId, sargable && after ? after.at : from, to];
    let cond = '';
    if (after) {
      cond = ' AND (first_seen_at > ? OR (first_seen_at = ? AND id > ?))';
      params.push(after.at, after.at, after.id);
    }
    const tb = performance.now();
    const batch: Array<{ id: number | string; first_seen_at: number | string }> = await ds.query(
      `SELECT * FROM flow_hit WHERE account_id = ? AND first_seen_at >= ? AND first_seen_at < ?${cond} ORDER BY first_seen_at, id LIMIT 2000`,
      params,
    );
    batchMs.push(performance.now() - tb);
    rows += batch.length;
    if (batch.length < 2000) break;
    if (performance.now() - t > budgetMs) {
      cut = true;
      break;
    }
    const last = batch[batch.length - 1];
    after = { at: Number(last.first_seen_at), id: Number(last.id) };
  }
  const ms = performance.now() - t;
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);
  return { rows, ms, rowsPerS: rows / (ms / 1000), cut, firstBatchesMs: mean(batchMs.slice(0, 10)), lastBatchesMs: mean(batchMs.slice(-10)) };
}

async function runSize(db: DbKind, hits: number, client: Client, tmp: string): Promise<SizeReport | null> {
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    RETENTION_DAYS: '0',
    WORKER_ENABLED: 'false',
    // The bench sends far more report requests than an analyst would.
    RATE_LIMIT_REPORTS_PER_MINUTE: '0',
    ...(REPORT_MEMORY_MAX_HITS !== undefined ? { REPORT_MEMORY_MAX_HITS } : {}),
  };
  const sqliteFile = KEEP ? path.join(os.tmpdir(), `pcd-report-bench-keep-${hits}.sqlite`) : path.join(tmp, `report-${hits}.sqlite`);
  const removeSqlite = () => {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${sqliteFile}${suffix}`, { force: true });
  };
  if (db === 'sqlite') removeSqlite();
  if (db === 'sqlite') env.DATABASE_URL = `sqlite://${sqliteFile}`;
  else env.DATABASE_URL = await prepareMysql();
  const server = await startServer(loadConfig(env, tmp), silentLogger());
  const capture = new SqlCapture();
  capture.attach(server.dataSource);
  try {
    const ds = server.dataSource;
    const token = server.bootstrapSecret;
    if (!token) throw new Error('expected a fresh database with a bootstrap secret');
    let version = String((await ds.query(db === 'sqlite' ? 'SELECT sqlite_version() AS v' : 'SELECT VERSION() AS v'))[0].v);
    if (db === 'mysql') version += `, InnoDB buffer pool ${Number((await ds.query('SELECT @@innodb_buffer_pool_size AS b'))[0].b) / MB} MB`;
    progress(`${db}: seeding ${hits.toLocaleString('en')} hits`);
    const seeded = await seed(server, hits);
    progress(`${db}: seeded in ${(seeded.seedMs / 1000).toFixed(1)} s (${Math.round(seeded.hits / (seeded.seedMs / 1000)).toLocaleString('en')} rows/s)`);
    if (db === 'mysql') await ds.query('ANALYZE TABLE flow_hit, hit_hour, hit_day_host');
    const size = await tableMB(ds, db);
    // The in-memory report store: a cold load of the account from the database (as at a server start), and the
    // server's own store catching up on the seed's changes through the change log.
    progress(`${db}: loading the in-memory report store`);
    // The server's own store first (it may be loading already), so that the cold load below is measured alone.
    let t = performance.now();
    await server.services.reportMemory.warm(seeded.accountId);
    const storeHeld = (await server.services.reportMemory.view(seeded.accountId))?.hits ?? null;
    const catchUpMs = performance.now() - t;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    t = performance.now();
    const cold = new HitMemory(ds, { maxHits: Number.MAX_SAFE_INTEGER });
    await cold.warm(seeded.accountId);
    const coldLoadMs = performance.now() - t;
    gc?.();
    const heldBytes = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heapBefore;
    const coldHits = (await cold.view(seeded.accountId))?.hits ?? 0;
    cold.close();
    const memoryStore = {
      coldLoadMs,
      coldHits,
      bytesPerHit: coldHits ? heldBytes / coldHits : 0,
      catchUpMs,
      serverHeld: storeHeld,
      maxHits: server.services.config.reportMemoryMaxHits,
    };
    progress(
      `${db}: store loaded ${coldHits.toLocaleString('en')} hits in ${(coldLoadMs / 1000).toFixed(1)} s; server store ${storeHeld === null ? 'not holding the account (reports on SQL)' : `holds ${storeHeld.toLocaleString('en')}`}`,
    );
    if (SEED_ONLY) {
      console.log(
        `${db}: ${seeded.hits.toLocaleString('en')} hits seeded in ${(seeded.seedMs / 1000).toFixed(1)} s = ${Math.round(seeded.hits / (seeded.seedMs / 1000)).toLocaleString('en')} rows/s; flow_hit ${size.toFixed(0)} MB`,
      );
      return null;
    }
    const { accountId } = seeded;
    const baseUrl = server.url.replace(/\/graphql$/, '');
    const from = new Date(WINDOW_FROM).toISOString();
    const to = new Date(END).toISOString();
    const device = toGlobalId('Device', seeded.deviceIds[0]);
    const drillFilter = { from, to, devices: [device], minSeverity: 3 };
    const [{ n: drillRows }] = await ds.query(
      `SELECT COUNT(*) AS n FROM flow_hit WHERE account_id = ? AND first_seen_at >= ? AND first_seen_at < ? AND device_id = ? AND severity >= 3`,
      [accountId, WINDOW_FROM, END, seeded.deviceIds[0]],
    );

    // Page 50: follow the cursors once, then time the request for page 50 alone.
    let after: string | null = null;
    for (let page = 1; page < 50; page++) {
      const reply: GqlReply = await client.gql(server.url, token, HITS_QUERY, { filter: drillFilter, after });
      const d = data<{ flowHits: { edges: unknown[]; pageInfo: { hasNextPage: boolean; endCursor: string } } }>(reply, `page ${page}`);
      if (!d.flowHits.pageInfo.hasNextPage) throw new Error(`drill-down has only ${page} pages`);
      after = d.flowHits.pageInfo.endCursor;
    }
    const page50After = after;

    const countWindow = () =>
      ds.query(`SELECT COUNT(*) AS n FROM flow_hit WHERE account_id = ? AND first_seen_at >= ? AND first_seen_at < ?`, [accountId, WINDOW_FROM, END]);
    const http = (query: string, variables: Record<string, unknown>) => async () => {
      const reply = await client.gql(server.url, token, query, variables);
      if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 300)}`);
      return reply;
    };
    const cases: Record<string, () => Promise<GqlReply | number>> = {
      count30d: async () => timeIt(countWindow),
      noop: http(NOOP_QUERY, {}),
      dashboard: http(DASHBOARD_QUERY, { from, to }),
      hitReport: http(REPORT_QUERY, { filter: { from, to } }),
      page1: http(HITS_QUERY, { filter: drillFilter, after: null }),
      page50: http(HITS_QUERY, { filter: drillFilter, after: page50After }),
      page1Lean: http(HITS_LEAN_QUERY, { filter: drillFilter, after: null }),
    };

    // Warm-ups; the first one checks the answers and captures the SQL.
    const RUNS = hits === HITS ? RUNS_MAIN : ALSO_RUNS;
    progress(`${db}: ${WARMUPS} warm-ups, then ${RUNS} interleaved runs of ${Object.keys(cases).length} cases`);
    const plansSql: Record<string, Captured[]> = {};
    for (let w = 0; w < WARMUPS; w++) {
      for (const [name, fn] of Object.entries(cases)) {
        if (w > 0 || name === 'count30d' || name === 'noop' || name === 'page1Lean') {
          await fn();
          continue;
        }
        const { result, queries } = await capture.during(fn);
        plansSql[name] = queries;
        const reply = result as GqlReply;
        if (name === 'dashboard') {
          const dd = data<{ dashboard: { inboundHits: number; outboundHits: number; topThreats: unknown[] } }>(reply, name).dashboard;
          if (dd.inboundHits + dd.outboundHits !== seeded.windowHits || dd.topThreats.length !== 3)
            throw new Error(`dashboard disagrees: ${JSON.stringify(dd).slice(0, 300)}`);
        } else if (name === 'hitReport') {
          const hr = data<{ hitReport: { totals: { hits: number } } }>(reply, name).hitReport;
          if (hr.totals.hits !== seeded.windowHits) throw new Error(`hitReport totals ${hr.totals.hits} != ${seeded.windowHits}`);
        } else {
          const page = data<{ flowHits: { edges: unknown[] } }>(reply, name).flowHits;
          if (page.edges.length !== 100) throw new Error(`${name}: ${page.edges.length} edges`);
        }
      }
    }
    const times: Record<string, number[]> = {};
    for (let run = 0; run < RUNS; run++) {
      for (const [name, fn] of Object.entries(cases)) {
        const out = await fn();
        (times[name] ??= []).push(typeof out === 'number' ? out : out.ms);
      }
    }
    const lat = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, latency(v)]));

    // Indicative runs (fewer than 20) are for sizes where every pass takes minutes: keep the breakdown short too.
    const breakdownRuns = RUNS < 20 ? 2 : BREAKDOWN_RUNS;
    progress(`${db}: hitReport groupings one by one, in-process (median of ${breakdownRuns})`);
    const reports = server.services.reports;
    const f: ResolvedHitFilter = resolveHitFilter(accountId, { from: new Date(WINDOW_FROM), to: new Date(END) });
    const trendFilter = { ...f, from: END - 7 * DAY };
    const partsOf = (service: ReportService): Record<string, () => Promise<unknown>> => ({
      ...groupingCases(service, f),
      timeline: () => service.timeline({ ...f }, TimeBucket.DAY, 'UTC'),
      'dashboard trend (7 days)': () => service.timeline({ ...trendFilter }, TimeBucket.DAY, 'UTC'),
    });
    const breakdownMs: Record<string, number> = {};
    for (const [name, fn] of Object.entries(partsOf(reports))) breakdownMs[name] = await medianOf(breakdownRuns, fn);
    // The same groupings on SQL alone (roll-ups and indexes, no in-memory store): the baseline of this run.
    const sqlBreakdownMs: Record<string, number> = {};
    const sqlOnly = new ReportService(ds);
    for (const [name, fn] of Object.entries(partsOf(sqlOnly))) sqlBreakdownMs[name] = await medianOf(breakdownRuns, fn);
    // A whole hitReport on each executor, its groupings started together as a request's resolvers start them.
    progress(`${db}: whole hitReport in-process, on the store and on SQL alone (${RUNS} runs each, interleaved)`);
    const wholeMs: { store: number[]; sql: number[] } = { store: [], sql: [] };
    await wholeReport(reports, f);
    await wholeReport(sqlOnly, f);
    for (let run = 0; run < RUNS; run++) {
      wholeMs.store.push(await timeIt(() => wholeReport(reports, f)));
      wholeMs.sql.push(await timeIt(() => wholeReport(sqlOnly, f)));
    }
    const wholeReportLatency = { store: latency(wholeMs.store), sql: latency(wholeMs.sql) };
    // The drill-down's service call alone (SQL + entity mapping, no GraphQL), to split the page latency.
    const drillResolved = resolveHitFilter(accountId, { from: new Date(WINDOW_FROM), to: new Date(END), devices: [device], minSeverity: 3 });
    const drillDownInProcessMs = {
      page1: await medianOf(RUNS, () => server.services.flowHits.search(drillResolved, FlowHitOrder.FIRST_SEEN_DESC, { first: 100 })),
      page50: await medianOf(RUNS, () => server.services.flowHits.search(drillResolved, FlowHitOrder.FIRST_SEEN_DESC, { first: 100, after: page50After })),
    };

    progress(`${db}: export (full range) and the raw keyset baseline`);
    const exportRuns = hits <= 2_000_000 ? 3 : 1;
    const exportUrl = `${baseUrl}/export/flow-hits.csv?from=${encodeURIComponent(new Date(START).toISOString())}&to=${encodeURIComponent(to)}`;
    const exports: ExportFigures[] = [];
    const baselines: RawExport[] = [];
    const sargable: RawExport[] = [];
    for (let i = 0; i < exportRuns; i++) {
      gc?.();
      gc?.();
      await sleep(100);
      if (i === 0) {
        // One export batch with its keyset condition, for EXPLAIN.
        const { queries } = await capture.during(async () => {
          const res = await fetch(`${exportUrl}`, { headers: { authorization: `Bearer ${token}` } });
          const reader = res.body!.getReader();
          let got = 0;
          while (got < 5_000) {
            const { value, done } = await reader.read();
            if (done) break;
            for (let p = value.indexOf(10); p >= 0; p = value.indexOf(10, p + 1)) got++;
          }
          await reader.cancel();
        });
        plansSql.exportBatch = queries.slice(1, 2);
        gc?.();
        await sleep(200);
      }
      const heapBefore = process.memoryUsage().heapUsed;
      let heapPeak = heapBefore;
      let externalPeak = 0;
      const heapTimer = setInterval(() => {
        const m = process.memoryUsage();
        heapPeak = Math.max(heapPeak, m.heapUsed);
        externalPeak = Math.max(externalPeak, m.external + m.arrayBuffers);
      }, 10);
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const e = await client.export(exportUrl, token, EXPORT_BUDGET_MS);
      loop.disable();
      clearInterval(heapTimer);
      if (e.status !== 200 || (!e.cut && e.lines - 1 !== seeded.hits)) throw new Error(`export: HTTP ${e.status}, ${e.lines - 1} rows of ${seeded.hits}`);
      // A cut export leaves the server's loop running until its next write fails: let it notice.
      if (e.cut) await sleep(2000);
      exports.push({
        cut: e.cut,
        rateFirst: e.rateFirst,
        rateLast: e.rateLast,
        heapBeforeMB: heapBefore / MB,
        heapPeakMB: heapPeak / MB,
        externalPeakMB: externalPeak / MB,
        loopMaxMs: loop.max / 1e6,
        loopP99Ms: loop.percentile(99) / 1e6,
        clientHeapPeakMB: e.clientHeapPeak / MB,
        rows: e.lines - 1,
        bytes: e.bytes,
        ms: e.ms,
        rowsPerS: (e.lines - 1) / (e.ms / 1000),
        firstByteMs: e.firstByteMs,
        rssBeforeMB: e.rssBefore / MB,
        rssPeakMB: e.rssPeak / MB,
        rssGrowthMB: (e.rssPeak - e.rssBefore) / MB,
        rssFirstHalfMB: e.rssFirstHalf / MB,
        rssLastQuarterMB: e.rssLastQuarter / MB,
        driftMB: (e.rssLastQuarter - e.rssFirstHalf) / MB,
      });
      baselines.push(await rawExport(ds, accountId, START, END));
      sargable.push(await rawExport(ds, accountId, START, END, true));
    }

    let plans: SizeReport['plans'];
    if (EXPLAIN) {
      plans = {};
      for (const [name, qs] of Object.entries(plansSql)) {
        plans[name] = [];
        for (const q of qs) plans[name].push({ sql: q.sql.replace(/\s+/g, ' '), plan: await explain(ds, q) });
      }
    }

    return {
      db,
      version,
      hits,
      seeded: {
        accountId,
        entries: seeded.entries,
        uploads: seeded.uploads,
        hits: seeded.hits,
        seedMs: seeded.seedMs,
        seedDbMs: seeded.seedDbMs,
        v6Hits: seeded.v6Hits,
        windowHits: seeded.windowHits,
      },
      seedRowsPerS: seeded.hits / (seeded.seedMs / 1000),
      tableMB: size,
      window: { from, to, hits: seeded.windowHits },
      drillDownRows: Number(drillRows),
      latency: lat,
      runs: RUNS,
      breakdownMs,
      sqlBreakdownMs,
      wholeReport: wholeReportLatency,
      memoryStore,
      breakdownRuns,
      export: exports,
      exportBaseline: baselines,
      exportSargable: sargable,
      drillDownInProcessMs,
      plans,
      loadavg: os.loadavg(),
    };
  } finally {
    await server.stop();
    if (KEEP) progress(`--keep: left ${db === 'mysql' ? `MySQL database ${MYSQL_DB}` : sqliteFile} in place; remove it when done`);
    else if (db === 'mysql') await dropMysql();
    else removeSqlite();
  }
}

// ---- report -----------------------------------------------------------------------------------------------

function printReport(r: SizeReport): void {
  const ms = (x: number) => (x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`);
  const met = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  const L = r.latency;
  const base = L.count30d.medianMs;
  const http0 = L.noop.medianMs;
  const rows: string[][] = [];
  const row = (name: string, median: string, p95: string, target: string, verdict: string, vs: string) => rows.push([name, median, p95, target, verdict, vs]);
  const big = r.hits >= 5_000_000;
  const verdict = (ok: boolean) => (big ? `(${ok ? 'within' : 'over'})` : met(ok));
  row('baseline: SELECT COUNT(*) 30-day window (in-process)', ms(base), ms(L.count30d.p95Ms), '', '', '1.0x');
  row('baseline: HTTP + GraphQL no-op ({ __typename })', ms(http0), ms(L.noop.p95Ms), '', '', '');
  row(
    'dashboard (30 days, explicit from/to)',
    ms(L.dashboard.medianMs),
    ms(L.dashboard.p95Ms),
    'p95 < 150 ms',
    verdict(L.dashboard.p95Ms < TARGETS.dashboardP95Ms),
    `${(L.dashboard.medianMs / base).toFixed(1)}x COUNT`,
  );
  row(
    'hitReport, all 10 groupings (30 days)',
    ms(L.hitReport.medianMs),
    ms(L.hitReport.p95Ms),
    'p95 < 150 ms',
    verdict(L.hitReport.p95Ms < TARGETS.hitReportP95Ms),
    `${(L.hitReport.medianMs / base).toFixed(1)}x COUNT`,
  );
  const W = r.wholeReport;
  row(
    'hitReport in-process on the SQL executor (store off)',
    ms(W.sql.medianMs),
    ms(W.sql.p95Ms),
    'p95 < 2 s',
    verdict(W.sql.p95Ms < TARGETS.sqlHitReportMs),
    `${(W.sql.medianMs / Math.max(W.store.medianMs, 0.001)).toFixed(1)}x as served (${ms(W.store.medianMs)})`,
  );
  row(
    `drill-down page 1 (1 device, minSeverity 3: ${r.drillDownRows.toLocaleString('en')} rows)`,
    ms(L.page1.medianMs),
    ms(L.page1.p95Ms),
    'p95 < 30 ms',
    verdict(L.page1.p95Ms < TARGETS.pageP95Ms),
    `${(L.page1.medianMs / http0).toFixed(1)}x no-op`,
  );
  row(
    '  page 1 selecting only node { id } (diagnostic)',
    ms(L.page1Lean.medianMs),
    ms(L.page1Lean.p95Ms),
    '',
    '',
    `${(L.page1Lean.medianMs / http0).toFixed(1)}x no-op`,
  );
  row(
    'drill-down page 50 (cursor followed)',
    ms(L.page50.medianMs),
    ms(L.page50.p95Ms),
    'p95 < 30 ms',
    verdict(L.page50.p95Ms < TARGETS.pageP95Ms),
    `${(L.page50.medianMs / http0).toFixed(1)}x no-op; ${(L.page50.medianMs / L.page1.medianMs).toFixed(2)}x page 1`,
  );
  const ex = [...r.export].sort((a, b) => a.rowsPerS - b.rowsPerS)[r.export.length >> 1];
  const rawRate = median(r.exportBaseline.map((b) => b.rowsPerS));
  const fixedRate = median(r.exportSargable.map((b) => b.rowsPerS));
  const drift = Math.max(...r.export.map((e) => e.driftMB));
  const growth = Math.max(...r.export.map((e) => e.rssGrowthMB));
  const cut = ex.cut ? ` (cut after ${(ex.ms / 1000).toFixed(0)} s)` : '';
  row(
    `CSV export, ${ex.rows.toLocaleString('en')} rows${cut} (${(ex.bytes / 1e6).toFixed(0)} MB), median of ${r.export.length}`,
    `${Math.round(ex.rowsPerS).toLocaleString('en')} rows/s`,
    `${(ex.ms / 1000).toFixed(1)} s`,
    '>= 50,000 rows/s',
    verdict(ex.rowsPerS >= TARGETS.exportRowsPerS),
    // The export seeks each batch from its cursor, as the second raw loop does: that one is its baseline.
    `${(ex.rowsPerS / fixedRate).toFixed(2)}x raw SELECT loop with the cursor as lower bound`,
  );
  row(
    '  rows/s over the first / last quarter of the transfer',
    `${Math.round(ex.rateFirst).toLocaleString('en')}`,
    `${Math.round(ex.rateLast).toLocaleString('en')}`,
    '',
    '',
    `${(ex.rateLast / ex.rateFirst).toFixed(2)}x`,
  );
  row(
    '  RSS during export: before / peak / growth',
    `${ex.rssBeforeMB.toFixed(0)} / ${Math.max(...r.export.map((e) => e.rssPeakMB)).toFixed(0)} MB`,
    `+${growth.toFixed(0)} MB`,
    'flat',
    verdict(drift < TARGETS.exportDriftMB),
    `max RSS last quarter vs first half: ${drift >= 0 ? '+' : ''}${drift.toFixed(0)} MB; server heap ${ex.heapBeforeMB.toFixed(0)} -> max ${ex.heapPeakMB.toFixed(0)} MB, external max ${ex.externalPeakMB.toFixed(0)} MB; client heap max ${ex.clientHeapPeakMB.toFixed(0)} MB`,
  );
  row(
    "  server's event loop during export: p99 / longest stall",
    ms(Math.max(...r.export.map((e) => e.loopP99Ms))),
    ms(Math.max(...r.export.map((e) => e.loopMaxMs))),
    '',
    '',
    'how long a request arriving mid-export could wait for its turn (worst of the runs)',
  );
  const rb = r.exportBaseline[r.exportBaseline.length >> 1];
  const sb = r.exportSargable[r.exportSargable.length >> 1];
  row(
    `baseline: raw keyset SELECT loop, 2000/batch (in-process)${rb.cut ? ', cut' : ''}`,
    `${Math.round(rawRate).toLocaleString('en')} rows/s`,
    '',
    '',
    '',
    `batch ${rb.firstBatchesMs.toFixed(1)} ms first 10 -> ${rb.lastBatchesMs.toFixed(1)} ms last 10`,
  );
  row(
    `  same loop, window lower bound moved to the cursor${sb.cut ? ', cut' : ''}`,
    `${Math.round(fixedRate).toLocaleString('en')} rows/s`,
    '',
    '',
    '',
    `${(fixedRate / rawRate).toFixed(1)}x; batch ${sb.firstBatchesMs.toFixed(1)} -> ${sb.lastBatchesMs.toFixed(1)} ms`,
  );
  const w = [0, 0, 0, 0, 0, 0];
  const head = ['metric', 'median', 'p95', 'target', '', 'vs baseline'];
  for (const rr of [head, ...rows]) rr.forEach((c, i) => (w[i] = Math.max(w[i], c.length)));
  const s = r.seeded;
  console.log(
    `\n== ${r.db} ${r.version}: ${r.hits.toLocaleString('en')} hits (${((s.v6Hits / s.hits) * 100).toFixed(1)}% IPv6) over ${DAYS} days, 5 devices, 6 lists / ${s.entries} entries, ${s.uploads} uploads; flow_hit ${r.tableMB.toFixed(0)} MB; 30-day window ${r.window.hits.toLocaleString('en')} hits ==`,
  );
  console.log(
    `seed: ${(s.seedMs / 1000).toFixed(1)} s = ${Math.round(r.seedRowsPerS).toLocaleString('en')} rows/s (bulkInsert, ${TX_ROWS.toLocaleString('en')}-row transactions; ${((s.seedDbMs / s.seedMs) * 100).toFixed(0)}% of it in the database = ${Math.round(s.hits / (s.seedDbMs / 1000)).toLocaleString('en')} rows/s DB-only)`,
  );
  console.log(
    `${r.runs} runs after ${WARMUPS} warm-ups${r.runs < 20 ? ' (FEWER THAN 20: indicative only)' : ''}; load average now ${r.loadavg.map((x) => x.toFixed(2)).join(' ')}${big ? '; targets apply to 1M, shown for reference' : ''}`,
  );
  for (const rr of [head, ...rows])
    console.log(
      rr
        .map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])))
        .join('  ')
        .trimEnd(),
    );
  const m = r.memoryStore;
  console.log(
    `-- in-memory report store: cold load ${m.coldHits.toLocaleString('en')} hits in ${(m.coldLoadMs / 1000).toFixed(1)} s (${Math.round(m.coldHits / (m.coldLoadMs / 1000)).toLocaleString('en')} hits/s), ~${m.bytesPerHit.toFixed(0)} bytes/hit held; ` +
      `server store (REPORT_MEMORY_MAX_HITS ${m.maxHits.toLocaleString('en')}) ${m.serverHeld === null ? 'does NOT hold the account: the figures above are SQL' : `caught up with the seed in ${(m.catchUpMs / 1000).toFixed(1)} s`}`,
  );
  const sumOf = (parts: Array<[string, number]>) => parts.filter(([k]) => !k.startsWith('dashboard')).reduce((a, [, v]) => a + v, 0);
  const parts = Object.entries(r.breakdownMs);
  const sqlParts = Object.entries(r.sqlBreakdownMs);
  console.log(
    `-- hitReport groupings one at a time, in-process, as served (median of ${r.breakdownRuns}; each includes selecting the window); sum ${ms(sumOf(parts))} vs hitReport over HTTP ${ms(L.hitReport.medianMs)}:`,
  );
  console.log(`   ${parts.map(([k, v]) => `${k} ${ms(v)} (${(v / base).toFixed(1)}x COUNT)`).join(', ')}`);
  console.log(
    `-- the same on SQL alone (roll-ups and indexes, no store: the baseline); sum ${ms(sumOf(sqlParts))} = ${(sumOf(sqlParts) / Math.max(sumOf(parts), 0.001)).toFixed(1)}x the served sum:`,
  );
  console.log(`   ${sqlParts.map(([k, v]) => `${k} ${ms(v)} (${(v / base).toFixed(1)}x COUNT)`).join(', ')}`);
  console.log(
    `-- export runs: ${r.export.map((e) => `${Math.round(e.rowsPerS).toLocaleString('en')} rows/s, first byte ${e.firstByteMs.toFixed(0)} ms, RSS +${e.rssGrowthMB.toFixed(0)} MB`).join('; ')}`,
  );
  console.log(
    `-- raw SELECT runs: ${r.exportBaseline.map((b) => `${Math.round(b.rowsPerS).toLocaleString('en')} rows/s`).join(', ')}; sargable: ${r.exportSargable.map((b) => `${Math.round(b.rowsPerS).toLocaleString('en')} rows/s`).join(', ')}`,
  );
  console.log(
    `-- drill-down service call alone (FlowHitService.search, in-process, median of ${r.runs}): page 1 ${ms(r.drillDownInProcessMs.page1)}, page 50 ${ms(r.drillDownInProcessMs.page50)}; ` +
      `the rest of the HTTP time is GraphQL execution, loaders and JSON`,
  );
  if (r.plans) {
    console.log('-- query plans:');
    for (const [name, list] of Object.entries(r.plans)) {
      for (const p of list) {
        console.log(`   [${name}] ${p.sql.slice(0, 220)}${p.sql.length > 220 ? '...' : ''}`);
        for (const line of p.plan) console.log(`      ${line}`);
      }
    }
  }
}

// ---- main -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!gc) progress('warning: run with --expose-gc for settled memory figures');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-report-bench-'));
  const client = new Client();
  const reports: SizeReport[] = [];
  const skipped: string[] = [];
  const load0 = os.loadavg();
  const cleanup = async () => {
    await client.close().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void (async () => {
      progress('interrupted: cleaning up');
      if (DB_ARG !== 'sqlite') await dropMysql().catch(() => undefined);
      await cleanup();
      process.exit(130);
    })();
  });
  try {
    const dbs: DbKind[] = DB_ARG === 'both' ? ['sqlite', 'mysql'] : [DB_ARG as DbKind];
    const sizes = [HITS, ...(ALSO > 0 ? [ALSO] : [])];
    for (const db of dbs) {
      let rate = 0;
      for (const hits of sizes) {
        if (rate > 0 && MAX_SEED_S > 0 && hits / rate > MAX_SEED_S) {
          const msg = `${db} ${hits.toLocaleString('en')} hits skipped: seeding would take ~${Math.round(hits / rate)} s at the ${Math.round(rate).toLocaleString('en')} rows/s measured (> --max-seed-s ${MAX_SEED_S})`;
          progress(msg);
          skipped.push(msg);
          continue;
        }
        let r: SizeReport | null;
        try {
          r = await runSize(db, hits, client, tmp);
        } catch (err) {
          if (!(err instanceof SeedAborted)) throw err;
          const msg = `${db} ${hits.toLocaleString('en')} hits skipped: ${err.message}`;
          progress(msg);
          skipped.push(msg);
          continue;
        }
        if (!r) continue;
        rate = r.seedRowsPerS;
        reports.push(r);
        if (!JSON_OUT) printReport(r);
      }
    }
    const cpu = os.cpus();
    if (JSON_OUT) {
      console.log(
        JSON.stringify(
          {
            node: process.version,
            cpus: cpu.length,
            cpuModel: cpu[0]?.model,
            loadavgAtStart: load0,
            runs: RUNS,
            warmups: WARMUPS,
            targets: TARGETS,
            reports,
            skipped,
          },
          null,
          2,
        ),
      );
    } else {
      console.log(`\nnode ${process.version}, ${cpu[0]?.model ?? 'cpu'} x${cpu.length}, load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);
      for (const s of skipped) console.log(s);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
