/**
 * End-to-end ingestion benchmark: the real server in this process, a policy with a large BLOCK list, 15 MB
 * `tcpdump -tt -n` uploads over loopback through the GraphQL multipart mutation, and the worker to COMPLETED.
 *
 *   node -r @swc-node/register --expose-gc bench/ingest.bench.ts [--db sqlite|mysql|both] [--entries 1000000]
 *        [--json] [--mysql-url mysql://root@127.0.0.1:3306] [--runs 5]
 *
 * Prints figures beside the product targets and ratios to baselines measured in the same run (rule 12);
 * asserts nothing. Progress goes to stderr; `--json` prints one JSON document on stdout instead of tables.
 *
 * Measurement notes:
 * - The HTTP client (fetch + FormData, file streamed from disk with fs.openAsBlob) runs in a worker thread, so
 *   the main thread's event loop, whose lag is reported, is the server's. Times cross threads as
 *   performance.timeOrigin + performance.now().
 * - Completion is observed by wrapping the worker's processor instance (resolves when its final transaction has
 *   committed), then confirmed through the GraphQL `logUpload` query. Other service methods are wrapped the
 *   same way to time stages; nothing under src/ is changed.
 * - MB = 10^6 bytes, as in the product's "15 MB" (MAX_UPLOAD_BYTES default 15000000).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { dropMysqlDatabase, freshMysqlDatabase } from './lib/mysql-db';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/config';
import { startServer, RunningServer } from '../src/app/server';
import { silentLogger } from '../src/app/logger';
import { bulkInsert } from '../src/db/bulk';
import { cidr4, cidr6 } from '../src/common/net/cidr';
import { idOfType, toGlobalId } from '../src/common/ids/global-id';
import { IOC_COLUMNS, iocRow, lockList, touchList } from '../src/modules/ioc/ioc.service';
import { IocCategory, IocListKind } from '../src/modules/ioc/ioc.enums';
import { IocIndex, IocIndexBuilder, NO_MATCH } from '../src/modules/ioc/matching/ioc-index';
import { IpType } from '../src/modules/device/device.enums';
import { TcpdumpParser } from '../src/modules/log-upload/parsing/tcpdump-parser';
import { PacketBatch } from '../src/modules/log-upload/parsing/packet-batch';
import { ConnectionFolder, Connection, ConnectionEndpoint } from '../src/modules/log-upload/flows/fold';
import { createDirectionClassifier } from '../src/modules/log-upload/flows/direction';
import { intake } from '../src/modules/log-upload/acceptance/intake';
import { ProcessOutcome } from '../src/modules/log-upload/log-upload.processor';
import { MatchedSide } from '../src/modules/flow-hit/flow-hit.enums';
import { newHit, NewHit } from '../src/modules/flow-hit/flow-hit.columns';
import { generateTcpdumpText } from './lib/tcpdump-text';
import { generateIocSet, IocSet } from './lib/ioc-set';
import { argValue } from './lib/args';

// ---- arguments --------------------------------------------------------------------------------------------

const DB_ARG = argValue('db') ?? 'both';
if (!['sqlite', 'mysql', 'both'].includes(DB_ARG)) throw new Error(`--db must be sqlite, mysql or both, not ${DB_ARG}`);
const ENTRIES = Number(argValue('entries') ?? 1_000_000);
const JSON_OUT = process.argv.includes('--json');
const MYSQL_URL = argValue('mysql-url') ?? 'mysql://root@127.0.0.1:3306';
const RUNS = Number(argValue('runs') ?? 5);
const MYSQL_DB = 'pcd_bench_ingest';

/** The default upload limit; files are generated just under it. */
const MAX_UPLOAD = 15_000_000;
const FILE_TARGET = MAX_UPLOAD - 400;
/** The worker's parse slice (log-upload.processor.ts SLICE): the parser sees chunks of this size. */
const WORKER_CHUNK = 1024 * 1024;
const CONCURRENT = 4;

const TARGETS = {
  parserMBps: 300,
  ackS: 0.5,
  completedS: { sqlite: 0.3, mysql: 0.5 } as Record<DbKind, number>,
  rssGrowthMB: 300,
  lagP99Ms: 100,
};

type DbKind = 'sqlite' | 'mysql';

