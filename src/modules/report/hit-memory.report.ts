import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { ResolvedHitFilter } from '../flow-hit/hit-filter';
import { AccountHits, Block } from './hit-memory';
import { TimeBucket } from './report.enums';
import { CategoryRow, DeviceRow, DirectionRow, HitTotals, InternalHostRow, IocListRow, IocRow, SeverityRow, ThreatRow, TimelineBucketRow } from './report.types';
import { bucketIndex, localBuckets, SLOT_MS } from './timeline';

/**
 * Every grouping of ReportService computed from an account's hits in memory (hit-memory.ts), with the same
 * results, orders and tie-breaks as the SQL (rollup-equivalence.test.ts compares them on both databases).
 *
 * A report first copies the hits matching its filter into flat arrays (a "selection", shared by the groupings
 * of one request through the filter object); each grouping is then a loop over those arrays. Distinct counts
 * use mark arrays indexed by interned ids (host x list, device x entry, ...) rather than hash sets wherever
 * the product of the two sizes is small, and a matched entry group carries its list, severity and category,
 * so a hit's row holds only its ids.
 */

/** Hits matching a filter, column-wise: ranges of blocks (views, no copy) or, under row filters, copies. */
export type Segment = Omit<Block, 'uploadId' | 'minAt' | 'maxAt' | 'protocol'>;

/** The hits matching a filter, and aggregates of them shared by the groupings of a request. */
export interface Selection {
  n: number;
  segments: Segment[];
  memo: Map<string, unknown>;
}

function memo<T>(sel: Selection, name: string, make: () => T): T {
  if (!sel.memo.has(name)) sel.memo.set(name, make());
  return sel.memo.get(name) as T;
}

/** Largest mark array (bytes) a distinct count uses before it falls back to a hash set. */
const MAX_MARKS = 32 * 1024 * 1024;

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
      ? mask(data.groups.values, (g) => has(f.severities, g.severity) && (f.minSeverity === undefined || g.severity >= f.minSeverity) && has(f.listIds, g.listId) && has(f.categories as string[] | undefined, g.category))
      : null;
  const internal = f.internal;
  const hostOk = f.deviceIds || internal ? mask(data.hosts.values, (h) => has(f.deviceIds, h.deviceId) && (!internal || (h.key >= internal.start && h.key <= internal.end))) : null;
  const external = f.external;
  const externalOk = external ? mask(data.externals.values, (e) => e.key >= external.start && e.key <= external.end) : null;
  const directionOk = f.directions ? mask(data.directions.values, (d) => (f.directions as string[]).includes(d)) : null;
  const protocolOk = f.protocols ? mask(data.protocols.values, (p) => (f.protocols as string[]).includes(p)) : null;
  const ports = f.ports ? new Set(f.ports) : null;
  const excluded = f.excludePorts?.length ? new Set(f.excludePorts) : null;

  const rowFilter = groupOk || hostOk || externalOk || directionOk || protocolOk || ports || excluded;
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
let scratchFloat = new Float64Array(0);

function scratchInt32(slot: 0 | 1 | 2 | 3, n: number): Int32Array {
  if (scratchInt[slot].length < n) scratchInt[slot] = new Int32Array(Math.max(n, Math.ceil(scratchInt[slot].length * 1.5)));
  return scratchInt[slot].subarray(0, n);
}

function scratchFloat64(n: number): Float64Array {
  if (scratchFloat.length < n) scratchFloat = new Float64Array(Math.max(n, Math.ceil(scratchFloat.length * 1.5)));
  return scratchFloat.subarray(0, n);
}

/** Counts of non-negative integer keys (below 2^53), open addressing with linear probing, in scratch arrays. */
class PairTable {
  keys: Float64Array;
  counts: Int32Array;
  size = 0;
  private mask: number;

  constructor(expected: number) {
    let capacity = 1024;
    while (capacity < expected * 2) capacity *= 2;
    this.keys = scratchFloat64(capacity).fill(-1);
    this.counts = scratchInt32(3, capacity);
    this.mask = capacity - 1;
  }

