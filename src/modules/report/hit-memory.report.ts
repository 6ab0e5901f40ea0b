import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { ResolvedHitFilter } from './hit-filter';
import { AccountHits } from './hit-memory';
import { TimeBucket } from './report.enums';
import { CategoryRow, DeviceRow, DirectionRow, HitTotals, InternalHostRow, IocListRow, IocRow, SeverityRow, ThreatRow, TimelineBucketRow } from './report.types';
import { bucketIndex, localBuckets } from './timeline';

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

/** The hits matching a filter, column-wise. */
export interface Selection {
  n: number;
  at: Float64Array;
  last: Float64Array;
  packets: Float64Array;
  bytes: Float64Array;
  host: Int32Array;
  external: Int32Array;
  group: Int32Array;
  port: Int32Array;
  direction: Uint8Array;
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

  let capacity = 0;
  const blocks = [];
  for (const b of data.blocks()) {
    if (b.maxAt < f.from || b.minAt >= f.to) continue;
    blocks.push(b);
    capacity += b.n;
  }
  const sel: Selection = {
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
  const { from, to } = f;
  for (const b of blocks) {
    for (let i = 0; i < b.n; i++) {
      const at = b.at[i];
      if (at < from || at >= to) continue;
      if (groupOk && !groupOk[b.group[i]]) continue;
      if (hostOk && !hostOk[b.host[i]]) continue;
      if (externalOk && !externalOk[b.external[i]]) continue;
      if (directionOk && !directionOk[b.direction[i]]) continue;
      if (protocolOk && !protocolOk[b.protocol[i]]) continue;
      const port = b.port[i];
      // A hit without a destination port matches no port list, and has none to exclude.
      if (ports && (port < 0 || !ports.has(port))) continue;
      if (excluded && port >= 0 && excluded.has(port)) continue;
      sel.at[n] = at;
      sel.last[n] = b.last[i];
      sel.packets[n] = b.packets[i];
      sel.bytes[n] = b.bytes[i];
      sel.host[n] = b.host[i];
      sel.external[n] = b.external[i];
      sel.group[n] = b.group[i];
      sel.port[n] = port;
      sel.direction[n] = b.direction[i];
      n++;
    }
  }
  sel.n = n;
  return sel;
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

/** Dense indexes of a per-group value (list id, category, ...): group -> index, and index -> value. */
function denseBy<T>(data: AccountHits, value: (g: AccountHits['groups']['values'][number]) => T): { of: Int32Array; values: T[] } {
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

/** hits, packets, first and last per dense key; `key` maps a selection row to its key. */
function measureBy(sel: Selection, keys: number, key: (i: number) => number): { hits: Float64Array; packets: Float64Array; first: Float64Array; last: Float64Array } {
  const hits = new Float64Array(keys);
  const packets = new Float64Array(keys);
  const first = new Float64Array(keys).fill(Infinity);
  const last = new Float64Array(keys).fill(-Infinity);
  for (let i = 0; i < sel.n; i++) {
    const k = key(i);
    hits[k]++;
    packets[k] += sel.packets[i];
    if (sel.at[i] < first[k]) first[k] = sel.at[i];
    if (sel.last[i] > last[k]) last[k] = sel.last[i];
  }
  return { hits, packets, first, last };
}

const measuresOf = (m: ReturnType<typeof measureBy>, k: number): Measures => ({ hits: m.hits[k], packets: m.packets[k], first: m.first[k], last: m.last[k] });

const measured = (m: Measures, hosts: number) => ({ hits: m.hits, packets: m.packets, internalHosts: hosts, firstSeenAt: new Date(m.first), lastSeenAt: new Date(m.last) });

/** Distinct hosts per dense per-group key. */
function hostsByGroupKey(data: AccountHits, sel: Selection, of: Int32Array, keys: number): Int32Array {
  const pairs = new PairCounter(keys, data.hosts.size);
  for (let i = 0; i < sel.n; i++) pairs.add(of[sel.group[i]], sel.host[i]);
  return pairs.counts;
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
  for (let i = 0; i < sel.n; i++) {
    packets += sel.packets[i];
    bytes += sel.bytes[i];
    const d = sel.direction[i];
    if (d === inboundCode) inbound++;
    else if (d === outboundCode) outbound++;
    hostSeen[sel.host[i]] = 1;
    if (externalSeen && externalSeen[sel.external[i]] === 0) {
      externalSeen[sel.external[i]] = 1;
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
  for (let i = 0; i < sel.n; i++) {
    const d = sel.direction[i];
    hits[d]++;
    packets[d] += sel.packets[i];
    bytes[d] += sel.bytes[i];
  }
  return [Direction.INBOUND, Direction.OUTBOUND].map((direction) => {
    const d = data.directions.values.indexOf(direction);
    return { direction, hits: d < 0 ? 0 : hits[d], packets: d < 0 ? 0 : packets[d], bytes: d < 0 ? 0 : bytes[d] };
  });
}

export function byIoc(data: AccountHits, f: ResolvedHitFilter, first: number): IocRow[] {
  const sel = select(data, f);
  const groups = data.groups.values;
  const m = measureBy(sel, groups.length, (i) => sel.group[i]);
  const ids: number[] = [];
  for (let g = 0; g < groups.length; g++) if (m.hits[g] > 0) ids.push(g);
  // byIocRank's order (report.service.ts): hits, then entry, list, CIDR ascending, severity descending, category.
  ids.sort((a, b) => {
    const x = groups[a];
    const y = groups[b];
    return m.hits[b] - m.hits[a] || x.iocId - y.iocId || x.listId - y.listId || byteOrder(x.cidr, y.cidr) || y.severity - x.severity || byteOrder(x.category, y.category);
  });
  const shown = ids.slice(0, first);
  // Distinct hosts for the rows shown only.
  const slot = new Int32Array(groups.length).fill(-1);
  shown.forEach((g, s) => (slot[g] = s));
  const hosts = new PairCounter(shown.length, data.hosts.size);
  for (let i = 0; i < sel.n; i++) {
    const s = slot[sel.group[i]];
    if (s >= 0) hosts.add(s, sel.host[i]);
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
  for (let i = 0; i < sel.n; i++) seen[sel.group[i]] = 1;
  const sets = Array.from({ length: keys }, () => new Set<number>());
  for (let g = 0; g < groups.length; g++) if (seen[g]) sets[of[g]].add(groups[g].iocId);
  return Int32Array.from(sets, (s) => s.size);
}

export function byIocList(data: AccountHits, f: ResolvedHitFilter, first: number, iocs: boolean): IocListRow[] {
  const sel = select(data, f);
  const lists = denseBy(data, (g) => g.listId);
  const m = measureBy(sel, lists.values.length, (i) => lists.of[sel.group[i]]);
  const hosts = hostsByGroupKey(data, sel, lists.of, lists.values.length);
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
  const cats = denseBy(data, (g) => g.category);
  const m = measureBy(sel, cats.values.length, (i) => cats.of[sel.group[i]]);
  const hosts = hostsByGroupKey(data, sel, cats.of, cats.values.length);
  return present(m)
    .sort((a, b) => m.hits[b] - m.hits[a] || byteOrder(cats.values[a], cats.values[b]))
    .map((k) => ({ ...measured(measuresOf(m, k), hosts[k]), category: cats.values[k] as IocCategory }));
}

export function bySeverity(data: AccountHits, f: ResolvedHitFilter): SeverityRow[] {
  const sel = select(data, f);
  const levels = denseBy(data, (g) => g.severity);
  const m = measureBy(sel, levels.values.length, (i) => levels.of[sel.group[i]]);
  const hosts = hostsByGroupKey(data, sel, levels.of, levels.values.length);
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
  const m = measureBy(sel, devices.length, (i) => deviceOf[sel.host[i]]);
  const hostSeen = new Uint8Array(hostInfo.length);
  for (let i = 0; i < sel.n; i++) hostSeen[sel.host[i]] = 1;
  const hosts = new Int32Array(devices.length);
  for (let h = 0; h < hostInfo.length; h++) if (hostSeen[h]) hosts[deviceOf[h]]++;
  let entries: Int32Array | null = null;
  if (iocs) {
    const entry = denseBy(data, (g) => g.iocId);
    const pairs = new PairCounter(devices.length, entry.values.length);
    for (let i = 0; i < sel.n; i++) pairs.add(deviceOf[sel.host[i]], entry.of[sel.group[i]]);
    entries = pairs.counts;
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
  const m = measureBy(sel, hostInfo.length, (i) => sel.host[i]);
  const worst = new Int32Array(hostInfo.length).fill(-1);
  for (let i = 0; i < sel.n; i++) {
    const s = groups[sel.group[i]].severity;
    if (s > worst[sel.host[i]]) worst[sel.host[i]] = s;
  }
  const shown = present(m)
    .sort((a, b) => m.hits[b] - m.hits[a] || hostInfo[a].deviceId - hostInfo[b].deviceId || byteOrder(hostInfo[a].ip, hostInfo[b].ip))
    .slice(0, first);
  let entries: Int32Array | null = null;
  if (iocs) {
    const entry = denseBy(data, (g) => g.iocId);
    const slot = new Int32Array(hostInfo.length).fill(-1);
    shown.forEach((h, s) => (slot[h] = s));
    const pairs = new PairCounter(shown.length, entry.values.length);
    for (let i = 0; i < sel.n; i++) {
      const s = slot[sel.host[i]];
      if (s >= 0) pairs.add(s, entry.of[sel.group[i]]);
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
  const pair = denseBy(data, (g) => `${g.iocId}|${g.category}`);
  const pairs = pair.values.length;
  const pairEntry = new Int32Array(pairs);
  for (let g = 0; g < groups.length; g++) pairEntry[pair.of[g]] = groups[g].iocId;
  const out: ThreatRow[] = [];
  for (const severity of levels) {
    if (out.length >= first) break;
    const want = first - out.length;
    const counts = new Map<number, number>();
    for (let i = 0; i < sel.n; i++) {
      const g = sel.group[i];
      if (groups[g].severity !== severity) continue;
      const key = sel.host[i] * pairs + pair.of[g];
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    if (counts.size === 0) continue;
    const entryOf = (key: number) => pairEntry[key % pairs];
    const ranked = [...counts.keys()]
      .sort((a, b) => {
        const ha = hostInfo[Math.floor(a / pairs)];
        const hb = hostInfo[Math.floor(b / pairs)];
        return (counts.get(b) as number) - (counts.get(a) as number) || ha.deviceId - hb.deviceId || byteOrder(ha.ip, hb.ip) || entryOf(a) - entryOf(b);
      })
      .slice(0, want);
    const rank = new Map(ranked.map((k, i) => [k, i]));
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
    for (let i = 0; i < sel.n; i++) {
      const g = sel.group[i];
      if (groups[g].severity !== severity) continue;
      const r = rank.get(sel.host[i] * pairs + pair.of[g]);
      if (r === undefined) continue;
      const key = sel.host[i] * groups.length + g;
      let acc = rows.get(key);
      if (!acc) rows.set(key, (acc = { host: sel.host[i], group: g, rank: r, hits: 0, packets: 0, ports: new Set(), directions: new Set(), first: Infinity, last: -Infinity }));
      acc.hits++;
      acc.packets += sel.packets[i];
      if (sel.port[i] >= 0) acc.ports.add(sel.port[i]);
      acc.directions.add(sel.direction[i]);
      if (sel.at[i] < acc.first) acc.first = sel.at[i];
      if (sel.last[i] > acc.last) acc.last = sel.last[i];
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
  for (let i = 0; i < sel.n; i++) {
    const b = bucketIndex(starts, sel.at[i]);
    if (b < 0) continue;
    hits[b]++;
    if (sel.direction[i] === inboundCode) inbound[b]++;
  }
  return starts.map((start, i) => ({
    start: new Date(start),
    end: new Date(i + 1 < starts.length ? starts[i + 1] : nextStart(start)),
    hits: hits[i],
    inbound: inbound[i],
    outbound: hits[i] - inbound[i],
  }));
}
