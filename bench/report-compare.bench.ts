/**
 * Before and after in one run: the same report requests sent, interleaved, to two servers on one seeded database,
 * this checkout's and an earlier commit's (a git worktree of it), and their answers compared.
 *
 *   node -r @swc-node/register bench/report-compare.bench.ts [--ref 749dda8] [--db sqlite|mysql] [--hits 1000000]
 *        [--runs 20] [--reuse] [--mysql-url mysql://root@127.0.0.1:3306]
 *
 * --ref defaults to the last commit before the groupings were declared once (groupings/, memory and SQL executors):
 * the figures say what that rewrite cost or saved on the store's reports. The database is the one
 * bench/report.bench.ts keeps (`--reuse` skips seeding when it is there); the earlier commit's worktree is made under
 * the temp dir (and kept for the next run) with this checkout's node_modules. Both servers are src/main.ts children
 * (bench/lib/child-server.ts), NODE_ENV=production, each holding the account in its report store.
 *
 * Cases: the dashboard, hitReport with every grouping, a drill-down page (1 and 50, 100 hits each) and the CSV export
 * of the 30-day window (rows/s). Each run sends every case to both servers, the order alternating run by run, so a
 * noisy neighbour hits both alike. The first run's answers must be identical (same data, same IDs); a difference is
 * printed with its path. Prints p50/p95 per server and the ratio after/before; asserts nothing.
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { Api, createAdminKey, keptBenchDatabase, pct, startChildServer, ChildServer } from './lib/child-server';
import { DASHBOARD_QUERY, HITS_QUERY, REPORT_QUERY } from './lib/report-queries';
import { argValue } from './lib/args';

const DB = (argValue('db') ?? 'sqlite') as 'sqlite' | 'mysql';
if (DB !== 'sqlite' && DB !== 'mysql') throw new Error(`--db must be sqlite or mysql, not ${DB}`);
const HITS = Number(argValue('hits') ?? 1_000_000);
const RUNS = Number(argValue('runs') ?? 20);
const REF = argValue('ref') ?? '749dda8';
const REUSE = process.argv.includes('--reuse');
const MYSQL_URL = argValue('mysql-url') ?? 'mysql://root@127.0.0.1:3306';
const TARGETS = { dashboard: 150, hitReport: 150, drill1: 30, drill50: 30, exportRowsPerS: 50_000 };

/** The window report.bench.ts seeds: 120 days ending here; reports ask for the last 30. */
const END = Date.UTC(2025, 10, 1);
const FROM = END - 30 * 24 * 3600_000;

const ROOT = path.resolve(__dirname, '..');
const progress = (msg: string) => process.stderr.write(`[report-compare ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** A worktree of `ref` under the temp dir, with this checkout's node_modules. */
function refWorktree(ref: string): { root: string; sha: string } {
  const sha = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  const root = path.join(os.tmpdir(), `pcd-bench-ref-${sha}`);
  if (!fs.existsSync(path.join(root, 'package.json'))) {
    execFileSync('git', ['worktree', 'prune'], { cwd: ROOT });
    execFileSync('git', ['worktree', 'add', '--detach', root, sha], { cwd: ROOT, stdio: 'ignore' });
  }
  const modules = path.join(root, 'node_modules');
  if (!fs.existsSync(modules)) fs.symlinkSync(path.join(ROOT, 'node_modules'), modules);
  return { root, sha };
}

type Case = 'dashboard' | 'hitReport' | 'drill1' | 'drill50' | 'export';
const CASES: Case[] = ['dashboard', 'hitReport', 'drill1', 'drill50', 'export'];

interface Side {
  name: string;
  server: ChildServer;
  api: Api;
  /** The cursor after page 49 of the drill-down. */
  page50After: string;
  ms: Record<Case, number[]>;
  exportRows: number[];
}

const filter = { from: new Date(FROM).toISOString(), to: new Date(END).toISOString() };

async function walkTo50(api: Api, drill: Record<string, unknown>): Promise<string> {
  let after: string | null = null;
  for (let page = 1; page < 50; page++) {
    const o = await api.gql(HITS_QUERY, { filter: drill, after });
    after = o.json?.data?.flowHits?.pageInfo?.endCursor ?? null;
    if (!after) throw new Error(`the drill-down has fewer than 50 pages (ended at ${page})`);
  }
  return after!;
}

/** One case on one side: its time, and the answer (for the first run's comparison). */
async function runCase(side: Side, c: Case, drill: Record<string, unknown>): Promise<unknown> {
  if (c === 'export') {
    const qs = new URLSearchParams({ from: filter.from, to: filter.to });
    const r = await side.api.get(`/export/flow-hits.csv?${qs}`);
    if (r.status !== 200) throw new Error(`${side.name} export: HTTP ${r.status}`);
    let rows = -1; // the header line
    for (let i = r.body.indexOf(10); i >= 0; i = r.body.indexOf(10, i + 1)) rows++;
    side.ms.export.push(r.ms);
    side.exportRows.push(rows);
    return r.body.toString('utf8');
  }
  const [query, variables] =
    c === 'dashboard'
      ? [DASHBOARD_QUERY, filter]
      : c === 'hitReport'
        ? [REPORT_QUERY, { filter }]
        : [HITS_QUERY, { filter: drill, after: c === 'drill50' ? side.page50After : null }];
  const o = await side.api.gql(query, variables);
  if (!o.ok) throw new Error(`${side.name} ${c}: HTTP ${o.status} ${JSON.stringify(o.json?.errors ?? null).slice(0, 300)}`);
  side.ms[c].push(o.ms);
  return o.json!.data;
}

/**
 * Two CSV exports on the columns both have, when one only appends columns to the other's (a newer export adds
 * columns at the end, whose values hold no commas): the longer one's lines lose their last fields.
 */
function sharedColumns(before: string, after: string, notes: string[]): [string, string] {
  const header = (csv: string) => csv.slice(0, csv.indexOf('\n'));
  const [hb, ha] = [header(before), header(after)];
  if (hb === ha) return [before, after];
  const [short, long, longer] = hb.length < ha.length ? [hb, ha, 'after'] : [ha, hb, 'before'];
  if (!long.startsWith(`${short},`)) return [before, after];
  const extra = long.slice(short.length + 1).split(',');
  notes.push(`export: ${longer} adds the columns ${extra.join(', ')}; compared on the columns both have`);
  const cut = (csv: string) =>
    csv
      .split('\n')
      .map((line) => (line ? line.split(',').slice(0, -extra.length).join(',') : line))
      .join('\n');
  return longer === 'after' ? [before, cut(after)] : [cut(before), after];
}

/** The first path at which two JSON values differ, or null. */
function firstDifference(a: unknown, b: unknown, at = '$'): string | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return `${at}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
    if (d) return d;
  }
  return null;
}

