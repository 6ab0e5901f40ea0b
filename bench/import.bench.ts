// IOC import benchmark: feed files imported into the database through FeedImportService (what
// iocListImport, `pcap-defense ioc import` and scheduled sources run): a first import into an empty list,
// then a REPLACE with a file that differs in 5% of its entries; then the policy's matcher index loaded
// from the database and built (what the worker does before matching). Baselines in the same run: parsing
// the same file without storing it (reader + tally only), and a raw insert of the same rows into the same
// table in the database's fastest plain form (SQLite: one prepared statement in one transaction; MySQL:
// multi-row INSERTs of 1000 rows), no parsing, no dedupe, no diff. Event-loop lag (p99, max) is sampled
// while each import runs. On SQLite the WAL is checkpointed on its own thread, as the server does. Prints figures;
// tests assert behaviour.
//
//   node -r @swc-node/register --expose-gc bench/import.bench.ts [--db sqlite|mysql|both] [--sizes 1000000]
//
// The real ipsum feed (120k) comes from ../shared/corpus; the larger feeds are generated (seeded):
// 80% IPv4 (/32, /24, /16-/31), 20% IPv6 (/48-/128), one entry per line.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { loadConfig } from '../src/config/config';
import { createDataSource, detectFlavor } from '../src/db/data-source';
import { createServices } from '../src/app/services';
import { IocIndexCache } from '../src/modules/ioc/ioc-index.cache';
import { IocCategory, IocListKind, ImportMode } from '../src/modules/ioc/ioc.enums';
import { FeedImportTally } from '../src/modules/ioc/feed/feed-import-tally';
import { readFeedLines } from '../src/modules/ioc/feed/feed-reader';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { sqliteHandle } from '../src/db/sqlite-handle';
import { bulkInsert } from '../src/db/bulk';
import { IOC_COLUMNS, iocRow } from '../src/modules/ioc/ioc.service';
import { DataSource } from 'typeorm';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const DBS = arg('db', 'both') === 'both' ? ['sqlite', 'mysql'] : [arg('db', 'sqlite')];
const SIZES = arg('sizes', '1000000').split(',').filter(Boolean).map(Number);
const MYSQL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/pcd_bench_import';
const IPSUM = path.resolve(__dirname, '../../shared/corpus/feeds/ipsum.txt');
const gc = (globalThis as { gc?: () => void }).gc;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generated feed file of `n` distinct-ish entries (a few repeats count as duplicates, as in real feeds). */
function generateFeed(n: number, file: string): void {
  const r = rng(n);
  const out = fs.createWriteStream(file);
  let buf: string[] = [];
  for (let i = 0; i < n; i++) {
    let line: string;
    if (r() < 0.8) {
      const a = 1 + Math.floor(r() * 222);
      const ip = `${a === 10 || a === 127 ? 11 : a}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`;
      const p = r();
      line = p < 0.7 ? ip : p < 0.9 ? `${ip}/24` : `${ip}/${16 + Math.floor(r() * 16)}`;
    } else {
      const h = () => Math.floor(r() * 65536).toString(16);
      line = `2${Math.floor(r() * 16).toString(16)}${h().padStart(2, '0').slice(0, 2)}:${h()}:${h()}:${h()}::${h()}/${48 + Math.floor(r() * 81)}`;
    }
    buf.push(line);
    if (buf.length === 10_000) {
      out.write(`${buf.join('\n')}\n`);
      buf = [];
    }
  }
  out.write(`${buf.join('\n')}\n`);
  out.end();
  return void 0;
}

async function tallyOnly(file: string): Promise<number> {
  const t0 = performance.now();
  const tally = new FeedImportTally();
  for await (const line of readFeedLines(fs.createReadStream(file, { highWaterMark: 256 * 1024 }))) tally.record(line);
  return performance.now() - t0;
}

/** The same feed with every 20th line swapped for a new address: a REPLACE that changes 5%. */
function variantOf(file: string, out: string): void {
  const r = rng(7);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i += 20) {
    if (lines[i]) lines[i] = `${1 + Math.floor(r() * 222)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`;
  }
  fs.writeFileSync(out, lines.join('\n'));
}

/** Event-loop delay while `run` runs: p99 and max in ms. */
async function withLag<T>(run: () => Promise<T>): Promise<{ value: T; lagP99: number; lagMax: number }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const value = await run();
    return { value, lagP99: Math.round(h.percentile(99) / 1e6), lagMax: Math.round(h.max / 1e6) };
  } finally {
    h.disable();
  }
}