const gc = (globalThis as { gc?: () => void }).gc;
const clock = () => performance.timeOrigin + performance.now();
const MB = 1e6;
/** Progress on stderr; +seconds since process start, to line up with a --cpu-prof profile. */
const progress = (msg: string) => {
  const m = process.memoryUsage();
  const at = `${new Date().toISOString().slice(11, 19)} +${(performance.now() / 1000).toFixed(1)}s rss ${(m.rss / 1e6).toFixed(0)} heap ${(m.heapUsed / 1e6).toFixed(0)} MB`;
  process.stderr.write(`[ingest.bench ${at}] ${msg}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function settle(): void {
  gc?.();
  gc?.();
}

// ---- HTTP client in a worker thread -----------------------------------------------------------------------

interface ClientRequest {
  url: string;
  token?: string;
  file: string;
  nickname: string;
}
interface ClientReply {
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
  /** Absolute ms: request started, whole response received. */
  t0: number;
  t1: number;
}

const UPLOAD_MUTATION = `mutation Upload($input: LogUploadCreateInput!) {
  logUploadCreate(input: $input) { logUpload { id status size textBytes storedBytes } duplicate userErrors { code field message } }
}`;

const CLIENT_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const clock = () => performance.timeOrigin + performance.now();
parentPort.on('message', async ({ seq, req, query }) => {
  let t0 = clock();
  try {
    const blob = await fs.openAsBlob(req.file, { type: 'text/plain' });
    const form = new FormData();
    form.append('operations', JSON.stringify({ query, variables: { input: { deviceNickname: req.nickname, file: null } } }));
    form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
    form.append('0', blob, path.basename(req.file));
    const headers = { 'apollo-require-preflight': 'true' };
    if (req.token) headers.authorization = 'Bearer ' + req.token;
    t0 = clock();
    const res = await fetch(req.url, { method: 'POST', headers, body: form });
    const body = await res.text();
    parentPort.postMessage({ seq, reply: { ok: true, status: res.status, body, t0, t1: clock() } });
  } catch (err) {
    parentPort.postMessage({ seq, reply: { ok: false, error: String((err && err.stack) || err), t0, t1: clock() } });
  }
});
`;

class UploadClient {
  private readonly worker = new Worker(CLIENT_SOURCE, { eval: true });
  private seq = 0;
  private readonly pending = new Map<number, (r: ClientReply) => void>();

  constructor() {
    this.worker.on('message', (m: { seq: number; reply: ClientReply }) => {
      this.pending.get(m.seq)?.(m.reply);
      this.pending.delete(m.seq);
    });
    this.worker.unref();
  }

  upload(req: ClientRequest): Promise<ClientReply> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(seq, resolve);
      this.worker.postMessage({ seq, req, query: UPLOAD_MUTATION });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Small GraphQL calls from the main thread (status, reprocess). */
async function gql<T>(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data?: T; errors?: unknown };
  if (json.errors || !json.data) throw new Error(`GraphQL error: ${JSON.stringify(json.errors)}`);
  return json.data;
}

// ---- instrumentation --------------------------------------------------------------------------------------

interface ProbeEvent {
  kind: string;
  start: number;
  end: number;
  label?: string;
  uploadId?: number;
}

/** Wraps service methods on the live instances (the worker and resolvers call through them) with timers. */
class Probe {
  readonly events: ProbeEvent[] = [];
  readonly progress = new Map<number, { first: number; last: number; calls: number }>();
  readonly completed = new Map<number, { at: number; outcome: ProcessOutcome }>();
  private readonly waiters = new Map<number, Array<() => void>>();
  /** RSS samples every 10 ms, max per phase. */
  private phase = 'setup';
  readonly peakRss = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  wrap<T extends object>(obj: T, key: keyof T & string, kind: string, describe?: (args: unknown[], result: unknown) => Partial<ProbeEvent>): void {
    const original = (obj[key] as unknown as (...a: unknown[]) => Promise<unknown>).bind(obj);
    (obj as Record<string, unknown>)[key] = async (...args: unknown[]) => {
      const start = clock();
      const result = await original(...args);
      this.events.push({ kind, start, end: clock(), ...(describe?.(args, result) ?? {}) });
      return result;
    };
  }

  onProgress = (uploadId: number): void => {
    const t = clock();
    const p = this.progress.get(uploadId);
    if (p) {
      p.last = t;
      p.calls++;
    } else this.progress.set(uploadId, { first: t, last: t, calls: 1 });
  };

  attach(server: RunningServer): void {
    const s = server.services;
    this.wrap(s.logUploads, 'receive', 'receive');
    this.wrap(s.logUploads, 'commit', 'commit', (_a, r) => {
      const out = r as { ok: boolean; value?: { upload: { id: number } } };
      return { uploadId: out.ok ? out.value?.upload.id : undefined };
    });
    this.wrap(s.queue, 'claim', 'claim', (_a, r) => ({ uploadId: (r as { uploadId: number } | null)?.uploadId }));
    this.wrap(s.iocIndexes, 'forPolicy', 'index', (_a, r) => {
      const p = r as { rebuilt: boolean; builtInMs: number };
      return { label: p.rebuilt ? `rebuilt in ${p.builtInMs.toFixed(0)} ms` : 'cached' };
    });
    this.wrap(server.dataSource, 'query', 'sql', (a) => ({ label: String(a[0]).replace(/\s+/g, ' ').trim().slice(0, 48) }));
    this.wrap(server.dataSource, 'transaction', 'tx');
    const processor = s.processor;
    const process = processor.process.bind(processor);
    processor.process = async (uploadId, owner, signal) => {
      const start = clock();
      const outcome = await process(uploadId, owner, signal);
      const end = clock();
      this.events.push({ kind: 'process', start, end, uploadId, label: outcome.status });
      this.completed.set(uploadId, { at: end, outcome });
      for (const w of this.waiters.get(uploadId) ?? []) w();
      this.waiters.delete(uploadId);
      return outcome;
    };
  }

  /** Resolves when the processor has finished this upload (after `since`, for a reprocess). */
  waitProcessed(uploadId: number, since = 0, timeoutMs = 600_000): Promise<{ at: number; outcome: ProcessOutcome }> {
    const done = this.completed.get(uploadId);
    if (done && done.at >= since) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`upload ${uploadId} not processed within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(uploadId) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve(this.completed.get(uploadId) as { at: number; outcome: ProcessOutcome });
      });
      this.waiters.set(uploadId, list);
    });
  }

  startRss(): void {
    this.timer = setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > (this.peakRss.get(this.phase) ?? 0)) this.peakRss.set(this.phase, rss);
    }, 10);
  }

  setPhase(name: string): void {
    this.phase = name;
    this.peakRss.set(name, process.memoryUsage.rss());
  }

  stopRss(): void {
    if (this.timer) clearInterval(this.timer);
  }

  between(kind: string, from: number, to: number): ProbeEvent[] {
    return this.events.filter((e) => e.kind === kind && e.start >= from && e.end <= to);
  }
}

const sum = (events: ProbeEvent[]) => events.reduce((n, e) => n + (e.end - e.start), 0);

// ---- stage replay (same functions as the worker, timed one by one, nothing written) -----------------------

interface Replay {
  blobSelectMs: number;
  blobBytes: number;
  gunzipMs: number;
  parseMs: number;
  foldMs: number;
  finishMs: number;
  matchMs: number;
  packets: number;
  connections: number;
  hits: number;
}

function bestBlock(index: IocIndex, end: ConnectionEndpoint, now: number): number {
  return end.v6 ? index.bestBlockRowV6(end.v6[0], end.v6[1], end.v6[2], end.v6[3], now) : index.bestBlockRowV4(end.v4, now);
}

/** What the processor builds per hit (newHit, flow-hit.columns.ts), to time the match stage. */
function matchConnections(connections: Connection[], index: IocIndex, now: number): NewHit[] {
  const hits: NewHit[] = [];
  for (const c of connections) {
    for (const side of [MatchedSide.INITIATOR, MatchedSide.RESPONDER]) {
      const end = side === MatchedSide.INITIATOR ? c.initiator : c.responder;
      if (!end.canCrossInternet) continue;
      const row = bestBlock(index, end, now);
      if (row === NO_MATCH) continue;
      const list = index.rowList(row);
      const match = {
        entryId: index.rowEntryId(row),
        listId: list.id,
        cidr: index.describeRow(row, false).cidr,
        severity: list.severity,
        category: list.category,
      };
      hits.push(newHit({ accountId: 1, deviceId: 1, uploadId: 1, connection: c, side, end, match }));
    }
  }
  return hits;
}

async function replayStages(ds: DataSource, uploadId: number, index: IocIndex, internalNetworks: string[]): Promise<Replay> {
  let t = performance.now();
  const blobs: Array<{ data: Buffer }> = await ds.query(`SELECT data FROM log_upload_blob WHERE upload_id = ? ORDER BY seq`, [uploadId]);
  const blobSelectMs = performance.now() - t;
  t = performance.now();
  // One stage after another (the worker overlaps decompression with parsing): decompress the stored file (Brotli, or
  // the client's gzip), then 1 MiB slices.
  const [{ stored_encoding: encoding }]: Array<{ stored_encoding: string }> = await ds.query(`SELECT stored_encoding FROM log_upload WHERE id = ?`, [uploadId]);
  const stored = Buffer.concat(blobs.map((b) => b.data));
  const text = encoding === 'br' ? zlib.brotliDecompressSync(stored) : zlib.gunzipSync(stored);
  const chunks: Buffer[] = [];
  for (let off = 0; off < text.length; off += WORKER_CHUNK) chunks.push(text.subarray(off, off + WORKER_CHUNK));
  const gunzipMs = performance.now() - t;
  t = performance.now();
  const parser = new TcpdumpParser();
  const batches: PacketBatch[] = chunks.map((c) => parser.push(c));
  batches.push(parser.end());
  const parseMs = performance.now() - t;
  t = performance.now();
  const folder = new ConnectionFolder(createDirectionClassifier(internalNetworks));
  for (const b of batches) folder.add(b);
  const foldMs = performance.now() - t;
  t = performance.now();
  const connections = folder.finish();
  const finishMs = performance.now() - t;
  t = performance.now();
  const hits = matchConnections(connections, index, Date.now());
  const matchMs = performance.now() - t;
  return {
    blobSelectMs,
    blobBytes: blobs.reduce((n, b) => n + b.data.length, 0),
    gunzipMs,
    parseMs,
    foldMs,
    finishMs,
    matchMs,
    packets: parser.stats.packets,
    connections: connections.length,
    hits: hits.length,
  };
}

// ---- parser throughput ------------------------------------------------------------------------------------

interface ParserFigures {
  baselineMs: number;
  parseMs: number;
  parseMBps: number;
  baselineMBps: number;
  lines: number;
  packets: number;
}

/** Parser on the file in the worker's 256 KiB chunks, interleaved with the read-and-find-newlines baseline. */
function measureParser(file: string): ParserFigures {
  const data = fs.readFileSync(file);
  const parseOnce = () => {
    const parser = new TcpdumpParser();
    for (let i = 0; i < data.length; i += WORKER_CHUNK) parser.push(data.subarray(i, i + WORKER_CHUNK));
    parser.end();
    return parser.stats;
  };
  const stats = parseOnce();
  const baseline = () => {
    const buf = fs.readFileSync(file);
    let n = 0;
    for (let p = buf.indexOf(10); p >= 0; p = buf.indexOf(10, p + 1)) n++;
    if (n !== stats.lines) throw new Error(`newline count ${n} != ${stats.lines} lines`);
  };
  baseline();
  // Warm-ups: the first parses of a process run before V8 has optimized the scanner.
  for (let w = 0; w < 3; w++) parseOnce();
  const tb: number[] = [];
  const tp: number[] = [];
  for (let r = 0; r < Math.max(RUNS, 7); r++) {
    let t = performance.now();
    baseline();
    tb.push(performance.now() - t);
    t = performance.now();
    parseOnce();
    tp.push(performance.now() - t);
  }
  const baselineMs = median(tb);
  const parseMs = median(tp);
  return {
    baselineMs,
    parseMs,
    parseMBps: data.length / MB / (parseMs / 1000),
    baselineMBps: data.length / MB / (baselineMs / 1000),
    lines: stats.lines,
    packets: stats.packets,
  };
}

// ---- one database -----------------------------------------------------------------------------------------

interface UploadFigures {
  uploadId: number;
  /** Request start and processing end, seconds since process start (to line up with --cpu-prof). */
  windowS: [number, number];
  ackMs: number;
  ackToCompletedMs: number;
  processMs: number;
  hits: number;
  connections: number;
  packets: number;
  storedBytes: number;
  /** Server-side stages of this upload, ms. */
  stages: Record<string, number>;
  indexLabel: string;
  peakRssMB: number;
  rssGrowthMB: number;
  /** Event-loop delay while this upload was sent and processed (1 ms resolution). */
  lagP99Ms: number;
  lagMaxMs: number;
}

interface DbReport {
  db: DbKind;
  version: string;
  entries: number;
  iocCounts: IocSet['counts'];
  iocInsertMs: number;
  parser: ParserFigures;
  index: { coldMs: number; builtInMs: number; inMemoryBuildMs: number; cachedLookupMs: number; heapMB: number; externalMB: number; indexBytesMB: number };
  rawUploadMs: number;
  intakeInMemoryMs: number;
  first: UploadFigures;
  /** The median (by ack + processing) of the warm uploads; all of them in warmRuns. */
  warm: UploadFigures;
  warmRuns: Array<{ ackMs: number; ackToCompletedMs: number }>;
  cold: UploadFigures;
  /** An IOC change, then the background warm-up (src/modules/ioc/ioc-index.warmer.ts). */
  listChange: {
    /** Change committed until the warm-up has rebuilt the index. */
    readyMs: number;
    builtInMs: number;
    /** Event-loop delay during that warm-up alone (no upload). */
    lagP99Ms: number;
    lagMaxMs: number;
    /** Upload sent once the warm-up had finished. */
    afterWarm: UploadFigures;
    /** Upload sent right after another change: its job joins the warm-up's build. */
    racing: UploadFigures;
  };
  reprocess: { hitsFirst: number; hitsAgain: number; ackToCompletedMs: number };
  replay: Replay;
  concurrent: {
    uploads: number;
    allCompletedMs: number;
    ackMs: number[];
    processMs: number[];
    rssBeforeMB: number;
    peakRssMB: number;
    rssGrowthMB: number;
    maxRssMB: number;
    lagP50Ms: number;
    lagP99Ms: number;
    lagMaxMs: number;
  };
  loadavg: number[];
}

/** A plain node:http endpoint that drains the body and answers: what moving the bytes alone costs. */
async function rawBaseline(client: UploadClient, file: string): Promise<number> {
  const server = http.createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => res.end('{"ok":true}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const reply = await client.upload({ url, file, nickname: 'x' });
    if (!reply.ok) throw new Error(reply.error);
    times.push(reply.t1 - reply.t0);
  }
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  return median(times);
}

async function intakeInMemory(file: string): Promise<number> {
  const data = fs.readFileSync(file);
  const run = async () => {
    const t = performance.now();
    const chunks = function* () {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
    };
    await intake(Readable.from(chunks()), MAX_UPLOAD);
    return performance.now() - t;
  };
  await run();
  return median([await run(), await run(), await run()]);
}

async function prepareMysql(): Promise<string> {
  return freshMysqlDatabase(MYSQL_URL, MYSQL_DB);
}

async function dropMysql(): Promise<void> {
  await dropMysqlDatabase(MYSQL_URL, MYSQL_DB);
}

async function insertIocs(ds: DataSource, accountId: number, listId: number, set: IocSet): Promise<number> {
  const now = Date.now();
  return ds.transaction(async (em) => {
    const list = await lockList(em, accountId, listId);
    if (!list) throw new Error('list vanished');
    let inserted = 0;
    let rows: unknown[][] = [];
    const flush = async () => {
      inserted += await bulkInsert(em, 'ioc', IOC_COLUMNS, rows);
      rows = [];
    };
    for (let i = 0; i < set.n4; i++) {
      rows.push(iocRow(accountId, listId, cidr4(set.v4Net[i], set.v4Prefix[i]), null, null, now));
      if (rows.length === 20_000) await flush();
    }
    for (let i = 0; i < set.v6Net.length; i++) {
      rows.push(iocRow(accountId, listId, cidr6(set.v6Net[i], set.v6Prefix[i]), null, null, now));
      if (rows.length === 20_000) await flush();
    }
    await flush();
    await touchList(em, list, inserted, false);
    return inserted;
  });
}

interface Files {
  /** The process's first upload (upload path not yet JIT-compiled, database just loaded); reported apart. */
  first: string;
  warm: string[];
  cold: string;
  /** Uploads after an IOC change: once warmed, and racing the warm-up. */
  afterChange: [string, string];
  concurrent: string[];
}

async function runDatabase(db: DbKind, set: IocSet, files: Files, client: UploadClient, tmp: string): Promise<DbReport> {
  progress(`${db}: parser throughput`);
  const parser = measureParser(files.warm[0]);
  const env: Record<string, string> = { NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0' };
  if (db === 'sqlite') {
    env.DATA_DIR = path.join(tmp, 'sqlite');
  } else {
    env.DATABASE_URL = await prepareMysql();
  }
  const probe = new Probe();
  probe.startRss();
  const server = await startServer(loadConfig(env), silentLogger(), { onProgress: probe.onProgress });
  try {
    probe.attach(server);
    const s = server.services;
    const token = server.bootstrapSecret;
    if (!token) throw new Error('expected a fresh database with a bootstrap secret');
    const version = String((await server.dataSource.query(db === 'sqlite' ? 'SELECT sqlite_version() AS v' : 'SELECT VERSION() AS v'))[0].v);
    const account = await s.accounts.findAccountByName('default');
    if (!account) throw new Error('no default account');
    const policy = await s.policies.create(account.id, { name: 'Bench policy' });
    const list = await s.iocLists.create(account.id, { name: 'Bench blocklist', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.C2_BOTNET });
    if (!policy.ok || !list.ok) throw new Error('setup failed');
    const attached = await s.policies.attachIocLists(account.id, policy.value.id, [list.value.id]);
    const device = await s.devices.create(account.id, {
      nickname: 'bench sensor',
      ipType: IpType.STATIC,
      ipAddress: '93.184.216.34',
      policyId: policy.value.id,
      internalNetworks: [],
    });
    if (!attached.ok || !device.ok) throw new Error(`setup failed: ${JSON.stringify([attached, device])}`);
    const policyId = policy.value.id;

    progress(`${db}: inserting ${ENTRIES.toLocaleString('en')} IOC entries (bulkInsert, one transaction)`);
    let t = performance.now();
    const inserted = await insertIocs(server.dataSource, account.id, list.value.id, set);
    const iocInsertMs = performance.now() - t;
    if (inserted !== set.n4 + set.v6Net.length) throw new Error(`inserted ${inserted} entries, generated ${set.n4 + set.v6Net.length}`);

    progress(`${db}: IOC index build`);
    // The device's creation scheduled a warm-up (the server warms policies as devices and lists change): let it
    // end and drop its index, so the figure below is a build from scratch.
    await s.indexWarmer.idle();
    s.iocIndexes.evict(policyId);
    settle();
    const m0 = process.memoryUsage();
    t = performance.now();
    const built = await s.iocIndexes.forPolicy(policyId);
    const coldMs = performance.now() - t;
    settle();
    const m1 = process.memoryUsage();
    t = performance.now();
    await s.iocIndexes.forPolicy(policyId);
    const cachedLookupMs = performance.now() - t;
    // Baseline: the same entries straight from memory into the builder (no database, no row objects).
    t = performance.now();
    const builder = new IocIndexBuilder(built.index.lists, { now: Date.now() });
    for (let i = 0; i < set.n4; i++) builder.addV4(i + 1, list.value.id, set.v4Net[i], set.v4Prefix[i]);
    for (let i = 0; i < set.v6Net.length; i++) builder.addV6(set.n4 + i + 1, list.value.id, set.v6Net[i], set.v6Prefix[i]);
    builder.build();
    const inMemoryBuildMs = performance.now() - t;
    const index = {
      coldMs,
      builtInMs: built.builtInMs,
      inMemoryBuildMs,
      cachedLookupMs,
      heapMB: (m1.heapUsed - m0.heapUsed) / MB,
      externalMB: (m1.external + m1.arrayBuffers - m0.external - m0.arrayBuffers) / MB,
      indexBytesMB: built.index.stats.bytes / MB,
    };

    progress(`${db}: loopback baseline and intake`);
    const rawUploadMs = await rawBaseline(client, files.warm[0]);
    const intakeMs = await intakeInMemory(files.warm[0]);

    const upload = async (file: string, phase: string): Promise<UploadFigures> => {
      settle();
      await sleep(50);
      probe.setPhase(phase);
      const rssBefore = process.memoryUsage.rss();
      const lag = monitorEventLoopDelay({ resolution: 1 });
      lag.enable();
      const reply = await client.upload({ url: server.url, token, file, nickname: 'bench sensor' });
      if (!reply.ok || reply.status !== 200) throw new Error(`upload failed: ${reply.status} ${reply.error ?? reply.body}`);
      const body = JSON.parse(reply.body as string) as {
        data: { logUploadCreate: { logUpload: { id: string; storedBytes: number } | null; duplicate: boolean; userErrors: unknown[] } };
      };
      const created = body.data.logUploadCreate;
      if (!created.logUpload || created.duplicate) throw new Error(`upload refused or duplicate: ${reply.body}`);
      const uploadId = idOfType(created.logUpload.id, 'LogUpload') as number;
      const done = await probe.waitProcessed(uploadId);
      lag.disable();
      await sleep(30);
      const fig = uploadFigures(probe, uploadId, reply, done, created.logUpload.storedBytes);
      fig.lagP99Ms = lag.percentile(99) / 1e6;
      fig.lagMaxMs = lag.max / 1e6;
      fig.peakRssMB = (probe.peakRss.get(phase) ?? 0) / MB;
      fig.rssGrowthMB = fig.peakRssMB - rssBefore / MB;
      const status = await gql<{ logUpload: { status: string; hits: number } }>(server.url, token, `query($id: ID!) { logUpload(id: $id) { status hits } }`, {
        id: created.logUpload.id,
      });
      if (status.logUpload.status !== 'COMPLETED' || status.logUpload.hits !== fig.hits) throw new Error(`upload ${uploadId}: ${JSON.stringify(status)}`);
      return fig;
    };

    progress(`${db}: first upload of the process (index warm)`);
    const first = await upload(files.first, 'first');
    progress(`${db}: ${files.warm.length} uploads one after another, index warm`);
    const warmAll: UploadFigures[] = [];
    for (const [i, file] of files.warm.entries()) warmAll.push(await upload(file, `warm${i}`));
    const byTotal = [...warmAll].sort((a, b) => a.ackMs + a.ackToCompletedMs - (b.ackMs + b.ackToCompletedMs));
    const warm = byTotal[byTotal.length >> 1];
    progress(`${db}: upload with the index cold (evicted)`);
    s.iocIndexes.evict(policyId);
    const cold = await upload(files.cold, 'cold');

    progress(`${db}: IOC change, background warm-up, then an upload`);
    // The index is current again (the cold upload rebuilt it): one added entry makes it stale.
    const change = async (value: string) => {
      const added = await s.iocs.add(account.id, list.value.id, [{ value }]);
      if (!added.ok || added.value.added !== 1) throw new Error(`IOC change failed: ${JSON.stringify(added)}`);
    };
    settle();
    await sleep(50);
    const warmLag = monitorEventLoopDelay({ resolution: 1 });
    warmLag.enable();
    const changedAt = clock();
    await change('192.0.2.201');
    await s.indexWarmer.idle();
    const readyMs = clock() - changedAt;
    warmLag.disable();
    const warmedBuild = probe.events.filter((e) => e.kind === 'index' && e.start >= changedAt).pop();
    if (!(await s.iocIndexes.isFresh(policyId))) throw new Error('warm-up finished but the index is not fresh');
    const afterWarm = await upload(files.afterChange[0], 'after-change');
    progress(`${db}: IOC change and an upload at once (its job joins the warm-up's build)`);
    await change('192.0.2.202');
    const racing = await upload(files.afterChange[1], 'racing-change');
    await s.indexWarmer.idle();
    const listChange = {
      readyMs,
      builtInMs: warmedBuild ? Number(/rebuilt in (\d+)/.exec(warmedBuild.label ?? '')?.[1] ?? NaN) : NaN,
      lagP99Ms: warmLag.percentile(99) / 1e6,
      lagMaxMs: warmLag.max / 1e6,
      afterWarm,
      racing,
    };

    progress(`${db}: reprocess of the first upload`);
    const since = clock();
    const rep = await gql<{ logUploadReprocess: { logUpload: { id: string } | null; userErrors: unknown[] } }>(
      server.url,
      token,
      `mutation($input: LogUploadReprocessInput!) { logUploadReprocess(input: $input) { logUpload { id status } userErrors { code message } } }`,
      { input: { id: toGlobalId('LogUpload', warm.uploadId) } },
    );
    const acked = clock();
    if (!rep.logUploadReprocess.logUpload) throw new Error(`reprocess refused: ${JSON.stringify(rep)}`);
    const again = await probe.waitProcessed(warm.uploadId, since);
    const reprocess = { hitsFirst: warm.hits, hitsAgain: again.outcome.hits, ackToCompletedMs: again.at - acked };

    progress(`${db}: stage replay`);
    const replay = await replayStages(server.dataSource, warm.uploadId, (await s.iocIndexes.forPolicy(policyId)).index, []);

    progress(`${db}: ${CONCURRENT} uploads at once`);
    settle();
    await sleep(200);
    probe.setPhase('concurrent');
    const rssBefore = process.memoryUsage.rss();
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    const start = clock();
    const replies = await Promise.all(files.concurrent.map((file) => client.upload({ url: server.url, token, file, nickname: 'bench sensor' })));
    const ids = replies.map((reply) => {
      if (!reply.ok || reply.status !== 200) throw new Error(`upload failed: ${reply.status} ${reply.error ?? reply.body}`);
      const created = (JSON.parse(reply.body as string) as { data: { logUploadCreate: { logUpload: { id: string } | null; duplicate: boolean } } }).data
        .logUploadCreate;
      if (!created.logUpload || created.duplicate) throw new Error(`upload refused or duplicate: ${reply.body}`);
      return idOfType(created.logUpload.id, 'LogUpload') as number;
    });
    const dones = await Promise.all(ids.map((id) => probe.waitProcessed(id)));
    const allDone = Math.max(...dones.map((d) => d.at));
    lag.disable();
    await sleep(30);
    const peak = probe.peakRss.get('concurrent') ?? 0;
    const concurrent = {
      uploads: CONCURRENT,
      allCompletedMs: allDone - start,
      ackMs: replies.map((r) => r.t1 - r.t0),
      processMs: ids.map((id) => {
        const e = probe.events.find((x) => x.kind === 'process' && x.uploadId === id);
        return e ? e.end - e.start : NaN;
      }),
      rssBeforeMB: rssBefore / MB,
      peakRssMB: peak / MB,
      rssGrowthMB: (peak - rssBefore) / MB,
      maxRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
      lagP50Ms: lag.percentile(50) / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      lagMaxMs: lag.max / 1e6,
    };
    for (const d of dones) if (d.outcome.status !== 'COMPLETED' || d.outcome.hits === 0) throw new Error(`concurrent upload: ${JSON.stringify(d.outcome)}`);

    return {
      db,
      version,
      entries: inserted,
      iocCounts: set.counts,
      iocInsertMs,
      parser,
      index,
      rawUploadMs,
      intakeInMemoryMs: intakeMs,
      first,
      warm,
      warmRuns: warmAll.map((u) => ({ ackMs: u.ackMs, ackToCompletedMs: u.ackToCompletedMs })),
      cold,
      listChange,
      reprocess,
      replay,
      concurrent,
      loadavg: os.loadavg(),
    };
  } finally {
    probe.stopRss();
    await server.stop();
    if (db === 'mysql') await dropMysql();
  }
}

/** Splits one upload's wall time into the stages the probe saw. */
function uploadFigures(probe: Probe, uploadId: number, reply: ClientReply, done: { at: number; outcome: ProcessOutcome }, storedBytes: number): UploadFigures {
  const proc = probe.events.find((e) => e.kind === 'process' && e.uploadId === uploadId) as ProbeEvent;
  const receive = probe.between('receive', reply.t0, reply.t1).pop();
  const commit = probe.events.find((e) => e.kind === 'commit' && e.uploadId === uploadId);
  const claim = probe.events.find((e) => e.kind === 'claim' && e.uploadId === uploadId);
  const index = probe.between('index', proc.start, proc.end);
  const sql = probe.between('sql', proc.start, proc.end);
  const blob = sql.filter((e) => e.label?.startsWith('SELECT data FROM log_upload_blob'));
  const iocLoad = sql.filter((e) => e.label?.startsWith('SELECT id, family, prefix'));
  const prog = probe.progress.get(uploadId);
  const txs = probe.between('tx', prog?.last ?? proc.start, proc.end);
  const stages: Record<string, number> = {
    'request until intake starts (HTTP, multipart, GraphQL, auth, device)': receive ? receive.start - reply.t0 : NaN,
    'intake: read stream, md5, compress (Brotli q1)': receive ? receive.end - receive.start : NaN,
    'commit: duplicate check + row + blob insert (tx)': commit ? commit.end - commit.start : NaN,
    'commit end until client has the answer': commit ? reply.t1 - commit.end : NaN,
    'claim done, relative to ack (negative: before the ack)': claim ? claim.end - reply.t1 : NaN,
    'process: index forPolicy (fingerprint, rebuild if needed)': sum(index),
    '  of which: SELECT ioc pages (index load)': sum(iocLoad),
    '  longest single SELECT ioc page (blocks the loop on SQLite)': iocLoad.length ? Math.max(...iocLoad.map((e) => e.end - e.start)) : 0,
    'process: blob SELECT': sum(blob),
    'process: gunzip+parse+fold (first..last chunk)': prog ? prog.last - prog.first : NaN,
    'process: end, finish, match (last chunk..final tx)': prog && txs.length ? txs[0].start - prog.last : NaN,
    'process: final tx (DELETE, hit insert, UPDATE)': sum(txs),
    'process: total': proc.end - proc.start,
  };
  return {
    uploadId,
    windowS: [(reply.t0 - performance.timeOrigin) / 1000, (proc.end - performance.timeOrigin) / 1000],
    ackMs: reply.t1 - reply.t0,
    ackToCompletedMs: done.at - reply.t1,
    processMs: proc.end - proc.start,
    hits: done.outcome.hits,
    connections: done.outcome.connections,
    packets: done.outcome.packets,
    storedBytes,
    stages,
    indexLabel: index.map((e) => e.label).join(', '),
    peakRssMB: 0,
    rssGrowthMB: 0,
    lagP99Ms: NaN,
    lagMaxMs: NaN,
  };
}

// ---- report -----------------------------------------------------------------------------------------------

const signed = (x: number) => `${x < 0 ? '-' : '+'}${Math.abs(x).toFixed(0)}`;

function printReport(r: DbReport, fileBytes: number): void {
  const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
  const s = (x: number) => `${(x / 1000).toFixed(3)} s`;
  const yes = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  const rows: Array<[string, string, string, string]> = [];
  const row = (name: string, figure: string, target = '', met = '') => rows.push([name, figure, target, met]);
  const target = TARGETS.completedS[r.db];
  row(
    'parser (TcpdumpParser, 256 KiB chunks)',
    `${r.parser.parseMBps.toFixed(0)} MB/s`,
    `>= ${TARGETS.parserMBps} MB/s`,
    yes(r.parser.parseMBps >= TARGETS.parserMBps),
  );
  row(
    '  baseline: read file + find newlines',
    `${r.parser.baselineMBps.toFixed(0)} MB/s`,
    '',
    `parser takes ${(r.parser.parseMs / r.parser.baselineMs).toFixed(1)}x baseline`,
  );
  row(
    `IOC insert (${r.entries.toLocaleString('en')} rows, bulkInsert, 1 tx)`,
    s(r.iocInsertMs),
    '',
    `${Math.round(r.entries / (r.iocInsertMs / 1000)).toLocaleString('en')} rows/s`,
  );
  row('index build, cold (forPolicy)', ms(r.index.coldMs), '', `${(r.index.coldMs / r.index.inMemoryBuildMs).toFixed(1)}x in-memory build`);
  row('  baseline: same entries from memory', ms(r.index.inMemoryBuildMs));
  row(
    '  index memory',
    `${r.index.indexBytesMB.toFixed(0)} MB typed arrays`,
    '',
    `heap ${signed(r.index.heapMB)} MB, external ${signed(r.index.externalMB)} MB`,
  );
  row('  cached forPolicy (fingerprint query)', `${r.index.cachedLookupMs.toFixed(1)} ms`);
  const runs = (pick: (x: { ackMs: number; ackToCompletedMs: number }) => number) => r.warmRuns.map((x) => (pick(x) / 1000).toFixed(3)).join(', ');
  row(
    `upload ${(fileBytes / MB).toFixed(1)} MB acknowledged (warm, median)`,
    s(r.warm.ackMs),
    `<= ${TARGETS.ackS} s`,
    yes(r.warm.ackMs <= TARGETS.ackS * 1000),
  );
  row(
    '  each warm run',
    runs((x) => x.ackMs),
  );
  row('upload acknowledged (first of the process)', s(r.first.ackMs), `<= ${TARGETS.ackS} s`, yes(r.first.ackMs <= TARGETS.ackS * 1000));
  row('upload acknowledged (cold)', s(r.cold.ackMs), `<= ${TARGETS.ackS} s`, yes(r.cold.ackMs <= TARGETS.ackS * 1000));
  row('  baseline: same multipart body to a plain http server', s(r.rawUploadMs), '', `ack = ${(r.warm.ackMs / r.rawUploadMs).toFixed(1)}x baseline`);
  row('  intake alone, from memory', ms(r.intakeInMemoryMs));
  row('ack -> COMPLETED, index warm (median)', s(r.warm.ackToCompletedMs), `<= ${target} s`, yes(r.warm.ackToCompletedMs <= target * 1000));
  row(
    '  each warm run',
    runs((x) => x.ackToCompletedMs),
  );
  row('ack -> COMPLETED, first of the process', s(r.first.ackToCompletedMs), `<= ${target} s`, yes(r.first.ackToCompletedMs <= target * 1000));
  row('ack -> COMPLETED, index cold (rebuilt)', s(r.cold.ackToCompletedMs), `<= ${target} s`, yes(r.cold.ackToCompletedMs <= target * 1000));
  const inMemory = r.replay.parseMs + r.replay.foldMs + r.replay.finishMs + r.replay.matchMs;
  const lc = r.listChange;
  row(
    'IOC change -> index rebuilt in the background',
    s(lc.readyMs),
    '',
    `build ${ms(lc.builtInMs)}; lag p99 / max ${lc.lagP99Ms.toFixed(0)} / ${lc.lagMaxMs.toFixed(0)} ms`,
  );
  row('ack -> COMPLETED, upload after the warm-up', s(lc.afterWarm.ackToCompletedMs), `<= ${target} s`, yes(lc.afterWarm.ackToCompletedMs <= target * 1000));
  row('ack -> COMPLETED, upload racing the warm-up', s(lc.racing.ackToCompletedMs), '', `sent right after the change; ack ${s(lc.racing.ackMs)}`);
  row('  baseline: parse+fold+match in memory', ms(inMemory), '', `warm = ${(r.warm.ackToCompletedMs / inMemory).toFixed(1)}x baseline`);
  row(
    'hits: first run / reprocess',
    `${r.reprocess.hitsFirst} / ${r.reprocess.hitsAgain}`,
    'non-zero, equal',
    yes(r.reprocess.hitsFirst > 0 && r.reprocess.hitsFirst === r.reprocess.hitsAgain),
  );
  row('  reprocess ack -> COMPLETED', s(r.reprocess.ackToCompletedMs));
  row('peak RSS / growth, one warm upload', `${r.warm.peakRssMB.toFixed(0)} MB / +${r.warm.rssGrowthMB.toFixed(0)} MB`);
  row(
    'event-loop lag p99 / max, single upload',
    `warm ${r.warm.lagP99Ms.toFixed(0)} / ${r.warm.lagMaxMs.toFixed(0)} ms, cold ${r.cold.lagP99Ms.toFixed(0)} / ${r.cold.lagMaxMs.toFixed(0)} ms`,
  );
  const c = r.concurrent;
  row(
    `${c.uploads} at once: all COMPLETED after`,
    s(c.allCompletedMs),
    '',
    `${(c.allCompletedMs / (r.warm.ackMs + r.warm.ackToCompletedMs)).toFixed(1)}x one upload`,
  );
  row(`${c.uploads} at once: acks`, c.ackMs.map((x) => (x / 1000).toFixed(2)).join(' / ') + ' s');
  row(`${c.uploads} at once: RSS growth`, `+${c.rssGrowthMB.toFixed(0)} MB`, `< ${TARGETS.rssGrowthMB} MB`, yes(c.rssGrowthMB < TARGETS.rssGrowthMB));
  row(
    '  RSS before / peak (10 ms samples) / maxRSS',
    `${c.rssBeforeMB.toFixed(0)} / ${c.peakRssMB.toFixed(0)} / ${c.maxRssMB.toFixed(0)} MB`,
    '',
    'maxRSS: whole process life',
  );
  row(`${c.uploads} at once: event-loop lag p99`, `${c.lagP99Ms.toFixed(1)} ms`, `< ${TARGETS.lagP99Ms} ms`, yes(c.lagP99Ms < TARGETS.lagP99Ms));
  row('  lag p50 / max (1 ms resolution)', `${c.lagP50Ms.toFixed(1)} / ${c.lagMaxMs.toFixed(0)} ms`);
  const w = [0, 0, 0, 0];
  for (const rr of rows) rr.forEach((cell, i) => (w[i] = Math.max(w[i], cell.length)));
  console.log(
    `\n== ${r.db} (${r.version}); ${r.entries.toLocaleString('en')} IOC entries: ${r.iocCounts.v4_32.toLocaleString('en')} IPv4 /32, ${r.iocCounts.v4_24.toLocaleString('en')} /24, ${r.iocCounts.v6.toLocaleString('en')} IPv6 ==`,
  );
  console.log(['metric', 'figure', 'target', ''].map((h, i) => h.padEnd(w[i])).join('  '));
  for (const rr of rows)
    console.log(
      rr
        .map((cell, i) => cell.padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    );
  const stageTable = (title: string, u: UploadFigures) => {
    console.log(
      `-- where the time goes: ${title} (upload ${u.uploadId}, +${u.windowS[0].toFixed(1)}..${u.windowS[1].toFixed(1)} s: ${u.packets} packets, ${u.connections} connections, ${u.hits} hits; stored ${(u.storedBytes / MB).toFixed(2)} MB gzip; index ${u.indexLabel})`,
    );
    for (const [k, v] of Object.entries(u.stages)) console.log(`   ${k.padEnd(66)} ${ms(v).padStart(8)}`);
  };
  stageTable('first upload of the process', r.first);
  stageTable('median warm upload', r.warm);
  stageTable('cold upload', r.cold);
  stageTable('upload after an IOC change, warm-up finished', lc.afterWarm);
  stageTable('upload right after an IOC change, racing the warm-up', lc.racing);
  const p = r.replay;
  console.log(
    `-- worker stages replayed one by one on the stored file (same functions, nothing written): blob SELECT ${ms(p.blobSelectMs)} (${(p.blobBytes / MB).toFixed(2)} MB), ` +
      `gunzip ${ms(p.gunzipMs)}, parse ${ms(p.parseMs)}, fold ${ms(p.foldMs)}, finish ${ms(p.finishMs)} (${p.connections} connections), match+rows ${ms(p.matchMs)} (${p.hits} hits)`,
  );
  console.log(
    `-- ${c.uploads} at once, processing per upload: ${c.processMs.map((x) => ms(x)).join(', ')}; load average now ${r.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
  );
}

// ---- main -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!gc) progress('warning: run with --expose-gc for settled memory figures');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-ingest-bench-'));
  const client = new UploadClient();
  const reports: DbReport[] = [];
  const load0 = os.loadavg();
  try {
    progress(`generating ${ENTRIES.toLocaleString('en')} IOC entries and ${5 + CONCURRENT} files of ${(FILE_TARGET / MB).toFixed(0)} MB`);
    const set = generateIocSet(ENTRIES, 7);
    const hot = { v4: set.hotV4, v6: set.hotV6, share: 0.02 };
    const write = (name: string, seed: number) => {
      const file = path.join(tmp, name);
      const data = generateTcpdumpText({ targetBytes: FILE_TARGET, seed, hot });
      if (data.length > MAX_UPLOAD) throw new Error(`generated ${data.length} bytes, over the limit`);
      fs.writeFileSync(file, data);
      return file;
    };
    const files: Files = {
      first: write('first.txt', 100),
      warm: [101, 102, 103].map((seed) => write(`warm-${seed}.txt`, seed)),
      cold: write('cold.txt', 104),
      afterChange: [write('after-change-warmed.txt', 120), write('after-change-racing.txt', 121)],
      concurrent: Array.from({ length: CONCURRENT }, (_, i) => write(`at-once-${i}.txt`, 105 + i)),
    };
    const fileBytes = fs.statSync(files.first).size;
    const dbs: DbKind[] = DB_ARG === 'both' ? ['sqlite', 'mysql'] : [DB_ARG as DbKind];
    for (const db of dbs) reports.push(await runDatabase(db, set, files, client, tmp));
    const cpu = os.cpus();
    const header = `node ${process.version}, ${cpu[0]?.model ?? 'cpu'} x${cpu.length}, load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}; file ${fileBytes.toLocaleString('en')} bytes, ${reports[0]?.parser.lines.toLocaleString('en')} lines`;
    if (JSON_OUT) {
      console.log(
        JSON.stringify(
          { node: process.version, cpus: cpu.length, cpuModel: cpu[0]?.model, loadavgAtStart: load0, fileBytes, targets: TARGETS, reports },
          null,
          2,
        ),
      );
    } else {
      console.log(header);
      for (const r of reports) printReport(r, fileBytes);
    }
  } finally {
    await client.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
