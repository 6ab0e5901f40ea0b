/**
 * The crash loop: a real server process receives uploads and is killed with SIGKILL at seeded-random moments
 * (a random delay into each cycle, or CRASH_AT_BYTES into a job), then restarted, cycle after cycle. Afterwards
 * every acknowledged upload must be COMPLETED with the counts and hits of a clean run of the same file, once.
 * Used by test/integration/security/crash-loop.test.ts (20 cycles) and bench/crash-loop.bench.ts (100).
 */
import { performance } from 'node:perf_hooks';
import { createTestApp } from './app';
import { generateCapture, GeneratedCapture, rng } from './capture';
import { ChildServer, startChild, uploadHttp } from './child-process';
import { createChildDatabase, seedAccount } from './child-db';
import { Driver } from './db';
import { processQueued, upload } from './ingest';
import { idOfType } from '../../src/common/ids/global-id';

export interface CrashLoopOptions {
  driver: Driver;
  cycles: number;
  /**
   * Uploads that must be acknowledged: cycles go on past `cycles` (up to twice as many) until this many are. Kills
   * land at seeded moments, and how many uploads each lets through depends on the machine's speed.
   */
  minAcknowledged?: number;
  seed?: number;
  /** Distinct capture files; each device uploads each at most once (again only as a retry). */
  files?: number;
  devices?: number;
  leaseMs?: number;
  log?: (line: string) => void;
}

export interface UploadCounts {
  status: string;
  lineCount: number;
  packetLines: number;
  skippedLines: number;
  connections: number;
  inbound: number;
  outbound: number;
  hits: number;
  firstCaptureAt: number | null;
  lastCaptureAt: number | null;
}

export interface CrashLoopResult {
  cycles: number;
  attempts: number;
  acknowledged: number;
  /** Acknowledgments that said "duplicate": a retry of an upload whose first answer was lost to a kill. */
  duplicatesAcknowledged: number;
  /** Requests cut by a kill (no answer); retried in a later cycle. */
  cut: number;
  killsByTimer: number;
  killsMidJob: number;
  /** Acknowledged uploads that were not finished when their process was killed. */
  interrupted: number;
  /** Of those, how many ended COMPLETED. */
  recovered: number;
  /**
   * Per kill that left acknowledged work unfinished: ms from the kill (the harness restarts at once) until all of
   * it was COMPLETED. Kills that struck again before that are not counted.
   */
  recoveryMs: number[];
  /** Per restart: ms from spawning the process until it listened (the floor under recoveryMs, with the lease). */
  startMs: number[];
  /** Rows per acknowledged upload, and the clean reference per capture. */
  final: Array<{ id: number; capture: number; counts: UploadCounts; hits: string[] }>;
  reference: Array<{ counts: UploadCounts; hits: string[] }>;
  /** Upload rows beyond one per (device, file), and hit rows repeated within an upload. */
  duplicateUploadRows: number;
  duplicateHitRows: number;
  rowsNotCompleted: number;
  elapsedMs: number;
}

export const COUNT_COLUMNS = `status, line_count, packet_lines, skipped_lines, connections, inbound_connections, outbound_connections, hits, first_capture_at, last_capture_at`;
const HIT_COLUMNS = `upload_id, first_seen_at, last_seen_at, direction, protocol, internal_ip, internal_port, external_ip, external_port, destination_port,
  matched_side, matched_ip, packets_forward, bytes_forward, packets_reverse, bytes_reverse, matched_cidr, severity, category`;

type Row = Record<string, unknown>;
export type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;

const num = (v: unknown) => (v == null ? null : Number(v));
export function countsOf(r: Row): UploadCounts {
  return {
    status: String(r.status),
    lineCount: Number(r.line_count),
    packetLines: Number(r.packet_lines),
    skippedLines: Number(r.skipped_lines),
    connections: Number(r.connections),
    inbound: Number(r.inbound_connections),
    outbound: Number(r.outbound_connections),
    hits: Number(r.hits),
    firstCaptureAt: num(r.first_capture_at),
    lastCaptureAt: num(r.last_capture_at),
  };
}