  /** Counts one more of `key`; returns its slot. */
  count(key: number): number {
    let slot = Math.imul((key % 0x100000000) | 0, 0x9e3779b1) & this.mask;
    for (;;) {
      const k = this.keys[slot];
      if (k === key) {
        this.counts[slot]++;
        return slot;
      }
      if (k === -1) {
        this.keys[slot] = key;
        this.counts[slot] = 1;
        this.size++;
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  used(): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.keys.length; s++) if (this.keys[s] !== -1) out.push(s);
    return out;
  }
}

/** Counts distinct (key, item) pairs per key, with a mark array when keys x items is small enough. */
class PairCounter {
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

const denseCache = new WeakMap<AccountHits, Map<string, { size: number; dense: { of: Int32Array; values: unknown[] } }>>();

/**
 * Dense indexes of a per-group value (list id, category, ...): group -> index, and index -> value. Kept per
 * account until a new entry group appears (groups are only ever added).
 */
function denseBy<T>(data: AccountHits, name: string, value: (g: AccountHits['groups']['values'][number]) => T): { of: Int32Array; values: T[] } {
  let byName = denseCache.get(data);
  if (!byName) denseCache.set(data, (byName = new Map()));
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

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Measures {
  hits: number;
  packets: number;
  first: number;
  last: number;
}

/** Each selected row's key: `of` applied to its entry group (or, with `viaHost`, to its host). */
function rowKeys(sel: Selection, of: Int32Array | null, viaHost: boolean, slot: 0 | 1): Int32Array {
  const out = scratchInt32(slot, sel.n);
  let j = 0;
  for (const seg of sel.segments) {
    const ids = viaHost ? seg.host : seg.group;
    if (of === null) out.set(ids, j);
    else for (let i = 0; i < seg.n; i++) out[j + i] = of[ids[i]];
    j += seg.n;
  }
  return out;
}

/** hits, packets, first and last per dense key, `key` giving each selected row's. */
function measureBy(sel: Selection, keys: number, key: Int32Array): { hits: Float64Array; packets: Float64Array; first: Float64Array; last: Float64Array } {
  const hits = new Float64Array(keys);
  const packets = new Float64Array(keys);
  const first = new Float64Array(keys).fill(Infinity);
  const last = new Float64Array(keys).fill(-Infinity);
  let j = 0;
  for (const seg of sel.segments) {
    const { at, last: lastAt, packets: rowPackets } = seg;
    for (let i = 0; i < seg.n; i++, j++) {
      const k = key[j];
      hits[k]++;
      packets[k] += rowPackets[i];
      if (at[i] < first[k]) first[k] = at[i];
      if (lastAt[i] > last[k]) last[k] = lastAt[i];
    }
  }
  return { hits, packets, first, last };
}

/** Measures per entry group, from one pass: every grouping by a property of the entry (list, category, severity) sums these. */
function groupMeasures(data: AccountHits, sel: Selection): ReturnType<typeof measureBy> {
  return memo(sel, 'groups', () => measureBy(sel, data.groups.size, rowKeys(sel, null, false, 0)));
}

/** Measures per internal host, from one pass (byInternalHost, and byDevice by summing a device's hosts). */
function hostMeasures(data: AccountHits, sel: Selection): ReturnType<typeof measureBy> {
  return memo(sel, 'hosts', () => measureBy(sel, data.hosts.size, rowKeys(sel, null, true, 0)));
}

/** Group measures summed per dense key of the group. */
function sumBy(m: ReturnType<typeof measureBy>, of: Int32Array, keys: number): ReturnType<typeof measureBy> {
  const out = { hits: new Float64Array(keys), packets: new Float64Array(keys), first: new Float64Array(keys).fill(Infinity), last: new Float64Array(keys).fill(-Infinity) };
  for (let g = 0; g < of.length; g++) {
    if (m.hits[g] === 0) continue;
    const k = of[g];
    out.hits[k] += m.hits[g];
    out.packets[k] += m.packets[g];
    if (m.first[g] < out.first[k]) out.first[k] = m.first[g];
    if (m.last[g] > out.last[k]) out.last[k] = m.last[g];
  }
  return out;
}

/** Dense list, category and severity of each group, with their distinct hosts, from one pass over the hits. */
function keyHosts(data: AccountHits, sel: Selection) {
  return memo(sel, 'keyHosts', () => {
    const lists = denseBy(data, 'list', (g) => g.listId);
    const cats = denseBy(data, 'category', (g) => g.category);
    const levels = denseBy(data, 'severity', (g) => g.severity);
    const hosts = data.hosts.size;
    const dims: Array<{ of: Int32Array; values: unknown[] }> = [lists, cats, levels];
    const counts: Int32Array[] = dims.map((d) => new Int32Array(d.values.length));
    if (dims.some((d) => d.values.length * hosts > MAX_MARKS)) {
      dims.forEach((d, i) => (counts[i] = hostsByKey(data, sel, rowKeys(sel, d.of, false, 0), d.values.length)));
    } else {
      const marks = dims.map((d) => new Uint8Array(d.values.length * hosts));
      const [lo, co, so] = [lists.of, cats.of, levels.of];
      const [lm, cm, sm] = marks;
      const [lc, cc, sc] = counts;
      for (const seg of sel.segments) {
        const { group, host } = seg;
        for (let i = 0; i < seg.n; i++) {
          const g = group[i];
          const h = host[i];
          let idx = lo[g] * hosts + h;
          if (lm[idx] === 0) {
            lm[idx] = 1;
            lc[lo[g]]++;
          }
          idx = co[g] * hosts + h;
          if (cm[idx] === 0) {
            cm[idx] = 1;
            cc[co[g]]++;
          }
          idx = so[g] * hosts + h;
          if (sm[idx] === 0) {
            sm[idx] = 1;
            sc[so[g]]++;
          }
        }
      }
    }
    return { lists: { ...lists, hosts: counts[0] }, cats: { ...cats, hosts: counts[1] }, levels: { ...levels, hosts: counts[2] } };
  });
}

/** Distinct `item`s per key over the selected rows (both given per row). */
function distinctPerKey(n: number, key: Int32Array, keys: number, item: Int32Array, items: number): Int32Array {
  const counts = new Int32Array(keys);
  if (keys * items <= MAX_MARKS) {
    const marks = new Uint8Array(keys * items);
    for (let i = 0; i < n; i++) {
      const idx = key[i] * items + item[i];
      if (marks[idx] === 0) {
        marks[idx] = 1;
        counts[key[i]]++;
      }
    }
  } else {
    const pairs = new PairCounter(keys, items);
    for (let i = 0; i < n; i++) pairs.add(key[i], item[i]);
    return pairs.counts;
  }
  return counts;
}

/**
 * The `first` keys of `keys` in `order`, without sorting them all: the `first`-th largest hit count is found
 * from the counts alone (a numeric sort), and only keys with at least that many hits are ordered.
 */
function topBy(keys: number[], hits: (k: number) => number, first: number, order: (a: number, b: number) => number): number[] {
  if (keys.length > first * 4) {
    const counts = Float64Array.from(keys, hits).sort();
    const floor = counts[counts.length - first];
    keys = keys.filter((k) => hits(k) >= floor);
  }
  return keys.sort(order).slice(0, first);
}

const measuresOf = (m: ReturnType<typeof measureBy>, k: number): Measures => ({ hits: m.hits[k], packets: m.packets[k], first: m.first[k], last: m.last[k] });

const measured = (m: Measures, hosts: number) => ({ hits: m.hits, packets: m.packets, internalHosts: hosts, firstSeenAt: new Date(m.first), lastSeenAt: new Date(m.last) });

/** Distinct hosts per key. */
function hostsByKey(data: AccountHits, sel: Selection, key: Int32Array, keys: number): Int32Array {
  return distinctPerKey(sel.n, key, keys, rowKeys(sel, null, true, 1), data.hosts.size);
}

export function totals(data: AccountHits, f: ResolvedHitFilter, externalAddresses: boolean): HitTotals & { inbound: number; outbound: number } {
  const sel = select(data, f);
  const hostSeen = new Uint8Array(data.hosts.size);
  const externalSeen = externalAddresses ? new Uint8Array(data.externals.size) : null;
  const inboundCode = data.directions.values.indexOf(Direction.INBOUND);
  const outboundCode = data.directions.values.indexOf(Direction.OUTBOUND);
  let packets = 0;
  let bytes = 0;
  let inbound = 0;
  let outbound = 0;
  let externals = 0;
  for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) {
    packets += seg.packets[i];
    bytes += seg.bytes[i];
    const d = seg.direction[i];
    if (d === inboundCode) inbound++;
    else if (d === outboundCode) outbound++;
    hostSeen[seg.host[i]] = 1;
    if (externalSeen && externalSeen[seg.external[i]] === 0) {
      externalSeen[seg.external[i]] = 1;
      externals++;
    }
  }
  let hosts = 0;
  const devices = new Set<number>();
  for (let h = 0; h < hostSeen.length; h++) {
    if (!hostSeen[h]) continue;
    hosts++;
    devices.add(data.hosts.values[h].deviceId);
  }
  return { hits: sel.n, packets, bytes, internalHosts: hosts, externalAddresses: externals, devices: devices.size, inbound, outbound };
}

export function byDirection(data: AccountHits, f: ResolvedHitFilter): DirectionRow[] {
  const sel = select(data, f);
  const k = data.directions.size;
  const hits = new Float64Array(k);
  const packets = new Float64Array(k);
  const bytes = new Float64Array(k);
  for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) {
    const d = seg.direction[i];
    hits[d]++;
    packets[d] += seg.packets[i];
    bytes[d] += seg.bytes[i];
  }
  return [Direction.INBOUND, Direction.OUTBOUND].map((direction) => {
    const d = data.directions.values.indexOf(direction);
    return { direction, hits: d < 0 ? 0 : hits[d], packets: d < 0 ? 0 : packets[d], bytes: d < 0 ? 0 : bytes[d] };
  });
}

export function byIoc(data: AccountHits, f: ResolvedHitFilter, first: number): IocRow[] {
  const sel = select(data, f);
  const groups = data.groups.values;
  const m = groupMeasures(data, sel);
  // byIocRank's order (report.service.ts): hits, then entry, list, CIDR ascending, severity descending, category.
  const shown = topBy(present(m), (g) => m.hits[g], first, (a, b) => {
    const x = groups[a];
    const y = groups[b];
    return m.hits[b] - m.hits[a] || x.iocId - y.iocId || x.listId - y.listId || byteOrder(x.cidr, y.cidr) || y.severity - x.severity || byteOrder(x.category, y.category);
  });
  // Distinct hosts for the rows shown only.
  const slot = new Int32Array(groups.length).fill(-1);
  shown.forEach((g, s) => (slot[g] = s));
  const hosts = new PairCounter(shown.length, data.hosts.size);
  for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) {
    const s = slot[seg.group[i]];
    if (s >= 0) hosts.add(s, seg.host[i]);
  }
  return shown.map((g, s) => {
    const e = groups[g];
    return { ...measured(measuresOf(m, g), hosts.counts[s]), iocId: e.iocId, iocListId: e.listId, matchedCidr: e.cidr, severity: e.severity, category: e.category as IocCategory };
  });
}