/** Raw baseline: the feed's distinct rows (parsed beforehand, file order) inserted into a list of their own. */
async function rawInsert(ds: DataSource, accountId: number, listId: number, file: string): Promise<{ rows: number; ms: number }> {
  const tally = new FeedImportTally();
  const rows: unknown[][] = [];
  for await (const line of readFeedLines(fs.createReadStream(file, { highWaterMark: 256 * 1024 }))) {
    for (const e of tally.record(line)) rows.push(iocRow(accountId, listId, e.cidr, e.comment?.slice(0, 500) ?? null, null, Date.now()));
  }
  const t0 = performance.now();
  const handle = sqliteHandle(ds);
  if (handle) {
    const st = handle.prepare(`INSERT INTO ioc (${IOC_COLUMNS.join(', ')}) VALUES (${IOC_COLUMNS.map(() => '?').join(', ')})`);
    handle.transaction(() => {
      for (const row of rows) st.run(row);
    })();
  } else {
    await ds.transaction(async (em) => {
      await bulkInsert(em, 'ioc', IOC_COLUMNS, rows);
    });
  }
  return { rows: rows.length, ms: performance.now() - t0 };
}

interface Row {
  db: string;
  feed: string;
  lines: number;
  parseOnlyMs: number;
  rawRowsPerSec: number;
  firstMs: number;
  firstRowsPerSec: number;
  firstLag: string;
  replaceMs: number;
  replaceRowsPerSec: number;
  replaceChanged: string;
  replaceLag: string;
  indexLoadBuildMs: number;
  indexEntries: number;
  heapMB: number | null;
}

