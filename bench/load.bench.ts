/**
 * One server process under report and upload load, beside an idle baseline of the same run.
 *
 *   node -r @swc-node/register bench/load.bench.ts [--db sqlite|mysql] [--hits 1000000] [--seconds 60] [--clients 20]
 *        [--uploaders 2] [--upload-mb 5] [--idle-uploads 10] [--warmup-uploads 3] [--idle-concurrent-seconds 20] [--reuse]
 *        [--distinct-windows] [--cpu-prof DIR] [--mysql-url mysql://root@127.0.0.1:3306]
 *
 * The database is the one bench/report.bench.ts seeds (run here as `--seed-only --keep`; `--reuse` skips that when
 * the kept database is there already: SQLite file in the temp dir, MySQL database pcd_bench_report). The server
 * runs as a child process (src/main.ts, NODE_ENV=production, metrics on), so its event loop is its own.
 *
 * Idle baseline: each report kind alone (each computed: a window of its own), uploads one at a time (--idle-uploads, 10, after --warmup-uploads, 3) before the load and as many after it (the
 * baseline is the median of the round after it: the server is warm then; the round before it ran up to 2x slower),
 * then the --uploaders clients alone for --idle-concurrent-seconds (the like-for-like baseline: under load the uploads
 * also meet each other, which one at a time they never do), /readyz alone. Under load, for --seconds: --clients
 * closed-loop report clients (dashboard, hitReport with all groupings, drill-down flowHits pages walked by cursor,
 * in turn), --uploaders clients uploading --upload-mb tcpdump captures (bench/lib/tcpdump-text.ts) one after the
 * other, and a prober asking /readyz every 100 ms from a thread of its own (readyzProber). Measured: report latency p50/p95/p99 (answered 200), errors
 * and 503 refusals apart, the server's event-loop lag (prom-client's nodejs_eventloop_lag_* from /metrics, its
 * histogram reset by a scrape at the start of each phase), /readyz latency, upload processing time
 * (receivedAt -> finishedAt of the upload, i.e. accepted -> COMPLETED). Prints figures, targets, and ratios to the
 * idle baseline; asserts nothing. `--cpu-prof DIR` writes the server's CPU profile there at its exit. The clients ask
 * the same reports (twenty screens on one account's dashboard: the server shares their results, REPORT_SHARING);
 * `--distinct-windows` gives every request a window of its own, so every report is computed.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { DASHBOARD_QUERY, HITS_QUERY, REPORT_QUERY } from './lib/report-queries';
import { generateTcpdumpText } from './lib/tcpdump-text';
import { Api, createAdminKey, keptBenchDatabase, Outcome, pct, startChildServer } from './lib/child-server';
import { argValue } from './lib/args';
import { loadConfig } from '../src/config/config';

const DB = (argValue('db') ?? 'sqlite') as 'sqlite' | 'mysql';
if (DB !== 'sqlite' && DB !== 'mysql') throw new Error(`--db must be sqlite or mysql, not ${DB}`);
const HITS = Number(argValue('hits') ?? 1_000_000);
const SECONDS = Number(argValue('seconds') ?? 60);
const CLIENTS = Number(argValue('clients') ?? 20);
const UPLOADERS = Number(argValue('uploaders') ?? 2);
const UPLOAD_BYTES = Number(argValue('upload-mb') ?? 5) * 1_000_000;
const REUSE = process.argv.includes('--reuse');
const CPU_PROF = argValue('cpu-prof');
/** Every report client's request asks a window of its own: nothing is shared between requests (see reportRunner). */
const DISTINCT = process.argv.includes('--distinct-windows');
const MYSQL_URL = argValue('mysql-url') ?? 'mysql://root@127.0.0.1:3306';
const IDLE_RUNS = 10;
/** USER_HZ of /proc/<pid>/stat's times (100 on Linux). */
const CLOCK_TICKS = 100;
/** The idle upload baseline: the median of IDLE_UPLOADS uploads after WARMUP_UPLOADS (the parse thread's code compiles over the first few). */
const IDLE_UPLOADS = Number(argValue('idle-uploads') ?? 10);
const WARMUP_UPLOADS = Number(argValue('warmup-uploads') ?? 3);
/** The like-for-like baseline: the --uploaders clients alone (no report clients) for this long, after the load. */
const IDLE_CONCURRENT_SECONDS = Number(argValue('idle-concurrent-seconds') ?? 20);
const TARGETS = { reportP95Ms: 1000, lagP99Ms: 100, readyzP99Ms: 100, uploadRatio: 2 };