/** Distinct entries per dense per-group key (an entry group names its entry: no row needs reading). */
function iocsByGroupKey(data: AccountHits, sel: Selection, of: Int32Array, keys: number): Int32Array {
  const groups = data.groups.values;
  const seen = new Uint8Array(groups.length);
  for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) seen[seg.group[i]] = 1;
  const sets = Array.from({ length: keys }, () => new Set<number>());
  for (let g = 0; g < groups.length; g++) if (seen[g]) sets[of[g]].add(groups[g].iocId);
  return Int32Array.from(sets, (s) => s.size);
}

export function byIocList(data: AccountHits, f: ResolvedHitFilter, first: number, iocs: boolean): IocListRow[] {
  const sel = select(data, f);
  const { lists } = keyHosts(data, sel);
  const m = sumBy(groupMeasures(data, sel), lists.of, lists.values.length);
  const hosts = lists.hosts;
  const entries = iocs ? iocsByGroupKey(data, sel, lists.of, lists.values.length) : null;
  return present(m)
    .sort((a, b) => m.hits[b] - m.hits[a] || lists.values[a] - lists.values[b])
    .slice(0, first)
    .map((k) => ({ ...measured(measuresOf(m, k), hosts[k]), iocListId: lists.values[k], iocs: entries ? entries[k] : 0 }));
}

