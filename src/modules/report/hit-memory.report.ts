import { ResolvedHitFilter } from '../flow-hit/hit-filter';
import { AccountHits, Block } from './hit-memory';

/**
 * The query side of the in-memory store (hit-memory.ts): the hits of an account matching a filter, and the
 * typed-array primitives the memory executor (groupings/memory.executor.ts, threats.memory.ts,
 * timeline.memory.ts) computes every grouping with.
 *
 * A report first copies the hits matching its filter into flat arrays (a "selection", shared by the groupings
 * of one request through the filter object); each grouping is then a loop over those arrays. Distinct counts
 * use mark arrays indexed by interned ids (host x list, device x entry, ...) rather than hash sets wherever
 * the product of the two sizes is small, and a matched entry group carries its list, severity and category,
 * so a hit's row holds only its ids.
 */

/**
 * Hits matching a filter, column-wise: ranges of blocks (views, no copy) or, under row filters, copies. `whole` is
 * the block when the segment is all of it, whose per-unit sums are then read from the block's own (blockSums).
 */
export type Segment = Omit<Block, 'uploadId' | 'minAt' | 'maxAt' | 'protocol' | 'foundBy' | 'foundAt' | 'triage'> & { whole?: Block };

/** The hits matching a filter, and aggregates of them shared by the groupings of a request. */
export interface Selection {
  n: number;
  segments: Segment[];
  memo: Map<string, unknown>;
}

export function memo<T>(sel: Selection, name: string, make: () => T): T {
  if (!sel.memo.has(name)) sel.memo.set(name, make());
  return sel.memo.get(name) as T;
}

/** Largest mark array (bytes) a distinct count uses before it falls back to a hash set. */
export const MAX_MARKS = 32 * 1024 * 1024;

const selections = new WeakMap<ResolvedHitFilter, { data: AccountHits; version: number; sel: Selection }>();

/** The filter's hits, computed once per filter object and data version. */
export function select(data: AccountHits, f: ResolvedHitFilter): Selection {
  const cached = selections.get(f);
  if (cached && cached.data === data && cached.version === data.version) return cached.sel;
  const sel = computeSelection(data, f);
  selections.set(f, { data, version: data.version, sel });
  return sel;
}

function mask<T>(values: T[], keep: (v: T) => boolean): Uint8Array {
  const m = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) m[i] = keep(values[i]) ? 1 : 0;
  return m;
}

