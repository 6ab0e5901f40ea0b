// Domain matcher benchmark: build time, retained memory and lookup rate of DomainIndex on 1M generated domains
// (2-4 labels, real TLDs, 3 lists with ALLOW), with the naive baseline in the same run: a Set of every entry name,
// looked up by slicing the query into each of its suffixes (`a.b.c`, `b.c`, `c`) and asking the Set. Also the
// nine corpus feeds when ../shared/corpus/domains is there. Prints figures only; tests assert behaviour.
//
//   node --expose-gc -r @swc-node/register bench/domain-matcher.bench.ts [--entries 1000000] [--lookups 2000000]
//
// Without --expose-gc memory figures are reported as unavailable.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { DomainEntryInput, DomainIndex, DomainIndexBuilder, NO_DOMAIN_MATCH } from '../src/modules/ioc/matching/domain-index';
import { IocListInfo } from '../src/modules/ioc/matching/ioc-index';
import { detectDomainFeedFormat, DomainFeedReader } from '../src/modules/ioc/feed/domain-feed';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const ENTRIES = arg('entries', 1_000_000);
const LOOKUPS = arg('lookups', 2_000_000);
const CORPUS = path.resolve(__dirname, '../../shared/corpus/domains');
const LISTS: IocListInfo[] = [
  { id: 1, kind: 'BLOCK', severity: 4, category: 'malware' },
  { id: 2, kind: 'BLOCK', severity: 2, category: 'ads' },
  { id: 3, kind: 'ALLOW', severity: 0, category: 'partners' },
];
const TLDS = ['com', 'net', 'org', 'info', 'xyz', 'top', 'ru', 'cn', 'de', 'io', 'co.uk', 'com.br', 'online', 'site'];
const gc = (globalThis as { gc?: () => void }).gc;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function labelOf(r: () => number): string {
  const len = 3 + Math.floor(r() * 10);
  let s = '';
  for (let i = 0; i < len; i++) s += 'abcdefghijklmnopqrstuvwxyz0123456789-'[Math.floor(r() * (i === 0 || i === len - 1 ? 36 : 37))];
  return s;
}

function generate(n: number, seed: number): DomainEntryInput[] {
  const r = rng(seed);
  const out: DomainEntryInput[] = [];
  for (let i = 0; i < n; i++) {
    const tld = TLDS[Math.floor(r() * TLDS.length)];
    // A fifth of the entries are subdomains of an earlier entry (feeds list parents and children).
    const parent = i > 0 && r() < 0.2 ? out[Math.floor(r() * i)].name : `${labelOf(r)}.${tld}`;
    const name = parent === undefined ? `${labelOf(r)}.${tld}` : i > 0 && r() < 0.2 ? `${labelOf(r)}.${parent}` : parent;
    const x = r();
    out.push({ id: i + 1, listId: x < 0.6 ? 1 : x < 0.97 ? 2 : 3, name });
  }
  return out;
}

/** Queries: half under listed names (1-2 extra labels), half random misses, some upper case with a trailing dot. */
function queries(entries: DomainEntryInput[], n: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let q: string;
    if (r() < 0.5) {
      q = entries[Math.floor(r() * entries.length)].name;
      if (r() < 0.7) q = `${labelOf(r)}.${q}`;
      if (r() < 0.2) q = `www.${q}`;
    } else q = `${labelOf(r)}.${labelOf(r)}.${TLDS[Math.floor(r() * TLDS.length)]}`;
    out.push(q);
  }
  return out;
}