function present(m: ReturnType<typeof measureBy>): number[] {
  const keys: number[] = [];
  for (let k = 0; k < m.hits.length; k++) if (m.hits[k] > 0) keys.push(k);
  return keys;
}

export function byCategory(data: AccountHits, f: ResolvedHitFilter): CategoryRow[] {
  const sel = select(data, f);
  const { cats } = keyHosts(data, sel);
  const m = sumBy(groupMeasures(data, sel), cats.of, cats.values.length);
  const hosts = cats.hosts;
  return present(m)
    .sort((a, b) => m.hits[b] - m.hits[a] || byteOrder(cats.values[a], cats.values[b]))
    .map((k) => ({ ...measured(measuresOf(m, k), hosts[k]), category: cats.values[k] as IocCategory }));
}

export function bySeverity(data: AccountHits, f: ResolvedHitFilter): SeverityRow[] {
  const sel = select(data, f);
  const { levels } = keyHosts(data, sel);
  const m = sumBy(groupMeasures(data, sel), levels.of, levels.values.length);
  const hosts = levels.hosts;
  return present(m)
    .sort((a, b) => levels.values[b] - levels.values[a])
    .map((k) => ({ ...measured(measuresOf(m, k), hosts[k]), severity: levels.values[k] }));
}

export function byDevice(data: AccountHits, f: ResolvedHitFilter, first: number, iocs: boolean): DeviceRow[] {
  const sel = select(data, f);
  const hostInfo = data.hosts.values;
  const deviceIndex = new Map<number, number>();
  const devices: number[] = [];
  const deviceOf = new Int32Array(hostInfo.length);
  hostInfo.forEach((h, i) => {
    let d = deviceIndex.get(h.deviceId);
    if (d === undefined) {
      d = devices.length;
      deviceIndex.set(h.deviceId, d);
      devices.push(h.deviceId);
    }
    deviceOf[i] = d;
  });
  // A host belongs to one device: a device's measures sum its hosts', and its hosts are those with hits.
  const perHost = hostMeasures(data, sel);
  const m = sumBy(perHost, deviceOf, devices.length);
  const hosts = new Int32Array(devices.length);
  for (let h = 0; h < hostInfo.length; h++) if (perHost.hits[h] > 0) hosts[deviceOf[h]]++;
  let entries: Int32Array | null = null;
  if (iocs) {
    const entry = denseBy(data, 'entry', (g) => g.iocId);
    entries = distinctPerKey(sel.n, rowKeys(sel, deviceOf, true, 0), devices.length, rowKeys(sel, entry.of, false, 1), entry.values.length);
  }
  return present(m)
    .sort((a, b) => m.hits[b] - m.hits[a] || devices[a] - devices[b])
    .slice(0, first)
    .map((k) => ({ ...measured(measuresOf(m, k), hosts[k]), deviceId: devices[k], iocs: entries ? entries[k] : 0 }));
}