function computeSelection(data: AccountHits, f: ResolvedHitFilter): Selection {
  const has = <T>(list: T[] | undefined, v: T) => list === undefined || list.includes(v);
  const groupOk =
    f.severities || f.minSeverity !== undefined || f.listIds || f.categories
      ? mask(
          data.groups.values,
          (g) =>
            has(f.severities, g.severity) &&
            (f.minSeverity === undefined || g.severity >= f.minSeverity) &&
            has(f.listIds, g.listId) &&
            has(f.categories as string[] | undefined, g.category),
        )
      : null;
  const internal = f.internal;
  const hostOk =
    f.deviceIds || internal
      ? mask(data.hosts.values, (h) => has(f.deviceIds, h.deviceId) && (!internal || (h.key >= internal.start && h.key <= internal.end)))
      : null;
  const external = f.external;
  const externalOk = external ? mask(data.externals.values, (e) => e.key >= external.start && e.key <= external.end) : null;
  const directionOk = f.directions ? mask(data.directions.values, (d) => (f.directions as string[]).includes(d)) : null;
  const protocolOk = f.protocols ? mask(data.protocols.values, (p) => (f.protocols as string[]).includes(p)) : null;
  const foundByOk = f.foundBy ? mask(data.foundBys.values, (v) => (f.foundBy as string[]).includes(v)) : null;
  const foundSince = f.foundSince;
  const triageOk = f.triageStatuses ? mask(data.triages.values, (v) => (f.triageStatuses as string[]).includes(v)) : null;
  const ports = f.ports ? new Set(f.ports) : null;
  const excluded = f.excludePorts?.length ? new Set(f.excludePorts) : null;

  const rowFilter = groupOk || hostOk || externalOk || directionOk || protocolOk || ports || excluded || foundByOk || foundSince !== undefined || triageOk;
  const { from, to } = f;
  const ranges: Array<{ b: Block; lo: number; hi: number }> = [];
  let capacity = 0;
  for (const b of data.blocks()) {
    if (b.maxAt < from || b.minAt >= to) continue;
    // A block's hits are in capture order (hit-memory.ts): the window is one range of it.
    const lo = b.minAt >= from ? 0 : lowerBound(b.at, from);
    const hi = b.maxAt < to ? b.n : lowerBound(b.at, to);
    if (lo < hi) ranges.push({ b, lo, hi });
    capacity += hi - lo;
  }
  if (!rowFilter) {
    // Views of the blocks' columns: a report over a plain time window copies nothing.
    const segments = ranges.map(({ b, lo, hi }) => ({
      whole: lo === 0 && hi === b.n ? b : undefined,
      n: hi - lo,
      at: b.at.subarray(lo, hi),
      last: b.last.subarray(lo, hi),
      packets: b.packets.subarray(lo, hi),
      bytes: b.bytes.subarray(lo, hi),
      host: b.host.subarray(lo, hi),
      external: b.external.subarray(lo, hi),
      group: b.group.subarray(lo, hi),
      port: b.port.subarray(lo, hi),
      direction: b.direction.subarray(lo, hi),
    }));
    return { n: capacity, segments, memo: new Map() };
  }
  const sel: Segment = {
    n: 0,
    at: new Float64Array(capacity),
    last: new Float64Array(capacity),
    packets: new Float64Array(capacity),
    bytes: new Float64Array(capacity),
    host: new Int32Array(capacity),
    external: new Int32Array(capacity),
    group: new Int32Array(capacity),
    port: new Int32Array(capacity),
    direction: new Uint8Array(capacity),
  };
  let n = 0;
  for (const { b, lo, hi } of ranges) {
    const bGroup = b.group;
    const bHost = b.host;
    const bExternal = b.external;
    const bDirection = b.direction;
    const bProtocol = b.protocol;
    const bPort = b.port;
    for (let i = lo; i < hi; i++) {
      if (groupOk && !groupOk[bGroup[i]]) continue;
      if (hostOk && !hostOk[bHost[i]]) continue;
      if (externalOk && !externalOk[bExternal[i]]) continue;
      if (directionOk && !directionOk[bDirection[i]]) continue;
      if (protocolOk && !protocolOk[bProtocol[i]]) continue;
      if (foundByOk && !foundByOk[b.foundBy[i]]) continue;
      if (foundSince !== undefined && b.foundAt[i] < foundSince) continue;
      if (triageOk && !triageOk[b.triage[i]]) continue;
      const port = bPort[i];
      // A hit without a destination port matches no port list, and has none to exclude.
      if (ports && (port < 0 || !ports.has(port))) continue;
      if (excluded && port >= 0 && excluded.has(port)) continue;
      sel.at[n] = b.at[i];
      sel.last[n] = b.last[i];
      sel.packets[n] = b.packets[i];
      sel.bytes[n] = b.bytes[i];
      sel.host[n] = bHost[i];
      sel.external[n] = bExternal[i];
      sel.group[n] = bGroup[i];
      sel.port[n] = port;
      sel.direction[n] = bDirection[i];
      n++;
    }
  }
  const trimmed: Segment = {
    n,
    at: sel.at.subarray(0, n),
    last: sel.last.subarray(0, n),
    packets: sel.packets.subarray(0, n),
    bytes: sel.bytes.subarray(0, n),
    host: sel.host.subarray(0, n),
    external: sel.external.subarray(0, n),
    group: sel.group.subarray(0, n),
    port: sel.port.subarray(0, n),
    direction: sel.direction.subarray(0, n),
  };
  return { n, segments: [trimmed], memo: new Map() };
}

/** First index of the ascending `a` whose value is >= `v`. */
function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Scratch arrays for per-hit temporaries, grown as needed and reused by every report of the process: a 30-day
 * report's temporaries are a few MB, and allocating them afresh each time made V8 run a full collection every few
 * reports (its trigger counts the memory of typed arrays), a pause that landed on whatever request came next.
 * Only for values used synchronously, before the function that filled them returns (the groupings never await).
 */
const scratchInt = [new Int32Array(0), new Int32Array(0), new Int32Array(0), new Int32Array(0)];