/** The window report.bench.ts seeds: 120 days ending here; reports ask for the last 30. */
const END = Date.UTC(2025, 10, 1);
const FROM = END - 30 * 24 * 3600_000;

const ROOT = path.resolve(__dirname, '..');
const progress = (msg: string) => process.stderr.write(`[load.bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * /readyz asked every 100 ms for `ms`, from a worker thread with an event loop of its own, as an orchestrator's
 * probe is a process of its own: asked from this thread, each timing also held the wait behind the report clients'
 * responses being read here (the client's lag, not the server's).
 */
function readyzProber(base: string, ms: number): Promise<{ ready: number[]; readyFailures: number }> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const ready = [];
      let readyFailures = 0;
      const until = performance.now() + workerData.ms;
      while (performance.now() < until) {
        const t0 = performance.now();
        let status = 0;
        try {
          // A probe that hangs counts as failed after 5 s (an orchestrator's probe has a timeout too).
          const res = await fetch(workerData.base + '/readyz', { signal: AbortSignal.timeout(5000) });
          await res.arrayBuffer();
          status = res.status;
        } catch {}
        ready.push(performance.now() - t0);
        if (status !== 200) readyFailures++;
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - t0))));
      }
      parentPort.postMessage({ ready, readyFailures });
    })();`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { base, ms } });
    worker.once('message', (m: { ready: number[]; readyFailures: number }) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

// ---- the database and the server ----------------------------------------------------------------------------

const DEVICES = `query { devices(first: 10) { edges { node { id nickname } } } }`;
type Kind = 'dashboard' | 'hitReport' | 'flowHits';
const KINDS: Kind[] = ['dashboard', 'hitReport', 'flowHits'];

/** Milliseconds taken off the window's end, one more for every request of a runner that asks each report anew. */
let shift = 0;

/**
 * One report request of a kind; flowHits walks the drill-down by cursor (a client's `after` state). With `anew`,
 * each dashboard and hitReport asks a window of its own (its end a few ms earlier than any before), so no request
 * shares another's result (REPORT_SHARING): every one is computed.
 */
function reportRunner(api: Api, device: string, anew: boolean) {
  const window = () => ({ from: new Date(FROM).toISOString(), to: new Date(END - (anew ? ++shift : 0)).toISOString() });
  const drill = { ...window(), devices: [device], minSeverity: 3 };
  let after: string | null = null;
  let pages = 0;
  return async (kind: Kind): Promise<Outcome> => {
    if (kind === 'dashboard') return api.gql(DASHBOARD_QUERY, window());
    if (kind === 'hitReport') return api.gql(REPORT_QUERY, { filter: window() });
    const o = await api.gql(HITS_QUERY, { filter: drill, after });
    const info = o.json?.data?.flowHits?.pageInfo;
    // Up to 20 pages deep, then from the top again.
    after = info?.hasNextPage && ++pages < 20 ? info.endCursor : null;
    if (!after) pages = 0;
    return o;
  };
}

/** Distinct files from one generated capture: a comment line of their own makes each MD5 new (no duplicates). */
function captureFactory(): (n: number) => Buffer {
  const base = generateTcpdumpText({ targetBytes: UPLOAD_BYTES, seed: 4242 });
  return (n) => Buffer.concat([Buffer.from(`# load.bench upload ${n} ${process.pid} ${Date.now()}\n`), base]);
}

// ---- phases -----------------------------------------------------------------------------------------------------

interface Lag {
  p50: number;
  p99: number;
  max: number;
}

async function lagSince(api: Api): Promise<Lag> {
  const m = await api.metrics();
  const s = (k: string) => (m.get(k) ?? NaN) * 1000;
  return { p50: s('nodejs_eventloop_lag_p50_seconds'), p99: s('nodejs_eventloop_lag_p99_seconds'), max: s('nodejs_eventloop_lag_max_seconds') };
}

/** CPU time (user + system) of process `pid` so far, in ms, from /proc (NaN where there is none). */
function processCpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function stats(xs: number[]) {
  return { n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99), max: xs.length ? Math.max(...xs) : NaN };
}

