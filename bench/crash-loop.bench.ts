/**
 * The crash loop at length: a real server process takes uploads and is SIGKILLed at seeded-random moments
 * (a random delay, or CRASH_AT_BYTES into a job), restarted, again and again; then every acknowledged upload is
 * compared with a clean run of the same file. The same harness as test/integration/security/crash-loop.test.ts.
 *
 *   node -r @swc-node/register bench/crash-loop.bench.ts [--cycles 100] [--db sqlite|mysql|both]
 *        [--mysql-url mysql://root@127.0.0.1:3306] [--seed N] [--lease-ms 1000]
 *
 * Prints figures; asserts nothing. Rule 12's baseline, measured in the same run, is the floor under recovery:
 * a process start (spawn to listening) plus the lease a dead process's job waits out. Progress goes to stderr.
 */
import 'reflect-metadata';
import { percentile, runCrashLoop } from '../test/helpers/crash-loop';
import { Driver } from '../test/helpers/db';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const cycles = Number(arg('cycles', '100'));
  const which = arg('db', 'sqlite');
  const mysqlUrl = arg('mysql-url', process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
  if (which !== 'sqlite') process.env.TEST_MYSQL_URL = mysqlUrl;
  const dbs: Driver[] = which === 'both' ? ['sqlite', 'mysql'] : [which as Driver];
  for (const driver of dbs) {
    const quiet = process.argv.includes('--quiet');
    const leaseMs = Number(arg('lease-ms', '1000'));
    const r = await runCrashLoop({
      driver,
      cycles,
      seed: Number(arg('seed', '20240607')),
      leaseMs,
      log: quiet ? undefined : (l) => process.stderr.write(`[${driver}] ${l}\n`),
    });
    const mismatched = r.final.filter((f) => {
      const want = r.reference[f.capture];
      return JSON.stringify(f.counts) !== JSON.stringify(want.counts) || JSON.stringify(f.hits) !== JSON.stringify(want.hits);
    }).length;
    const lost = r.final.filter((f) => f.counts.status !== 'COMPLETED').length;
    const ms = (v: number) => `${Math.round(v)} ms`;
    const startP50 = percentile(r.startMs, 50);
    const rows: Array<[string, string]> = [
      ['cycles (kill + restart)', String(r.cycles)],
      ['  killed by timer / mid-job (CRASH_AT_BYTES)', `${r.killsByTimer} / ${r.killsMidJob}`],
      ['upload requests sent', String(r.attempts)],
      ['  acknowledged', `${r.acknowledged} (of which answers "duplicate" to a retry: ${r.duplicatesAcknowledged})`],
      ['  cut by a kill, retried later', String(r.cut)],
      ['acknowledged but unfinished at a kill', String(r.interrupted)],
      ['  recovered (COMPLETED afterwards)', String(r.recovered)],
      ['acknowledged uploads lost / not equal to the clean run', `${lost} / ${mismatched}`],
      ['duplicate upload rows / duplicate hit rows / rows left unfinished', `${r.duplicateUploadRows} / ${r.duplicateHitRows} / ${r.rowsNotCompleted}`],
      [
        'time to recovery (kill to all it left COMPLETED) p50 / p95',
        `${ms(percentile(r.recoveryMs, 50))} / ${ms(percentile(r.recoveryMs, 95))} (n=${r.recoveryMs.length})`,
      ],
      ['baseline: process start (spawn to listening) p50 / p95', `${ms(startP50)} / ${ms(percentile(r.startMs, 95))}`],
      ['  recovery p50 / (start p50 + lease)', (percentile(r.recoveryMs, 50) / (startP50 + leaseMs)).toFixed(2)],
      ['wall time', `${(r.elapsedMs / 1000).toFixed(1)} s`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\ncrash loop, ${driver}, WORKER_LEASE_MS=${arg('lease-ms', '1000')}\n`);
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