export function scratchInt32(slot: 0 | 1 | 2 | 3, n: number): Int32Array {
  if (scratchInt[slot].length < n) scratchInt[slot] = new Int32Array(Math.max(n, Math.ceil(scratchInt[slot].length * 1.5)));
  return scratchInt[slot].subarray(0, n);
}

/**
 * Counts of non-negative integer keys (below 2^53), open addressing with linear probing. Starts at `initial`
 * slots (rounded up to a power of two) and doubles at half full, so a few thousand keys stay in a few cache-sized
 * arrays however many hits are counted.
 */
export class PairTable {
  keys: Float64Array;
  counts: Int32Array;
  size = 0;
  private mask: number;

  constructor(initial: number) {
    let capacity = 16;
    while (capacity < initial) capacity *= 2;
    this.keys = new Float64Array(capacity).fill(-1);
    this.counts = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  /** Counts one more of `key`; returns its slot (valid until the next count of a new key). */
  count(key: number): number {
    // key | 0 is the key modulo 2^32 (as a signed int): every bit below 32, for keys past 2^31 too.
    let slot = Math.imul(key | 0, 0x9e3779b1) & this.mask;
    for (;;) {
      const k = this.keys[slot];
      if (k === key) {
        this.counts[slot]++;
        return slot;
      }
      if (k === -1) {
        this.keys[slot] = key;
        this.counts[slot] = 1;
        if (++this.size * 2 > this.keys.length) return this.grow(key);
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Doubles the table; returns the new slot of `key`. */
  private grow(key: number): number {
    const { keys, counts } = this;
    this.keys = new Float64Array(keys.length * 2).fill(-1);
    this.counts = new Int32Array(keys.length * 2);
    this.mask = this.keys.length - 1;
    let at = -1;
    for (let s = 0; s < keys.length; s++) {
      const k = keys[s];
      if (k === -1) continue;
      let slot = Math.imul(k | 0, 0x9e3779b1) & this.mask;
      while (this.keys[slot] !== -1) slot = (slot + 1) & this.mask;
      this.keys[slot] = k;
      this.counts[slot] = counts[s];
      if (k === key) at = slot;
    }
    return at;
  }

  used(): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.keys.length; s++) if (this.keys[s] !== -1) out.push(s);
    return out;
  }
}

/** Counts distinct (key, item) pairs per key, with a mark array when keys x items is small enough. */
export class PairCounter {
  private readonly marks: Uint8Array | null;
  private readonly seen: Set<number> | null;
  readonly counts: Int32Array;

  constructor(
    keys: number,
    private readonly items: number,
  ) {
    this.counts = new Int32Array(keys);
    const size = keys * items;
    this.marks = size <= MAX_MARKS ? new Uint8Array(size) : null;
    this.seen = this.marks ? null : new Set();
  }

  add(key: number, item: number): void {
    const idx = key * this.items + item;
    if (this.marks) {
      if (this.marks[idx] === 0) {
        this.marks[idx] = 1;
        this.counts[key]++;
      }
    } else if (!this.seen!.has(idx)) {
      this.seen!.add(idx);
      this.counts[key]++;
    }
  }
}

const denseCache = new WeakMap<object, Map<string, { size: number; dense: { of: Int32Array; values: unknown[] } }>>();

/**
 * Dense indexes of a per-group value (list id, category, ...): group -> index, and index -> value. Kept per
 * account until a new entry group appears (groups are only ever added).
 */
export function denseBy<T>(data: AccountHits, name: string, value: (g: AccountHits['groups']['values'][number]) => T): { of: Int32Array; values: T[] } {
  // By the interned groups, which a request's snapshot shares with the live store (they only ever grow).
  let byName = denseCache.get(data.groups);
  if (!byName) denseCache.set(data.groups, (byName = new Map()));
  const hit = byName.get(name);
  if (hit && hit.size === data.groups.size) return hit.dense as { of: Int32Array; values: T[] };
  const dense = computeDense(data, value);
  byName.set(name, { size: data.groups.size, dense });
  return dense;
}

function computeDense<T>(data: AccountHits, value: (g: AccountHits['groups']['values'][number]) => T): { of: Int32Array; values: T[] } {
  const groups = data.groups.values;
  const of = new Int32Array(groups.length);
  const index = new Map<T, number>();
  const values: T[] = [];
  for (let g = 0; g < groups.length; g++) {
    const v = value(groups[g]);
    let i = index.get(v);
    if (i === undefined) {
      i = values.length;
      index.set(v, i);
      values.push(v);
    }
    of[g] = i;
  }
  return { of, values };
}

export const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Each selected row's key (in scratch slot 1): `of` applied to its entry group (or, with `viaHost`, to its host). */
export function rowKeys(sel: Selection, of: Int32Array, viaHost: boolean): Int32Array {
  const out = scratchInt32(1, sel.n);
  let j = 0;
  for (const seg of sel.segments) {
    const ids = viaHost ? seg.host : seg.group;
    for (let i = 0; i < seg.n; i++) out[j + i] = of[ids[i]];
    j += seg.n;
  }
  return out;
}

/** Each selected row's direction code (data.directions), in scratch slot 1. */
export function rowDirections(sel: Selection): Int32Array {
  const out = scratchInt32(1, sel.n);
  let j = 0;
  for (const seg of sel.segments) {
    out.set(seg.direction, j);
    j += seg.n;
  }
  return out;
}

export interface Sums {
  hits: Float64Array;
  packets: Float64Array;
  bytes: Float64Array;
  first: Float64Array;
  last: Float64Array;
}

function sums(keys: number): Sums {
  return {
    hits: new Float64Array(keys),
    packets: new Float64Array(keys),
    bytes: new Float64Array(keys),
    first: new Float64Array(keys).fill(Infinity),
    last: new Float64Array(keys).fill(-Infinity),
  };
}

/** A column of ids that sums are kept by: the hit's entry group, its internal host, or its direction. */
export type SumUnit = 'group' | 'host' | 'direction';

/** The rows of `seg` added into `out` by the unit ids in `ids` (hits, packets, bytes, first and last). */
function addRows(out: Sums, seg: Segment, ids: ArrayLike<number>): void {
  const { hits, packets, bytes, first, last } = out;
  const { at, last: lastAt, packets: rowPackets, bytes: rowBytes } = seg;
  for (let i = 0; i < seg.n; i++) {
    const k = ids[i];
    hits[k]++;
    packets[k] += rowPackets[i];
    bytes[k] += rowBytes[i];
    if (at[i] < first[k]) first[k] = at[i];
    if (lastAt[i] > last[k]) last[k] = lastAt[i];
  }
}

/** A block's sums per unit it has hits of: the units' ids ascending and their sums (sparse). */
interface BlockSums {
  units: Int32Array;
  sums: Sums;
}

/** Blocks never change (hit-memory.ts), nor do the ids in them: their sums are computed once, when first asked. */
const blockSumsCache = new WeakMap<Block, Partial<Record<SumUnit, BlockSums>>>();

function blockSums(b: Block, unit: SumUnit): BlockSums {
  let cached = blockSumsCache.get(b);
  if (!cached) blockSumsCache.set(b, (cached = {}));
  const known = cached[unit];
  if (known) return known;
  const ids = b[unit];
  let max = -1;
  for (let i = 0; i < b.n; i++) if (ids[i] > max) max = ids[i];
  const dense = sums(max + 1);
  addRows(dense, b, ids);
  let count = 0;
  for (let u = 0; u <= max; u++) if (dense.hits[u] > 0) count++;
  const units = new Int32Array(count);
  const out = sums(count);
  for (let u = 0, p = 0; u <= max; u++) {
    if (dense.hits[u] === 0) continue;
    units[p] = u;
    out.hits[p] = dense.hits[u];
    out.packets[p] = dense.packets[u];
    out.bytes[p] = dense.bytes[u];
    out.first[p] = dense.first[u];
    out.last[p] = dense.last[u];
    p++;
  }
  return (cached[unit] = { units, sums: out });
}

/**
 * hits, packets, bytes, first and last per unit id (`size` of them) over the selection: a segment that is a whole
 * block adds the block's own sums (one per unit it has hits of, fewer than its rows), any other adds its rows.
 */
export function sumsBy(sel: Selection, size: number, unit: SumUnit): Sums {
  const out = sums(size);
  const { hits, packets, bytes, first, last } = out;
  for (const seg of sel.segments) {
    if (!seg.whole) {
      addRows(out, seg, seg[unit]);
      continue;
    }
    const { units, sums: s } = blockSums(seg.whole, unit);
    for (let p = 0; p < units.length; p++) {
      const k = units[p];
      hits[k] += s.hits[p];
      packets[k] += s.packets[p];
      bytes[k] += s.bytes[p];
      if (s.first[p] < first[k]) first[k] = s.first[p];
      if (s.last[p] > last[k]) last[k] = s.last[p];
    }
  }
  return out;
}

/**
 * Sums per entry group or per internal host, shared by the groupings of a request: every key that is an
 * attribute of the group (list, category, severity, entry) or of the host (device) sums these.
 */
export function unitSums(data: AccountHits, sel: Selection, unit: 'group' | 'host'): Sums {
  return memo(sel, unit, () => sumsBy(sel, unit === 'group' ? data.groups.size : data.hosts.size, unit));
}

/** The distinct (entry group, host) pairs of a selection's hits, as two parallel lists. */
export interface UnitPairs {
  n: number;
  group: Int32Array;
  host: Int32Array;
}

/**
 * The selection's distinct (entry group, host) pairs, from one pass shared by the groupings of a request. A count
 * of distinct hosts per key of the entry (list, category, severity, entry) or of distinct entries per key of the
 * host (device, host) is the same over these pairs as over the hits, and there are several times fewer of them.
 */
export function unitPairs(data: AccountHits, sel: Selection): UnitPairs {
  return memo(sel, 'pairs', () => {
    const hosts = data.hosts.size;
    const size = data.groups.size * hosts;
    // A bit per possible pair (a few hundred KB at thousands of entries and hosts), else a set.
    const bits = size <= MAX_MARKS * 8 ? new Int32Array((size >>> 5) + 1) : null;
    const seen = bits ? null : new Set<number>();
    const group = new Int32Array(sel.n);
    const host = new Int32Array(sel.n);
    let n = 0;
    for (const seg of sel.segments) {
      const g = seg.group;
      const h = seg.host;
      for (let i = 0; i < seg.n; i++) {
        const idx = g[i] * hosts + h[i];
        if (bits) {
          const word = idx >>> 5;
          const bit = 1 << (idx & 31);
          if ((bits[word] & bit) !== 0) continue;
          bits[word] |= bit;
        } else {
          if (seen!.has(idx)) continue;
          seen!.add(idx);
        }
        group[n] = g[i];
        host[n] = h[i];
        n++;
      }
    }
    return { n, group: group.subarray(0, n), host: host.subarray(0, n) };
  });
}

/** Unit sums added up per dense key of the unit. */
export function sumBy(m: Sums, of: Int32Array, keys: number): Sums {
  const out = sums(keys);
  for (let g = 0; g < of.length; g++) {
    if (m.hits[g] === 0) continue;
    const k = of[g];
    out.hits[k] += m.hits[g];
    out.packets[k] += m.packets[g];
    out.bytes[k] += m.bytes[g];
    if (m.first[g] < out.first[k]) out.first[k] = m.first[g];
    if (m.last[g] > out.last[k]) out.last[k] = m.last[g];
  }
  return out;
}

/**
 * The `first` keys of `keys` in `order`, without sorting them all: the `first`-th largest hit count is found
 * from the counts alone (a numeric sort), and only keys with at least that many hits are ordered. `order` must
 * put more hits first.
 */
export function topBy(keys: number[], hits: (k: number) => number, first: number, order: (a: number, b: number) => number): number[] {
  if (keys.length > first * 4) {
    // The `first` largest counts so far, ascending: a count no larger than the least of them is passed over, so
    // one pass finds the floor without sorting every count (or allocating per key).
    const best = new Float64Array(first).fill(-Infinity);
    for (let i = 0; i < keys.length; i++) {
      const c = hits(keys[i]);
      if (c <= best[0]) continue;
      let j = 1;
      for (; j < first && best[j] < c; j++) best[j - 1] = best[j];
      best[j - 1] = c;
    }
    const floor = best[0];
    keys = keys.filter((k) => hits(k) >= floor);
  }
  return keys.sort(order).slice(0, first);
}