function heap(): number | null {
  if (!gc) return null;
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const mb = (b: number | null) => (b === null ? 'n/a (run with --expose-gc)' : `${(b / 1048576).toFixed(1)} MB`);

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** CPU time of this process (user + system) since `c0`, ms: on a shared machine closer to a quiet run than wall time. */
function cpuMs(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** The naive matcher: a Set of entry names (BLOCK and ALLOW apart), every suffix of the query sliced and asked. */
class NaiveSuffixSet {
  readonly block = new Set<string>();
  readonly allow = new Set<string>();
  constructor(entries: DomainEntryInput[]) {
    for (const e of entries) (e.listId === 3 ? this.allow : this.block).add(e.name);
  }
  /** 1 blocked, 0 not listed or allowed. */
  match(q: string): number {
    let name = q.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    let blocked = false;
    for (let i = 0; i >= 0; i = name.indexOf('.', i) + 1 || -1) {
      const s = name.slice(i);
      if (this.allow.has(s)) return 0;
      if (this.block.has(s)) blocked = true;
      if (i === 0 && name.indexOf('.') < 0) break;
    }
    return blocked ? 1 : 0;
  }
}

/** Direct loops (no callback), best of three passes; a warm-up pass first. */
interface Rate {
  perSec: number;
  perCpuSec: number;
  hits: number;
}

function timeIndex(index: DomainIndex, qs: string[]): Rate {
  let best = Infinity;
  let bestCpu = Infinity;
  let hits = 0;
  for (let pass = 0; pass < 4; pass++) {
    hits = 0;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (let i = 0; i < qs.length; i++) if (index.bestBlockRow(qs[i]) !== NO_DOMAIN_MATCH) hits++;
    if (pass > 0) {
      best = Math.min(best, ms(t0));
      bestCpu = Math.min(bestCpu, cpuMs(c0));
    }
  }
  return { perSec: qs.length / (best / 1000), perCpuSec: qs.length / (bestCpu / 1000), hits };
}

/** bestBlockRows over the whole query array (what the processor does with an upload's questions). */
function timeBatch(index: DomainIndex, qs: string[]): Rate {
  let best = Infinity;
  let bestCpu = Infinity;
  let hits = 0;
  const out = new Int32Array(qs.length);
  for (let pass = 0; pass < 4; pass++) {
    hits = 0;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    index.bestBlockRows(qs, out);
    for (let i = 0; i < out.length; i++) if (out[i] !== NO_DOMAIN_MATCH) hits++;
    if (pass > 0) {
      best = Math.min(best, ms(t0));
      bestCpu = Math.min(bestCpu, cpuMs(c0));
    }
  }
  return { perSec: qs.length / (best / 1000), perCpuSec: qs.length / (bestCpu / 1000), hits };
}

function timeNaive(naive: NaiveSuffixSet, qs: string[]): Rate {
  let best = Infinity;
  let bestCpu = Infinity;
  let hits = 0;
  for (let pass = 0; pass < 4; pass++) {
    hits = 0;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (let i = 0; i < qs.length; i++) hits += naive.match(qs[i]);
    if (pass > 0) {
      best = Math.min(best, ms(t0));
      bestCpu = Math.min(bestCpu, cpuMs(c0));
    }
  }
  return { perSec: qs.length / (best / 1000), perCpuSec: qs.length / (bestCpu / 1000), hits };
}

function main(): void {
  console.log(`node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}; ${ENTRIES} entries, ${LOOKUPS} lookups`);
  const entries = generate(ENTRIES, 7);
  // Flat strings, as the parser hands them over (built by concatenation they would be ropes until first read).
  const qs: string[] = JSON.parse(JSON.stringify(queries(entries, LOOKUPS, 11)));
  const names: string[] = JSON.parse(JSON.stringify(entries.map((e) => e.name)));
  entries.forEach((e, i) => ((e as { name: string }).name = names[i]));

  const before = heap();
  let t0 = process.hrtime.bigint();
  let c0 = process.cpuUsage();
  const b = new DomainIndexBuilder(LISTS, { now: 0 });
  for (const e of entries) b.add(e);
  const index: DomainIndex = b.build();
  const buildMs = ms(t0);
  const buildCpu = cpuMs(c0);
  const after = heap();
  console.log(
    `DomainIndex: build ${buildMs.toFixed(0)} ms (CPU ${buildCpu.toFixed(0)} ms), retained ${mb(after !== null && before !== null ? after - before : null)} (typed arrays ${mb(index.stats.bytes)}), ${index.stats.names} names`,
  );

  const before2 = heap();
  t0 = process.hrtime.bigint();
  c0 = process.cpuUsage();
  const naive = new NaiveSuffixSet(entries);
  const naiveMs = ms(t0);
  const naiveCpu = cpuMs(c0);
  const after2 = heap();
  console.log(
    `naive Set:   build ${naiveMs.toFixed(0)} ms (CPU ${naiveCpu.toFixed(0)} ms), retained ${mb(after2 !== null && before2 !== null ? after2 - before2 : null)}`,
  );

  const fast = timeIndex(index, qs);
  // The mix apart: a listed name costs a read of its slot in the table (tens of MB: a cache miss), an unlisted one
  // mostly only the filter. Real DNS traffic asks far more unlisted names than this bench's half.
  const listed = timeIndex(
    index,
    qs.filter((q) => index.longestSlot(q) >= 0),
  );
  const unlisted = timeIndex(
    index,
    qs.filter((q) => index.longestSlot(q) < 0),
  );
  const batch = timeBatch(index, qs);
  const listedBatch = timeBatch(
    index,
    qs.filter((q) => index.longestSlot(q) >= 0),
  );
  const slow = timeNaive(naive, qs);
  console.log(`  by kind: names under a listed entry ${(listed.perSec / 1e6).toFixed(2)} M/s, names under none ${(unlisted.perSec / 1e6).toFixed(2)} M/s`);
  console.log(
    `lookups: DomainIndex ${(fast.perSec / 1e6).toFixed(2)} M/s (${(fast.perCpuSec / 1e6).toFixed(2)} M per CPU second), ` +
      `naive ${(slow.perSec / 1e6).toFixed(2)} M/s (${(slow.perCpuSec / 1e6).toFixed(2)} M per CPU second), ratio ${(fast.perSec / slow.perSec).toFixed(2)}x`,
  );
  console.log(
    `batched (bestBlockRows, as uploads are matched): ${(batch.perSec / 1e6).toFixed(2)} M/s (${(batch.perCpuSec / 1e6).toFixed(2)} M per CPU second), ` +
      `ratio ${(batch.perSec / slow.perSec).toFixed(2)}x; names under a listed entry ${(listedBatch.perSec / 1e6).toFixed(2)} M/s`,
  );
  console.log(`blocked answers agree: ${fast.hits === slow.hits && batch.hits === slow.hits} (${fast.hits} of ${qs.length} blocked)`);

  if (existsSync(CORPUS)) {
    const all: DomainEntryInput[] = [];
    for (const f of readdirSync(CORPUS).filter((x) => x.endsWith('.txt'))) {
      const lines = readFileSync(path.join(CORPUS, f), 'utf8').split('\n');
      const reader = new DomainFeedReader(detectDomainFeedFormat(lines));
      for (const line of lines) for (const d of reader.record(line)) if (d.status === 'added') all.push({ id: all.length + 1, listId: 1, name: d.domain });
    }
    t0 = process.hrtime.bigint();
    const corpusIndex = new DomainIndexBuilder(LISTS, { now: 0 });
    for (const e of all) corpusIndex.add(e);
    const ci = corpusIndex.build();
    console.log(`corpus feeds: ${all.length} entries, ${ci.stats.names} names, build ${ms(t0).toFixed(0)} ms`);
  }
}

main();