export function byInternalHost(data: AccountHits, f: ResolvedHitFilter, first: number, iocs: boolean): InternalHostRow[] {
  const sel = select(data, f);
  const hostInfo = data.hosts.values;
  const groups = data.groups.values;
  const m = hostMeasures(data, sel);
  const severityOf = Int32Array.from(groups, (g) => g.severity);
  const worst = new Int32Array(hostInfo.length).fill(-1);
  for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) {
    const s = severityOf[seg.group[i]];
    if (s > worst[seg.host[i]]) worst[seg.host[i]] = s;
  }
  const shown = topBy(present(m), (h) => m.hits[h], first, (a, b) => m.hits[b] - m.hits[a] || hostInfo[a].deviceId - hostInfo[b].deviceId || byteOrder(hostInfo[a].ip, hostInfo[b].ip));
  let entries: Int32Array | null = null;
  if (iocs) {
    const entry = denseBy(data, 'entry', (g) => g.iocId);
    const slot = new Int32Array(hostInfo.length).fill(-1);
    shown.forEach((h, s) => (slot[h] = s));
    const pairs = new PairCounter(shown.length, entry.values.length);
    for (const seg of sel.segments) for (let i = 0; i < seg.n; i++) {
      const s = slot[seg.host[i]];
      if (s >= 0) pairs.add(s, entry.of[seg.group[i]]);
    }
    entries = pairs.counts;
  }
  return shown.map((h, s) => ({
    deviceId: hostInfo[h].deviceId,
    internalIp: hostInfo[h].ip,
    hits: m.hits[h],
    packets: m.packets[h],
    iocs: entries ? entries[s] : 0,
    worstSeverity: worst[h],
    firstSeenAt: new Date(m.first[h]),
    lastSeenAt: new Date(m.last[h]),
  }));
}

