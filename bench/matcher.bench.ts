// IOC matcher benchmark: build time, retained memory and lookup rate of IocIndex on the real ipsum
// feed and on generated 1M / 5M mixed IPv4+IPv6 sets, with Node's net.BlockList as the baseline in the
// same run. Prints figures only; tests assert behaviour.
//
//   node --expose-gc -r @swc-node/register bench/matcher.bench.ts [--quick]
//
// --quick skips the 5M set. Without --expose-gc memory figures are reported as unavailable.

import { createReadStream, existsSync } from 'node:fs';
import { BlockList } from 'node:net';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { formatIpv4, formatIpv6, ipv6FromWords } from '../src/common/net/ip';
import { FeedImportTally } from '../src/modules/ioc/feed/feed-import-tally';
import { readFeedLines } from '../src/modules/ioc/feed/feed-reader';
import { IocIndex, IocIndexBuilder, IocListInfo, NO_MATCH } from '../src/modules/ioc/matching/ioc-index';

const ROOT = path.resolve(__dirname, '..');
const IPSUM = path.resolve(ROOT, '../shared/corpus/feeds/ipsum.txt');
const LOOKUPS = 1_000_000;
const BLOCKLIST_SUBSET = 10_000;
const BLOCKLIST_CHECKS = 20_000;

const LISTS: IocListInfo[] = [
  { id: 1, kind: 'BLOCK', severity: 4, category: 'attacks' },
  { id: 2, kind: 'BLOCK', severity: 2, category: 'scanners' },
  { id: 3, kind: 'ALLOW', severity: 0, category: 'partners' },
];

const gc = (globalThis as { gc?: () => void }).gc;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Entries as columns, so generating 5M of them does not itself allocate 5M objects. */
interface EntrySet {
  name: string;
  n4: number;
  net4: Uint32Array;
  prefix4: Uint8Array;
  list4: Uint8Array;
  n6: number;
  words6: Uint32Array;
  prefix6: Uint8Array;
}

function generate(name: string, total: number, seed: number): EntrySet {
  const next = rng(seed);
  const n4 = Math.round(total * 0.8);
  const n6 = total - n4;
  const net4 = new Uint32Array(n4);
  const prefix4 = new Uint8Array(n4);
  const list4 = new Uint8Array(n4);
  for (let i = 0; i < n4; i++) {
    const roll = next() % 100;
    // 60% /32, 25% /24, 15% /16../31; 1 in 1000 on the ALLOW list.
    prefix4[i] = roll < 60 ? 32 : roll < 85 ? 24 : 16 + (next() % 16);
    net4[i] = next();
    list4[i] = next() % 1000 === 0 ? 3 : 1 + (next() & 1);
  }
  const words6 = new Uint32Array(n6 * 4);
  const prefix6 = new Uint8Array(n6);
  for (let i = 0; i < n6; i++) {
    prefix6[i] = 48 + (next() % 81); // /48../128
    words6[i * 4] = ((0x2000 << 16) | (next() & 0x1fffffff)) >>> 0; // 2000::/3
    words6[i * 4 + 1] = next();
    words6[i * 4 + 2] = next();
    words6[i * 4 + 3] = next();
  }
  return { name, n4, net4, prefix4, list4, n6, words6, prefix6 };
}

async function loadIpsum(): Promise<EntrySet | null> {
  if (!existsSync(IPSUM)) return null;
  const tally = new FeedImportTally();
  const nets: number[] = [];
  const prefixes: number[] = [];
  for await (const line of readFeedLines(createReadStream(IPSUM))) {
    for (const e of tally.record(line)) {
      if (e.cidr.family === 4) {
        nets.push(e.cidr.network);
        prefixes.push(e.cidr.prefix);
      }
    }
  }
  return {
    name: 'ipsum.txt',
    n4: nets.length,
    net4: Uint32Array.from(nets),
    prefix4: Uint8Array.from(prefixes),
    list4: new Uint8Array(nets.length).fill(1),
    n6: 0,
    words6: new Uint32Array(0),
    prefix6: new Uint8Array(0),
  };
}

function memory(): { heap: number; external: number } | null {
  if (!gc) return null;
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.arrayBuffers };
}