async function benchDb(db: string, feeds: Array<{ name: string; file: string; variant: string }>): Promise<Row[]> {
  let dbConfig;
  if (db === 'mysql') {
    const base = new URL(MYSQL);
    const name = base.pathname.slice(1);
    const admin = await createConnection({ uri: `mysql://${base.username || 'root'}@${base.host}/` });
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.query(`CREATE DATABASE \`${name}\``);
    await admin.end();
    dbConfig = await detectFlavor({ type: 'mysql', url: MYSQL, file: undefined });
  } else {
    dbConfig = { type: 'sqlite' as const, file: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-import-')), 'bench.sqlite'), url: undefined };
  }
  const config = { ...loadConfig({ NODE_ENV: 'production' }), database: dbConfig };
  const ds = createDataSource(dbConfig);
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const services = createServices(ds, config);
  // As the server runs: WAL checkpoints on their own thread, not in the COMMIT that crosses 1,000 pages (which made
  // each import's COMMIT copy its whole WAL into the database file on the event loop: 0.3 s of a 1M-row import).
  await services.sqliteCheckpointer?.start();
  const account = await services.accounts.createAccount('bench');
  if (!account.ok) throw new Error('account');
  const rows: Row[] = [];
  const newList = async (name: string) => {
    const list = await services.iocLists.create(account.value.id, { name, kind: IocListKind.BLOCK, severity: 3, category: IocCategory.REPUTATION });
    if (!list.ok) throw new Error('setup');
    return list.value.id;
  };
  const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
  // Each timed phase starts with what the phase before wrote (1M rows: about 300 MB) on disk: SQLite's WAL
  // checkpointed, InnoDB's dirty pages of the table flushed (FLUSH TABLES ... FOR EXPORT), untimed, so that writing
  // them out does not land in the next phase's time.
  const settle = async () => {
    const handle = sqliteHandle(ds);
    if (!handle) {
      const runner = ds.createQueryRunner();
      try {
        await runner.query('FLUSH TABLES `ioc` FOR EXPORT');
        await runner.query('UNLOCK TABLES');
      } finally {
        await runner.release();
      }
      return;
    }
    for (let i = 0; i < 100; i++) {
      const [r] = handle.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      if (!r.busy) return;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error('the WAL could not be checkpointed');
  };
  for (const feed of feeds) {
    const listId = await newList(feed.name);
    const policy = await services.policies.create(account.value.id, { name: `p ${feed.name}` });
    if (!policy.ok) throw new Error('setup');
    await services.policies.attachIocLists(account.value.id, policy.value.id, [listId]);
    const parseOnlyMs = await tallyOnly(feed.file);
    await settle();
    const raw = await rawInsert(ds, account.value.id, await newList(`raw ${feed.name}`), feed.file);
    const importOf = async (file: string, mode: ImportMode) => {
      const t0 = performance.now();
      const run = await withLag(() => services.feedImport.importFile(account.value.id, listId, { path: file, bytes: fs.statSync(file).size }, mode));
      const ms = performance.now() - t0;
      if (!run.value.ok) throw new Error(JSON.stringify(run.value.errors));
      return { ms, result: run.value.value, lag: `${run.lagP99}/${run.lagMax}` };
    };
    await settle();
    const first = await importOf(feed.file, ImportMode.APPEND);
    await settle();
    const replace = await importOf(feed.variant, ImportMode.REPLACE);
    await settle();
    const distinct = first.result.added;
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const cache = new IocIndexCache(ds);
    const t1 = performance.now();
    const built = await cache.forPolicy(policy.value.id);
    const indexLoadBuildMs = performance.now() - t1;
    gc?.();
    const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    rows.push({
      db,
      feed: feed.name,
      lines: first.result.linesRead,
      parseOnlyMs: Math.round(parseOnlyMs),
      rawRowsPerSec: rate(raw.rows, raw.ms),
      firstMs: Math.round(first.ms),
      firstRowsPerSec: rate(distinct, first.ms),
      firstLag: first.lag,
      replaceMs: Math.round(replace.ms),
      replaceRowsPerSec: rate(replace.result.added + replace.result.duplicatesInList, replace.ms),
      replaceChanged: `+${replace.result.added}/-${replace.result.removed}`,
      replaceLag: replace.lag,
      indexLoadBuildMs: Math.round(indexLoadBuildMs),
      indexEntries: built.index.stats.entries,
      heapMB: gc ? Math.round((heapAfter - heapBefore) / 1e6) : null,
    });
    console.error(`  ${db} ${feed.name}: ${JSON.stringify(rows[rows.length - 1])}`);
  }
  await services.sqliteCheckpointer?.close();
  await ds.destroy();
  if (db === 'mysql') {
    const base = new URL(MYSQL);
    const admin = await createConnection({ uri: `mysql://${base.username || 'root'}@${base.host}/` });
    await admin.query(`DROP DATABASE IF EXISTS \`${base.pathname.slice(1)}\``);
    await admin.end();
  } else if (dbConfig.file) fs.rmSync(path.dirname(dbConfig.file), { recursive: true, force: true });
  return rows;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-feeds-'));
  const feeds: Array<{ name: string; file: string; variant: string }> = [];
  const withVariant = (name: string, file: string) => {
    const variant = path.join(dir, `${path.basename(file)}.5pct`);
    variantOf(file, variant);
    feeds.push({ name, file, variant });
  };
  if (fs.existsSync(IPSUM)) withVariant('ipsum (real, 120k)', IPSUM);
  else console.error(`ipsum.txt not found at ${IPSUM}: real-feed row skipped`);
  for (const n of SIZES) {
    const file = path.join(dir, `gen-${n}.txt`);
    generateFeed(n, file);
    await new Promise((r) => setTimeout(r, 500));
    withVariant(`generated ${n / 1e6}M`, file);
  }
  console.error(
    `machine: ${os.cpus().length} cores, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const all: Row[] = [];
  for (const db of DBS) all.push(...(await benchDb(db, feeds)));
  fs.rmSync(dir, { recursive: true, force: true });
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(all));
    return;
  }
  console.log(
    'db      feed                    lines  parse-only   raw rows/s | first import rows/s  ratio  lag p99/max | REPLACE 5%  rows/s  ratio  changed          lag p99/max | index',
  );
  for (const r of all) {
    console.log(
      `${r.db.padEnd(7)} ${r.feed.padEnd(20)} ${String(r.lines).padStart(8)} ${String(r.parseOnlyMs).padStart(7)} ms ${String(r.rawRowsPerSec).padStart(9)} | ` +
        `${String(r.firstMs).padStart(7)} ms ${String(r.firstRowsPerSec).padStart(8)} ${(r.firstRowsPerSec / r.rawRowsPerSec).toFixed(2).padStart(5)}x ${r.firstLag.padStart(8)} ms | ` +
        `${String(r.replaceMs).padStart(7)} ms ${String(r.replaceRowsPerSec).padStart(7)} ${(r.replaceRowsPerSec / r.rawRowsPerSec).toFixed(2).padStart(5)}x ${r.replaceChanged.padEnd(16)} ${r.replaceLag.padStart(8)} ms | ` +
        `${r.indexLoadBuildMs} ms ${r.indexEntries} entries ${r.heapMB == null ? '' : `${r.heapMB} MB`}`,
    );
  }
  console.log(
    'rows/s: distinct entries of the feed / wall time. ratio: to the raw insert of the same rows in the same run. Index: loaded from the database and built, 1 policy.',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