/** Hits of each upload as sorted, id-free tuples. */
export async function hitsByUpload(query: Query): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const r of await query(`SELECT ${HIT_COLUMNS} FROM flow_hit`)) {
    const { upload_id: uploadId, ...rest } = r;
    const tuple = JSON.stringify(
      Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'bigint' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : v])),
    );
    const list = out.get(Number(uploadId)) ?? [];
    list.push(tuple);
    out.set(Number(uploadId), list);
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** The clean run: every capture processed once, on a fresh in-process app, with no crash. */
export async function referenceRun(driver: Driver, captures: GeneratedCapture[], bad: string[]) {
  const t = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: '0' });
  try {
    const gql = async (q: string, v: Record<string, unknown> = {}) => {
      const r = await t.gql(q, v);
      if (r.errors) throw new Error(JSON.stringify(r.errors));
      return r.data;
    };
    const policy = (await gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: bad.map((value) => ({ value })) } });
    await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
      i: { nickname: 'ref', ipType: 'STATIC', ipAddress: '9.9.9.9', policy },
    });
    const ids: number[] = [];
    for (const c of captures) {
      const r = await upload(t, c.text, { deviceNickname: 'ref' });
      if (r.errors || r.data.logUploadCreate.userErrors.length) throw new Error(JSON.stringify(r.body));
      const done = await processQueued(t.services);
      if (done.length !== 1 || done[0].status !== 'COMPLETED') throw new Error(`reference run: ${JSON.stringify(done)}`);
      ids.push(Number((await t.dataSource.query('SELECT MAX(id) AS id FROM log_upload'))[0].id));
    }
    const query: Query = (sql, params) => t.dataSource.query(sql, params);
    const hits = await hitsByUpload(query);
    const rows = await query(`SELECT id, ${COUNT_COLUMNS} FROM log_upload`);
    return ids.map((id) => ({ counts: countsOf(rows.find((r) => Number(r.id) === id)!), hits: hits.get(id) ?? [] }));
  } finally {
    await t.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const began = performance.now();
  const log = options.log ?? (() => undefined);
  const r = rng(options.seed ?? 20240607);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const nFiles = options.files ?? 4;
  const nDevices = options.devices ?? Math.ceil((options.cycles * 3) / nFiles) + 2;
  const leaseMs = options.leaseMs ?? 1_000;

  // Small captures of different sizes (about 150 KB to 700 KB: one to three of the worker's 256 KB chunks).
  const captures = Array.from({ length: nFiles }, (_, i) => generateCapture(1000 + i, 150 + Math.floor((i * 650) / Math.max(1, nFiles - 1)), 6));
  const bad = [...new Set(captures.flatMap((c) => c.badAddresses))];
  const devices = Array.from({ length: nDevices }, (_, i) => ({ nickname: `d${i}`, ip: `8.8.${1 + (i >> 8)}.${i & 255}` }));
  // Every (device, file) pair once, in a seeded order; a pair whose answer is lost goes back in the queue.
  const pending = devices.flatMap((_, d) => captures.map((_c, f) => ({ d, f })));
  for (let i = pending.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [pending[i], pending[j]] = [pending[j], pending[i]];
  }

  const db = await createChildDatabase(options.driver);
  const env = { ...db.env, WORKER_LEASE_MS: String(leaseMs), WORKER_POLL_MS: '50', RATE_LIMIT_UPLOADS_PER_MINUTE: '0' };
  const acked = new Map<number, number>(); // upload id -> capture index
  const interrupted = new Set<number>();
  const result = { attempts: 0, duplicatesAcknowledged: 0, cut: 0, killsByTimer: 0, killsMidJob: 0, recoveryMs: [] as number[], startMs: [] as number[] };
  let key = '';
  let child: ChildServer | null = null;
  let killedAt = 0;
  let leftByLastKill = new Set<number>();
  const unfinished = async (): Promise<Row[]> => db.query(`SELECT id, attempts FROM log_upload WHERE status <> 'COMPLETED'`);

  try {
    let cycle = 1;
    const more = () => cycle <= options.cycles || (acked.size < (options.minAcknowledged ?? 0) && cycle <= 2 * options.cycles && pending.length > 0);
    for (; more(); cycle++) {
      // A job killed again and again would be given up after 5 attempts (by design): spare it this cycle.
      const open = await unfinished().catch(() => [] as Row[]);
      const gentle = open.some((row) => Number(row.attempts) >= 3);
      const crashAt = !gentle && r() < 0.4 ? int(1, 700_000) : 0;
      const spawnedAt = performance.now();
      child = await startChild({ ...env, ...(crashAt ? { CRASH_AT_BYTES: String(crashAt) } : {}) });
      result.startMs.push(performance.now() - spawnedAt);
      const proc = child;
      if (cycle === 1) {
        key = child.secret!;
        await seedAccount(child.url, key, bad, devices);
      }
      let dead = false;
      void proc.exited.then(() => (dead = true));

      // Recovery: what the last kill left unfinished is taken again once its lease expires.
      const stillOpen = async () => (await unfinished()).some((row) => leftByLastKill.has(Number(row.id)));
      if (leftByLastKill.size > 0) {
        while (!dead && (await stillOpen())) await sleep(20);
        if (!dead) result.recoveryMs.push(performance.now() - killedAt);
      }

      // Uploads, and a kill at a random moment among them (unless CRASH_AT_BYTES came first).
      const killAfter = int(0, 1_500);
      let byTimer = false;
      const timer = setTimeout(() => {
        if (!dead) {
          byTimer = true;
          proc.proc.kill('SIGKILL');
        }
      }, killAfter);
      const uploadsThisCycle = int(1, 4);
      for (let u = 0; u < uploadsThisCycle && !dead && pending.length > 0; u++) {
        const pair = pending.shift()!;
        result.attempts++;
        try {
          const answer = await uploadHttp(proc.url, key, devices[pair.d].nickname, captures[pair.f].text, `c${pair.f}.txt`);
          if (answer.userErrors.length) throw new Error(`refused: ${JSON.stringify(answer.userErrors)}`);
          const id = idOfType(answer.logUpload.id, 'LogUpload');
          if (id == null) throw new Error(`bad id ${answer.logUpload.id}`);
          if (answer.duplicate) result.duplicatesAcknowledged++;
          acked.set(id, pair.f);
        } catch (err) {
          if (!dead && !/fetch failed|terminated|ECONNRESET|socket/i.test(String((err as Error).message ?? err))) throw err;
          result.cut++;
          pending.push(pair);
        }
        await sleep(int(0, 300));
      }
      const exit = await proc.exited;
      killedAt = performance.now();
      clearTimeout(timer);
      if (exit.signal !== 'SIGKILL') throw new Error(`cycle ${cycle}: the server exited ${JSON.stringify(exit)}`);
      // The timer, or CRASH_AT_BYTES in the middle of a job.
      if (byTimer) result.killsByTimer++;
      else result.killsMidJob++;
      const open2 = await unfinished();
      leftByLastKill = new Set(open2.map((row) => Number(row.id)).filter((id) => acked.has(id)));
      for (const id of leftByLastKill) interrupted.add(id);
      log(
        `cycle ${cycle}: ${byTimer ? `killed after ${killAfter} ms` : `died at CRASH_AT_BYTES=${crashAt}`}; acknowledged ${acked.size}, unfinished ${open2.length}, to send ${pending.length}`,
      );
    }

    // A last, clean run: everything still queued is processed.
    child = await startChild(env);
    for (let i = 0; (await unfinished()).length > 0; i++) {
      if (i > 3_000) throw new Error(`not recovered: ${JSON.stringify(await unfinished())}`);
      await sleep(20);
    }
    if (leftByLastKill.size > 0) result.recoveryMs.push(performance.now() - killedAt);
    child.proc.kill('SIGTERM');
    await child.exited;

    const rows = await db.query(`SELECT id, device_id, md5, ${COUNT_COLUMNS} FROM log_upload`);
    const hits = await hitsByUpload((sql, params) => db.query(sql, params));
    const reference = await referenceRun(options.driver, captures, bad);
    const pairs = new Map<string, number>();
    for (const row of rows) pairs.set(`${row.device_id}:${row.md5}`, (pairs.get(`${row.device_id}:${row.md5}`) ?? 0) + 1);
    let duplicateHitRows = 0;
    for (const list of hits.values()) duplicateHitRows += list.length - new Set(list).size;
    const final = [...acked.entries()].map(([id, capture]) => {
      const row = rows.find((x) => Number(x.id) === id);
      return { id, capture, counts: row ? countsOf(row) : ({ status: 'MISSING' } as UploadCounts), hits: hits.get(id) ?? [] };
    });
    return {
      cycles: cycle - 1,
      ...result,
      acknowledged: acked.size,
      interrupted: interrupted.size,
      recovered: [...interrupted].filter((id) => final.find((f) => f.id === id)?.counts.status === 'COMPLETED').length,
      final,
      reference,
      duplicateUploadRows: [...pairs.values()].reduce((s, n) => s + n - 1, 0),
      duplicateHitRows,
      rowsNotCompleted: rows.filter((x) => x.status !== 'COMPLETED').length,
      elapsedMs: performance.now() - began,
    };
  } finally {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    await db.drop();
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