function buildIndex(set: EntrySet, limit = Infinity): IocIndex {
  const n4 = Math.min(set.n4, limit);
  const n6 = Math.min(set.n6, Math.max(0, limit - n4));
  const b = new IocIndexBuilder(LISTS, { now: 0, capacity: n4 + n6 });
  for (let i = 0; i < n4; i++) b.addV4(i + 1, set.list4[i], set.net4[i], set.prefix4[i]);
  for (let i = 0; i < n6; i++) {
    const o = i * 4;
    b.addV6Words(n4 + i + 1, 1 + (i & 1), set.words6[o], set.words6[o + 1], set.words6[o + 2], set.words6[o + 3], set.prefix6[i]);
  }
  return b.build();
}

function randomV4(count: number, seed: number): Uint32Array {
  const next = rng(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = next();
  return out;
}

/** Half uniformly random in 2000::/3, half inside generated entries (so some lookups hit). */
function randomV6(set: EntrySet, count: number, seed: number): Uint32Array {
  const next = rng(seed);
  const out = new Uint32Array(count * 4);
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    if (set.n6 > 0 && i & 1) {
      const e = (next() % set.n6) * 4;
      out[o] = set.words6[e];
      out[o + 1] = set.words6[e + 1];
      out[o + 2] = set.words6[e + 2] ^ (next() & 0xff);
      out[o + 3] = next();
    } else {
      out[o] = ((0x2000 << 16) | (next() & 0x1fffffff)) >>> 0;
      out[o + 1] = next();
      out[o + 2] = next();
      out[o + 3] = next();
    }
  }
  return out;
}

/** Best of 5 rounds (the machine may be shared), in lookups per second; `hits` guards against dead-code elimination. */
function rate(count: number, round: () => number): { perSecond: number; hits: number } {
  let best = Infinity;
  let hits = 0;
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    hits = round();
    best = Math.min(best, performance.now() - t);
  }
  return { perSecond: (count / best) * 1000, hits };
}

function lookupV4(index: IocIndex, ips: Uint32Array): number {
  let hits = 0;
  for (let i = 0; i < ips.length; i++) if (index.bestBlockRowV4(ips[i]) !== NO_MATCH) hits++;
  return hits;
}