async function main(): Promise<void> {
  const databaseUrl = await keptBenchDatabase({ root: ROOT, db: DB, hits: HITS, mysqlUrl: MYSQL_URL, reuse: REUSE });
  const key = createAdminKey(ROOT, databaseUrl);
  const before = refWorktree(REF);
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  progress(`starting ${before.sha} (before) and ${head} (after) on the ${DB} database`);
  const sides: Side[] = [];
  try {
    for (const [name, root] of [
      [`before ${before.sha}`, before.root],
      [`after ${head}`, ROOT],
    ]) {
      const server = await startChildServer({ root, databaseUrl });
      const api = new Api(server.base, key);
      sides.push({ name, server, api, page50After: '', ms: { dashboard: [], hitReport: [], drill1: [], drill50: [], export: [] }, exportRows: [] });
    }
    const devices = (await sides[1].api.gql(`query { devices(first: 10) { edges { node { id nickname } } } }`)).json?.data?.devices.edges ?? [];
    const device = devices.find((e: { node: { nickname: string } }) => e.node.nickname === 'sensor-1')?.node.id;
    if (!device) throw new Error('no device sensor-1 in the seeded database');
    const drill = { ...filter, devices: [device], minSeverity: 3 };
    for (const side of sides) side.page50After = await walkTo50(side.api, drill);

    // Warm-up (not measured), then the answers of the first measured run compared.
    for (const side of sides) for (const c of CASES) await runCase(side, c, drill);
    for (const side of sides) for (const c of CASES) side.ms[c].length = 0;
    sides.forEach((s) => (s.exportRows.length = 0));
    const differences: string[] = [];
    const notes: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      progress(`run ${run + 1}/${RUNS}`);
      const order = run % 2 === 0 ? sides : [...sides].reverse();
      for (const c of CASES) {
        const answers = new Map<Side, unknown>();
        for (const side of order) answers.set(side, await runCase(side, c, drill));
        if (run === 0) {
          const [before, after] =
            c === 'export'
              ? sharedColumns(answers.get(sides[0]) as string, answers.get(sides[1]) as string, notes)
              : [answers.get(sides[0]), answers.get(sides[1])];
          const d = firstDifference(before, after);
          if (d) differences.push(`${c}: ${d.slice(0, 300)}`);
        }
      }
    }

    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(`\nreport-compare: ${DB}, ${HITS.toLocaleString('en')} hits, 30-day window, ${RUNS} interleaved runs`);
    console.log(
      `node ${process.version}, load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}\n`,
    );
    console.log(`${'case'.padEnd(12)} ${sides[0].name.padEnd(26)} ${sides[1].name.padEnd(26)} after/before (p95)   target`);
    for (const c of CASES) {
      if (c === 'export') {
        const rate = (s: Side) => s.exportRows.map((rows, i) => rows / (s.ms.export[i] / 1000));
        const [b, a] = sides.map((s) => ({ p50: pct(rate(s), 50), p5: pct(rate(s), 5) }));
        const cell = (x: { p50: number; p5: number }) => `${Math.round(x.p50).toLocaleString('en')} (p5 ${Math.round(x.p5).toLocaleString('en')}) rows/s`;
        console.log(
          `${'export csv'.padEnd(12)} ${cell(b).padEnd(26)} ${cell(a).padEnd(26)} ${(a.p50 / b.p50).toFixed(2)}x (p50 rate)     >= ${TARGETS.exportRowsPerS.toLocaleString('en')} rows/s`,
        );
        continue;
      }
      const [b, a] = sides.map((s) => ({ p50: pct(s.ms[c], 50), p95: pct(s.ms[c], 95) }));
      const cell = (x: { p50: number; p95: number }) => `p50 ${f(x.p50)} p95 ${f(x.p95)} ms`;
      console.log(`${c.padEnd(12)} ${cell(b).padEnd(26)} ${cell(a).padEnd(26)} ${(a.p95 / b.p95).toFixed(2)}x`.padEnd(90) + `p95 < ${TARGETS[c]} ms`);
    }
    console.log(`\nexport rows: ${sides.map((s) => `${s.name} ${s.exportRows[0]?.toLocaleString('en')}`).join(', ')}`);
    for (const n of notes) console.log(n);
    console.log(differences.length ? `answers DIFFER:\n  ${differences.join('\n  ')}` : 'answers identical on every case (first run)');
  } finally {
    for (const s of sides) await s.server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
