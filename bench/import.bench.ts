// IOC import benchmark: feed files imported into the database through FeedImportService (what
// iocListImport and `pcap-defense ioc import` run), then the policy's matcher index loaded from the
// database and built (what the worker does before matching). Baseline in the same run: parsing the same
// file without storing it (reader + tally only). Prints figures; tests assert behaviour.
//
//   node -r @swc-node/register --expose-gc bench/import.bench.ts [--db sqlite|mysql|both] [--sizes 1000000,5000000]
//
// The real ipsum feed (120k) comes from ../shared/corpus; the 1M and 5M feeds are generated (seeded):
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

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const DBS = arg('db', 'both') === 'both' ? ['sqlite', 'mysql'] : [arg('db', 'sqlite')];
const SIZES = arg('sizes', '1000000,5000000').split(',').filter(Boolean).map(Number);
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

interface Row {
  db: string;
  feed: string;
  lines: number;
  added: number;
  parseOnlyMs: number;
  importMs: number;
  rowsPerSec: number;
  indexLoadBuildMs: number;
  indexEntries: number;
  heapMB: number | null;
}

async function benchDb(db: string, feeds: Array<{ name: string; file: string }>): Promise<Row[]> {
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
  const account = await services.accounts.createAccount('bench');
  if (!account.ok) throw new Error('account');
  const rows: Row[] = [];
  for (const feed of feeds) {
    const list = await services.iocLists.create(account.value.id, { name: feed.name, kind: IocListKind.BLOCK, severity: 3, category: IocCategory.REPUTATION });
    const policy = await services.policies.create(account.value.id, { name: `p ${feed.name}` });
    if (!list.ok || !policy.ok) throw new Error('setup');
    await services.policies.attachIocLists(account.value.id, policy.value.id, [list.value.id]);
    const parseOnlyMs = await tallyOnly(feed.file);
    const t0 = performance.now();
    const result = await services.feedImport.importFile(
      account.value.id,
      list.value.id,
      { path: feed.file, bytes: fs.statSync(feed.file).size },
      ImportMode.APPEND,
    );
    const importMs = performance.now() - t0;
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
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
      lines: result.value.linesRead,
      added: result.value.added,
      parseOnlyMs: Math.round(parseOnlyMs),
      importMs: Math.round(importMs),
      rowsPerSec: Math.round(result.value.added / (importMs / 1000)),
      indexLoadBuildMs: Math.round(indexLoadBuildMs),
      indexEntries: built.index.stats.entries,
      heapMB: gc ? Math.round((heapAfter - heapBefore) / 1e6) : null,
    });
    console.error(`  ${db} ${feed.name}: ${JSON.stringify(rows[rows.length - 1])}`);
  }
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
  const feeds: Array<{ name: string; file: string }> = [];
  if (fs.existsSync(IPSUM)) feeds.push({ name: 'ipsum (real, 120k)', file: IPSUM });
  else console.error(`ipsum.txt not found at ${IPSUM}: real-feed row skipped`);
  for (const n of SIZES) {
    const file = path.join(dir, `gen-${n}.txt`);
    generateFeed(n, file);
    await new Promise((r) => setTimeout(r, 200));
    feeds.push({ name: `generated ${n / 1e6}M`, file });
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
  console.log('db      feed                  lines     added  parse-only  import   rows/s   ratio  index load+build  entries   heap');
  for (const r of all) {
    console.log(
      `${r.db.padEnd(7)} ${r.feed.padEnd(20)} ${String(r.lines).padStart(8)} ${String(r.added).padStart(9)} ${String(r.parseOnlyMs).padStart(8)} ms ${String(r.importMs).padStart(7)} ms ${String(r.rowsPerSec).padStart(8)} ${(r.importMs / Math.max(1, r.parseOnlyMs)).toFixed(1).padStart(6)}x ${String(r.indexLoadBuildMs).padStart(10)} ms ${String(r.indexEntries).padStart(10)} ${r.heapMB == null ? '   n/a' : `${String(r.heapMB).padStart(4)} MB`}`,
    );
  }
  console.log('ratio = import time / parse-only time of the same file (the cost of storing). Index: loaded from the database and built, 1 policy.');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