/**
 * The triage view: (host, entry, category) pairs of the worst severity ranked by hits, then the next severity
 * while rows are missing (ReportService.threats). A pair's rows split by list and CIDR as its hits recorded them.
 */
export function threats(data: AccountHits, f: ResolvedHitFilter, first: number, levels: number[]): ThreatRow[] {
  const sel = select(data, f);
  const groups = data.groups.values;
  const hostInfo = data.hosts.values;
  const pair = denseBy(data, 'entry+category', (g) => `${g.iocId}|${g.category}`);
  const pairs = pair.values.length;
  const pairEntry = new Int32Array(pairs);
  for (let g = 0; g < groups.length; g++) pairEntry[pair.of[g]] = groups[g].iocId;
  const out: ThreatRow[] = [];
  for (const severity of levels) {
    if (out.length >= first) break;
    const want = first - out.length;
    // Each row of this severity counted under its (host, entry, category) pair, in an open-addressing table of
    // typed arrays (a Map of ~50k pairs cost 3x); rowSlot remembers each row's pair for the second pass.
    const isLevel = Uint8Array.from(groups, (g) => (g.severity === severity ? 1 : 0));
    const pairOf = pair.of;
    // Sized by this severity's hits (from the per-group measures): distinct pairs cannot be more.
    const perGroup = groupMeasures(data, sel);
    let levelHits = 0;
    for (let g = 0; g < groups.length; g++) if (isLevel[g]) levelHits += perGroup.hits[g];
    if (levelHits === 0) continue;
    const table = new PairTable(levelHits);
    const rowSlot = scratchInt32(2, sel.n);
    let j = 0;
    for (const seg of sel.segments) {
      const { group, host } = seg;
      for (let i = 0; i < seg.n; i++, j++) {
        const g = group[i];
        rowSlot[j] = isLevel[g] === 0 ? -1 : table.count(host[i] * pairs + pairOf[g]);
      }
    }
    if (table.size === 0) continue;
    const slots = table.used();
    const hitsOf = (slot: number) => table.counts[slot];
    const ranked = topBy(slots, hitsOf, want, (a, b) => {
      const ka = table.keys[a];
      const kb = table.keys[b];
      const ha = hostInfo[Math.floor(ka / pairs)];
      const hb = hostInfo[Math.floor(kb / pairs)];
      return hitsOf(b) - hitsOf(a) || ha.deviceId - hb.deviceId || byteOrder(ha.ip, hb.ip) || pairEntry[ka % pairs] - pairEntry[kb % pairs];
    });
    const rankOfSlot = new Int32Array(table.keys.length).fill(-1);
    ranked.forEach((slot, r) => (rankOfSlot[slot] = r));
    // The rows of the pairs shown: per (host, entry group), with ports, directions and times.
    interface Acc {
      host: number;
      group: number;
      rank: number;
      hits: number;
      packets: number;
      ports: Set<number>;
      directions: Set<number>;
      first: number;
      last: number;
    }
    const rows = new Map<number, Acc>();
    j = 0;
    for (const seg of sel.segments) for (let i = 0; i < seg.n; i++, j++) {
      if (rowSlot[j] < 0) continue;
      const r = rankOfSlot[rowSlot[j]];
      if (r < 0) continue;
      const g = seg.group[i];
      const key = seg.host[i] * groups.length + g;
      let acc = rows.get(key);
      if (!acc) rows.set(key, (acc = { host: seg.host[i], group: g, rank: r, hits: 0, packets: 0, ports: new Set(), directions: new Set(), first: Infinity, last: -Infinity }));
      acc.hits++;
      acc.packets += seg.packets[i];
      if (seg.port[i] >= 0) acc.ports.add(seg.port[i]);
      acc.directions.add(seg.direction[i]);
      if (seg.at[i] < acc.first) acc.first = seg.at[i];
      if (seg.last[i] > acc.last) acc.last = seg.last[i];
    }
    const accs = [...rows.values()].sort((a, b) => a.rank - b.rank || b.hits - a.hits);
    for (const a of accs) {
      const e = groups[a.group];
      out.push({
        deviceId: hostInfo[a.host].deviceId,
        internalIp: hostInfo[a.host].ip,
        iocId: e.iocId,
        iocListId: e.listId,
        matchedCidr: e.cidr,
        severity: e.severity,
        category: e.category as IocCategory,
        hits: a.hits,
        packets: a.packets,
        destinationPorts: [...a.ports].sort((x, y) => x - y).slice(0, 20),
        directions: [...a.directions].map((d) => data.directions.values[d]).sort() as Direction[],
        firstSeenAt: new Date(a.first),
        lastSeenAt: new Date(a.last),
      });
    }
  }
  return out;
}