function lookupV6(index: IocIndex, ips: Uint32Array): number {
  let hits = 0;
  for (let i = 0; i < ips.length; i += 4) {
    if (index.bestBlockRowV6(ips[i], ips[i + 1], ips[i + 2], ips[i + 3]) !== NO_MATCH) hits++;
  }
  return hits;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mb = (bytes: number) => `${fmt(bytes / 1048576, 1)} MB`;
const rateText = (n: number) => `${fmt(n / 1e6, 2)} M/s`;

function table(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(line(headers));
  console.log(`|${widths.map((w, i) => (i === 0 ? ':' : '-') + '-'.repeat(w) + (i === 0 ? '-' : ':')).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

interface IndexRow {
  cells: string[];
}

function measureSet(set: EntrySet, v4Queries: Uint32Array): IndexRow {
  const v6Queries = randomV6(set, LOOKUPS, 99);
  // Best of 3 builds (the machine may be shared); memory is measured around the last one.
  let buildMs = Infinity;
  for (let r = 0; r < 2; r++) {
    const t = performance.now();
    buildIndex(set);
    buildMs = Math.min(buildMs, performance.now() - t);
  }
  const before = memory();
  const t = performance.now();
  let index: IocIndex | null = buildIndex(set);
  buildMs = Math.min(buildMs, performance.now() - t);
  const after = memory();
  const v4 = rate(LOOKUPS, () => lookupV4(index as IocIndex, v4Queries));
  const v6 = set.n6 > 0 ? rate(LOOKUPS, () => lookupV6(index as IocIndex, v6Queries)) : null;
  const s = index.stats;
  const row = [
    set.name,
    fmt(s.entries),
    `${fmt(s.ipv4Entries)} / ${fmt(s.ipv6Entries)}`,
    `${fmt(buildMs)} ms`,
    before && after ? mb(after.heap - before.heap) : 'n/a',
    before && after ? mb(after.external - before.external) : 'n/a',
    mb(s.bytes),
    fmt(s.ipv4Segments),
    `${rateText(v4.perSecond)} (${fmt((v4.hits / LOOKUPS) * 100, 1)}% hit)`,
    v6 ? `${rateText(v6.perSecond)} (${fmt((v6.hits / LOOKUPS) * 100, 1)}% hit)` : '-',
  ];
  index = null;
  return { cells: row };
}

/** net.BlockList and IocIndex on the same subset: BlockList checks rules one by one, so keep it small. */
function baseline(set: EntrySet, subset: number): string[] {
  // Same IPv4/IPv6 mix as the set.
  const n4 = Math.min(set.n4, Math.round((subset * set.n4) / (set.n4 + set.n6)));
  const n6 = Math.min(set.n6, subset - n4);
  const list = new BlockList();
  let t = performance.now();
  for (let i = 0; i < n4; i++) {
    if (set.prefix4[i] === 32) list.addAddress(formatIpv4(set.net4[i]), 'ipv4');
    else list.addSubnet(formatIpv4(set.net4[i]), set.prefix4[i], 'ipv4');
  }
  for (let i = 0; i < n6; i++) {
    const o = i * 4;
    const text = formatIpv6(ipv6FromWords(set.words6[o], set.words6[o + 1], set.words6[o + 2], set.words6[o + 3]));
    list.addSubnet(text, set.prefix6[i], 'ipv6');
  }
  const blockListBuild = performance.now() - t;

  const queries = Array.from(randomV4(BLOCKLIST_CHECKS, 7), (v) => formatIpv4(v));
  const numeric = randomV4(BLOCKLIST_CHECKS, 7);
  const bl = rate(BLOCKLIST_CHECKS, () => queries.reduce((h, q) => h + (list.check(q, 'ipv4') ? 1 : 0), 0));

  const sub: EntrySet = { ...set, n4, n6 };
  let index = buildIndex(sub, n4 + n6);
  let indexBuild = Infinity;
  for (let r = 0; r < 3; r++) {
    t = performance.now();
    index = buildIndex(sub, n4 + n6);
    indexBuild = Math.min(indexBuild, performance.now() - t);
  }
  const fromText = rate(BLOCKLIST_CHECKS, () => queries.reduce((h, q) => h + (index.bestBlock(q) ? 1 : 0), 0));
  const fromNumber = rate(BLOCKLIST_CHECKS, () => lookupV4(index, numeric));
  if (fromText.hits !== bl.hits) console.log(`  note: hit counts differ (BlockList ${bl.hits}, IocIndex ${fromText.hits}): ALLOW entries suppress`);
  return [
    `${set.name} (first ${fmt(n4 + n6)})`,
    `${fmt(blockListBuild, 1)} ms`,
    rateText(bl.perSecond),
    `${fmt(indexBuild, 1)} ms`,
    rateText(fromText.perSecond),
    rateText(fromNumber.perSecond),
    `${fmt(fromText.perSecond / bl.perSecond)}x / ${fmt(fromNumber.perSecond / bl.perSecond)}x`,
  ];
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  console.log(
    `IocIndex benchmark - node ${process.version}, ${process.arch}, ${cpus().length} CPUs, load average ${loadavg()[0].toFixed(2)}, ` +
      `gc ${gc ? 'exposed' : 'NOT exposed (run with --expose-gc)'}`,
  );
  const v4Queries = randomV4(LOOKUPS, 42);
  const sets: EntrySet[] = [];
  const ipsum = await loadIpsum();
  if (ipsum) sets.push(ipsum);
  else console.log(`ipsum.txt not found at ${IPSUM}: skipped`);
  sets.push(generate('generated 1M', 1_000_000, 1));
  if (!quick) sets.push(generate('generated 5M', 5_000_000, 5));

  console.log(`\nIocIndex: build (best of 3) and ${fmt(LOOKUPS)} random lookups per family (best of 5 rounds)\n`);
  const rows: string[][] = [];
  for (const set of sets) rows.push(measureSet(set, v4Queries).cells);
  table(['set', 'entries', 'IPv4 / IPv6', 'build', 'heap Δ', 'buffers Δ', 'index arrays', 'v4 segments', 'IPv4 lookups', 'IPv6 lookups'], rows);

  console.log(
    `\nBaseline: node:net BlockList on a ${fmt(BLOCKLIST_SUBSET)}-entry subset (it tests rules one by one, so the full ` +
      `sets are far too slow for it), ${fmt(BLOCKLIST_CHECKS)} random IPv4 checks\n`,
  );
  const base: string[][] = [];
  for (const set of sets.slice(0, 2)) base.push(baseline(set, BLOCKLIST_SUBSET));
  table(['subset', 'BlockList build', 'BlockList check', 'IocIndex build', 'IocIndex (text)', 'IocIndex (uint32)', 'ratio text / uint32'], base);
  console.log('\nheap Δ / buffers Δ: retained after build and gc (JS heap / typed-array backing stores). IocIndex (text) parses the');
  console.log('address string and builds a match object per hit; IocIndex (uint32) is the pipeline hot path bestBlockRowV4.');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