async function main(): Promise<void> {
  const databaseUrl = await keptBenchDatabase({ root: ROOT, db: DB, hits: HITS, mysqlUrl: MYSQL_URL, reuse: REUSE });
  const key = createAdminKey(ROOT, databaseUrl);

  progress('starting the server and waiting for its report store');
  // Each completed upload's run by phase (the upload.completed log line's phasesMs), to say where a slow one waited.
  // With it, the parse thread's time on a core and waiting for one (parseThreadMs, Linux).
  const runPhases: Array<{ durationMs: number; phasesMs: Record<string, number>; parseThreadMs?: { cpu: number; queued: number } }> = [];
  const onLine = (line: string) => {
    if (!line.includes('"upload.completed"')) return;
    const entry = JSON.parse(line) as { durationMs: number; phasesMs?: Record<string, number>; parseThreadMs?: { cpu: number; queued: number } };
    if (entry.phasesMs) runPhases.push({ durationMs: entry.durationMs, phasesMs: entry.phasesMs, parseThreadMs: entry.parseThreadMs });
  };
  const server = await startChildServer({ root: ROOT, databaseUrl, cpuProf: CPU_PROF, onLine });
  const api = new Api(server.base, key);
  try {
    const devices = (await api.gql(DEVICES)).json?.data?.devices.edges.map((e: { node: { id: string; nickname: string } }) => e.node) ?? [];
    const device = devices.find((d: { nickname: string }) => d.nickname === 'sensor-1');
    if (!device) throw new Error('no device sensor-1 in the seeded database');
    const capture = captureFactory();
    let fileNo = 0;
    /** --uploaders clients uploading one file after another until `until`: each upload's processing and run, ms. */
    const uploadersUntil = (until: number, name: string) => {
      const out = { processing: [] as number[], runs: [] as number[], errors: [] as string[] };
      const done = Promise.all(
        Array.from({ length: UPLOADERS }, async (_, u) => {
          while (performance.now() < until) {
            const r = await api.upload(capture(++fileNo), `${name}-${fileNo}.txt`, `sensor-${2 + u}`);
            if (r.ok) {
              out.processing.push(r.processingMs);
              out.runs.push(r.runMs);
            } else out.errors.push(`upload: ${r.error}`);
          }
        }),
      );
      return { out, done };
    };

    // Idle baseline.
    progress('idle baseline');
    // Each idle report is computed (a window of its own): the baseline is the cost of one report alone.
    const runner = reportRunner(api, device.id, true);
    const idleRun = async (k: Kind): Promise<number> => {
      const o = await runner(k);
      if (!o.ok) throw new Error(`idle ${k}: HTTP ${o.status} ${JSON.stringify(o.json?.errors ?? null).slice(0, 300)}`);
      return o.ms;
    };
    for (const k of KINDS) await idleRun(k); // warm-up
    const idle: Record<Kind, number[]> = { dashboard: [], hitReport: [], flowHits: [] };
    for (let i = 0; i < IDLE_RUNS; i++) for (const k of KINDS) idle[k].push(await idleRun(k));
    const idleReady: number[] = [];
    for (let i = 0; i < 50; i++) {
      idleReady.push((await api.readyz()).ms);
      await sleep(20);
    }
    // As the reports: warm-up uploads first (the parse thread starts, its code compiles), then a round of idle ones;
    // another round after the load is the baseline (below).
    const idleRound = async (warmups: number) => {
      const processing: number[] = [];
      const runMs: number[] = [];
      const logged = runPhases.length;
      for (let i = 1 - warmups; i <= IDLE_UPLOADS; i++) {
        const u = await api.upload(capture(++fileNo), `idle-${fileNo}.txt`, 'sensor-2');
        if (!u.ok) throw new Error(`idle upload failed: ${u.error}`);
        if (i > 0) {
          processing.push(u.processingMs);
          runMs.push(u.runMs);
        }
      }
      // The log lines come a moment after the uploads say COMPLETED.
      await sleep(500);
      return { processing, runMs, phases: runPhases.splice(logged).slice(warmups) };
    };
    const before = await idleRound(WARMUP_UPLOADS);
    await lagSince(api); // resets the lag histogram
    await sleep(5_000);
    const idleLag = await lagSince(api);

    // Under load.
    progress(`under load: ${CLIENTS} report clients + ${UPLOADERS} uploaders for ${SECONDS} s`);
    await lagSince(api);
    const until = performance.now() + SECONDS * 1000;
    const cpu0 = { bench: process.cpuUsage(), server: processCpuMs(server.child.pid), at: performance.now() };
    // This process's own event loop (20 clients reading report responses): what it adds to the client-side timings.
    const ownLag = monitorEventLoopDelay({ resolution: 10 });
    ownLag.enable();
    const lat: Record<Kind, number[]> = { dashboard: [], hitReport: [], flowHits: [] };
    const all: number[] = [];
    let refused = 0;
    let errors = 0;
    const errorSamples: string[] = [];
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      const run = reportRunner(api, device.id, DISTINCT);
      for (let i = c; performance.now() < until; i++) {
        const kind = KINDS[i % KINDS.length];
        const o = await run(kind);
        if (o.ok) {
          lat[kind].push(o.ms);
          all.push(o.ms);
        } else if (o.refused) {
          refused++;
          // A well-behaved client honours Retry-After (1 s by default).
          await sleep(1000);
        } else {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(`${o.status} ${JSON.stringify(o.json?.errors ?? null).slice(0, 200)}`);
        }
      }
    });
    const loaded = uploadersUntil(until, 'load');
    const probe = readyzProber(api.base, SECONDS * 1000);
    await Promise.all(clients);
    const { ready, readyFailures } = await probe;
    const benchLag = { p99: ownLag.percentile(99) / 1e6, max: ownLag.max / 1e6 };
    const cpuWall = performance.now() - cpu0.at;
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cores = { bench: (benchCpu.user + benchCpu.system) / 1000 / cpuWall, server: (processCpuMs(server.child.pid) - cpu0.server) / cpuWall };
    ownLag.disable();
    const loadLag = await lagSince(api);
    await loaded.done;
    const uploads = loaded.out.processing;
    const runs = loaded.out.runs;
    const uploadErrors = loaded.out.errors.length;
    for (const e of loaded.out.errors) if (errorSamples.length < 5) errorSamples.push(e);
    const m = await api.metrics();
    await sleep(500);
    const loadPhases = runPhases.splice(0);
    progress('idle again');
    await sleep(2_000);
    const after = await idleRound(0);
    // Like for like: the same uploaders, one file after another each, without the report clients. Under load the
    // uploads also meet each other (one worker, one parse thread: a file accepted while the other's runs waits for
    // it, and one's intake shares the cores with the other's parse), which the one-at-a-time round above never does.
    progress(`idle, ${UPLOADERS} uploaders alone for ${IDLE_CONCURRENT_SECONDS} s`);
    await sleep(1_000);
    const alone = uploadersUntil(performance.now() + IDLE_CONCURRENT_SECONDS * 1000, 'alone');
    await alone.done;
    if (alone.out.errors.length) throw new Error(`idle uploads failed: ${alone.out.errors.slice(0, 3).join('; ')}`);
    // The baseline is the round after the load: the server is warm then (the round before it, right after the
    // start, ran up to 2x slower even after its warm-ups), so the ratio is the stricter one.
    const idleUploads = after.processing;
    const idleRuns = after.runMs;
    const idlePhases = after.phases;
    // How the store's report results were got over the whole run (idle phase included): computed, joined, kept.
    const results = [...m.entries()]
      .filter(([k]) => k.startsWith('pcap_defense_report_results_total'))
      .map(([k, v]) => `${k.replace(/^.*outcome="|"\}$/g, '')} ${v}`);
    // How long report work waited for uploads parsing over the whole run (REPORT_GIVE_WAY_MS), at admission and on the thread.
    const gaveWay = [...m.entries()]
      .filter(([k]) => k.startsWith('pcap_defense_report_give_way_seconds_total'))
      .map(([k, v]) => `${k.replace(/^.*at="|"\}$/g, '')} ${v.toFixed(1)} s`);
    const refusedBy = [...m.entries()]
      .filter(([k]) => k.startsWith('pcap_defense_reports_refused_total'))
      .map(([k, v]) => `${k.replace(/^.*\{|\}$/g, '')}=${v}`);

    // Report.
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
    const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '-');
    console.log(
      `\nload.bench: ${DB}, ${HITS.toLocaleString('en')} hits, ${CLIENTS} report clients + ${UPLOADERS} uploaders of ${(UPLOAD_BYTES / 1e6).toFixed(0)} MB for ${SECONDS} s`,
    );
    // The server inherits this environment: PARSE_THREADS=0 / REPORT_THREADS=0 parse / report on its event loop, for comparison.
    console.log(
      `node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}, PARSE_THREADS=${process.env.PARSE_THREADS || '1 (default)'}, REPORT_THREADS=${process.env.REPORT_THREADS || '1 (default)'}, ` +
        `REPORT_GIVE_WAY_MS=${process.env.REPORT_GIVE_WAY_MS || `${loadConfig(process.env).reportGiveWayMs} (default)`}, ` +
        `REPORT_THREAD_NICE=${process.env.REPORT_THREAD_NICE || `${loadConfig(process.env).reportThreadNice} (default)`}\n`,
    );
    console.log(
      `CPU under load: the server ${cores.server.toFixed(2)} cores, this bench's clients ${cores.bench.toFixed(2)} cores, of ${os.cpus().length}` +
        ' (the clients share the machine: on a server of its own the server would have it all)\n',
    );
    console.log('                        idle p50/p95        load p50 / p95 / p99 / max (n)          p95 vs idle');
    for (const k of KINDS) {
      const i = stats(idle[k]);
      const l = stats(lat[k]);
      console.log(
        `${k.padEnd(22)}  ${f(i.p50).padStart(6)} / ${f(i.p95).padEnd(6)} ms  ${f(l.p50).padStart(6)} / ${f(l.p95)} / ${f(l.p99)} / ${f(l.max)} ms (${l.n})`.padEnd(
          86,
        ) + ratio(l.p95, i.p95),
      );
    }
    const allS = stats(all);
    const idleAll = stats([...idle.dashboard, ...idle.hitReport, ...idle.flowHits]);
    console.log(
      `${'all reports'.padEnd(22)}  ${f(idleAll.p50).padStart(6)} / ${f(idleAll.p95).padEnd(6)} ms  ${f(allS.p50).padStart(6)} / ${f(allS.p95)} / ${f(allS.p99)} / ${f(allS.max)} ms (${allS.n})`.padEnd(
        86,
      ) +
        ratio(allS.p95, idleAll.p95) +
        `   target p95 <= ${TARGETS.reportP95Ms} ms`,
    );
    console.log(
      `report errors: ${errors}; refused 503 (OVERLOADED): ${refused} (${refusedBy.join(', ') || 'none'}); answered ${(allS.n / SECONDS).toFixed(1)} reports/s`,
    );
    console.log(
      `report results (REPORT_SHARING=${process.env.REPORT_SHARING ?? 'true'}, ${DISTINCT ? 'every request a window of its own' : 'the clients ask the same window'}): ${results.join(', ') || 'none shared'}; ` +
        `waited for uploads parsing: ${gaveWay.join(', ') || 'never'}`,
    );
    const ir = stats(idleReady);
    const lr = stats(ready);
    console.log(
      `/readyz                 idle p50 ${f(ir.p50)} p99 ${f(ir.p99)} ms; load p50 ${f(lr.p50)} p95 ${f(lr.p95)} p99 ${f(lr.p99)} max ${f(lr.max)} ms (${lr.n}, not 200: ${readyFailures})   target p99 <= ${TARGETS.readyzP99Ms} ms`,
    );
    console.log(
      `                        (/readyz asked from a thread of its own; this process's own event loop, busy with the report clients, lagged p99 ${f(benchLag.p99)} max ${f(benchLag.max)} ms under load)`,
    );
    console.log(
      `event-loop lag          idle p50 ${f(idleLag.p50)} p99 ${f(idleLag.p99)} max ${f(idleLag.max)} ms; load p50 ${f(loadLag.p50)} p99 ${f(loadLag.p99)} max ${f(loadLag.max)} ms   target p99 <= ${TARGETS.lagP99Ms} ms`,
    );
    const iu = stats(idleUploads);
    const lu = stats(uploads);
    console.log(
      `upload processing       idle after the load ${after.processing.map(f).join(', ')} ms (median ${f(iu.p50)}; before it, median ${f(stats(before.processing).p50)});` +
        ` load p50 ${f(lu.p50)} p95 ${f(lu.p95)} max ${f(lu.max)} ms (${lu.n}, failed ${uploadErrors}) = ${ratio(lu.p50, iu.p50)} idle (p50), ${ratio(lu.p95, iu.p50)} (p95), ${ratio(lu.max, iu.p50)} (max)   target <= ${TARGETS.uploadRatio}x`,
    );
    // One worker runs one job at a time: with two uploaders, a file accepted while the other's runs waits for it.
    // The run (claim -> COMPLETED) is the upload's own processing, which reports must not slow down.
    const iRun = stats(idleRuns);
    const lRun = stats(runs);
    console.log(
      `  of which the run      idle median ${f(iRun.p50)} ms; load p50 ${f(lRun.p50)} p95 ${f(lRun.p95)} max ${f(lRun.max)} ms = ${ratio(lRun.p50, iRun.p50)} idle (p50), ${ratio(lRun.p95, iRun.p50)} (p95), ${ratio(lRun.max, iRun.p50)} (max)`,
    );
    const au = stats(alone.out.processing);
    console.log(
      `  like for like         the same ${UPLOADERS} uploaders without the report clients (${IDLE_CONCURRENT_SECONDS} s): p50 ${f(au.p50)} p95 ${f(au.p95)} max ${f(au.max)} ms (${au.n});` +
        ` under load ${ratio(lu.p50, au.p50)} of that (p50), ${ratio(lu.p95, au.p95)} (p95)   target <= ${TARGETS.uploadRatio}x`,
    );
    // The run by phase: the idle median of each, the loaded median, and the five slowest loaded runs.
    const phaseNames = Object.keys(idlePhases[0]?.phasesMs ?? loadPhases[0]?.phasesMs ?? {});
    const byPhase = (runs: typeof loadPhases, name: string) => stats(runs.map((r) => r.phasesMs[name]));
    console.log(
      `  run by phase (ms)     ${phaseNames.map((n) => `${n} idle p50 ${f(byPhase(idlePhases, n).p50)} / load p50 ${f(byPhase(loadPhases, n).p50)} p95 ${f(byPhase(loadPhases, n).p95)}`).join('; ')}`,
    );
    // The parse thread's part of `parse`: on a core, and runnable but waiting for one (the machine's other work).
    const threadOf = (runs: typeof loadPhases, k: 'cpu' | 'queued') => stats(runs.flatMap((r) => (r.parseThreadMs ? [r.parseThreadMs[k]] : [])));
    if (loadPhases.some((r) => r.parseThreadMs)) {
      const line = (k: 'cpu' | 'queued') =>
        `idle p50 ${f(threadOf(idlePhases, k).p50)} / load p50 ${f(threadOf(loadPhases, k).p50)} p95 ${f(threadOf(loadPhases, k).p95)}`;
      console.log(`  parse thread (ms)     on a core ${line('cpu')}; waiting for a core ${line('queued')}`);
    }
    const threadNote = (r: (typeof loadPhases)[number]) =>
      r.parseThreadMs ? ` (parse thread: on a core ${r.parseThreadMs.cpu}, waiting for one ${r.parseThreadMs.queued})` : '';
    for (const r of [...loadPhases].sort((a, b) => b.durationMs - a.durationMs).slice(0, 5))
      console.log(`    slow run ${r.durationMs} ms: ${phaseNames.map((n) => `${n} ${r.phasesMs[n]}`).join(', ')}${threadNote(r)}`);
    for (const e of errorSamples) console.log(`  sample error: ${e}`);
  } finally {
    await server.stop();
    if (CPU_PROF) progress(`CPU profile written under ${path.resolve(CPU_PROF)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