export function timeline(data: AccountHits, f: ResolvedHitFilter, bucket: TimeBucket, zone: string, nextStart: (start: number) => number): TimelineBucketRow[] {
  const sel = select(data, f);
  const starts = localBuckets(f.from, f.to, bucket, zone);
  const inboundCode = data.directions.values.indexOf(Direction.INBOUND);
  const hits = new Float64Array(starts.length);
  const inbound = new Float64Array(starts.length);
  // Every bucket starts on a 15-minute UTC slot (timeline.ts): a table from slot to bucket replaces a search per hit.
  const slot0 = Math.floor(f.from / SLOT_MS);
  const slots = Math.floor((f.to - 1) / SLOT_MS) - slot0 + 1;
  const bucketOfSlot = new Int32Array(Math.max(slots, 0));
  for (let s = 0; s < slots; s++) bucketOfSlot[s] = bucketIndex(starts, Math.max((slot0 + s) * SLOT_MS, f.from));
  for (const seg of sel.segments) {
    const { at, direction } = seg;
    for (let i = 0; i < seg.n; i++) {
      const b = bucketOfSlot[Math.floor(at[i] / SLOT_MS) - slot0];
      if (b < 0) continue;
      hits[b]++;
      if (direction[i] === inboundCode) inbound[b]++;
    }
  }
  return starts.map((start, i) => ({
    start: new Date(start),
    end: new Date(i + 1 < starts.length ? starts[i + 1] : nextStart(start)),
    hits: hits[i],
    inbound: inbound[i],
    outbound: hits[i] - inbound[i],
  }));
}
