import { nextTurn } from '../../../common/async/next-turn';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { AccountHits } from '../hit-memory';
import { denseBy, PairCounter, rowDirections, rowKeys, select, Selection, sumBy, Sums, sumsBy, topBy, unitPairs, unitSums } from '../hit-memory.report';
import { TimeBucket } from '../report.enums';
import { ThreatRow, TimelineBucketRow } from '../report.types';
import { ReportExecutor, severityLevels } from './executor';
import {
  compareRows,
  COUNTED_DIRECTION,
  DistinctMeasure,
  Grouping,
  GroupingOptions,
  isDistinct,
  KEY_COLUMNS,
  KeyName,
  Measure,
  withAlwaysRows,
} from './grouping';
import { threats } from './threats.memory';
import { timeline } from './timeline.memory';

/**
 * Runs the groupings over an account's hits in memory (hit-memory.ts, hit-memory.report.ts). One executor
 * serves one request: it holds the snapshot its first grouping took, and computes the request's groupings one
 * per turn of the event loop, so under load the loop stalls for one grouping at a time instead of a whole
 * report, and one report never mixes data from before and after a change.
 */
export class MemoryExecutor implements ReportExecutor {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly data: AccountHits) {}

  /** Runs `compute` in a later turn of the event loop than the request's previous grouping. */
  private turn<T>(compute: () => T): Promise<T> {
    const mine = (this.tail = this.tail.then(nextTurn));
    return mine.then(compute);
  }

  group<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions = {}): Promise<R[]> {
    return this.turn(() => groupInMemory(this.data, f, g, options));
  }

  threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    return this.turn(() => threats(this.data, f, first, severityLevels(f)));
  }

  timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    return this.turn(() => timeline(this.data, f, bucket, zone));
  }
}

/** The dense keys of a grouping: each unit's (entry group's, host's, direction's) key, and each key's values. */
interface Keys {
  level: 'none' | 'group' | 'host' | 'direction';
  /** Unit -> dense key (null: level none or direction, where the key is the unit itself or constant). */
  of: Int32Array | null;
  count: number;
  values: (k: number) => Record<string, number | string>;
}

const unitKeyCache = new WeakMap<object, Map<string, { size: number; of: Int32Array; reps: number[] }>>();

/** Units (groups or hosts, interned, only ever added) to dense keys of `fields`, cached per interner and key. */
function unitKeys<U>(interner: { values: U[]; size: number }, name: string, value: (u: U) => string): { of: Int32Array; reps: number[] } {
  let byName = unitKeyCache.get(interner);
  if (!byName) unitKeyCache.set(interner, (byName = new Map()));
  const hit = byName.get(name);
  if (hit && hit.size === interner.size) return hit;
  const of = new Int32Array(interner.size);
  const index = new Map<string, number>();
  const reps: number[] = [];
  interner.values.forEach((u, i) => {
    const v = value(u);
    let k = index.get(v);
    if (k === undefined) {
      k = reps.length;
      index.set(v, k);
      reps.push(i);
    }
    of[i] = k;
  });
  const made = { size: interner.size, of, reps };
  byName.set(name, made);
  return made;
}

function keysOf(data: AccountHits, g: Grouping<unknown>): Keys {
  const fields = Object.entries(g.key) as Array<[string, KeyName]>;
  if (fields.length === 0) return { level: 'none', of: null, count: 1, values: () => ({}) };
  const level = KEY_COLUMNS[fields[0][1]].level;
  if (level === 'direction') {
    const [[field]] = fields;
    return { level, of: null, count: data.directions.size, values: (k) => ({ [field]: data.directions.values[k] }) };
  }
  const name = fields.map(([, c]) => c).join(',');
  if (level === 'group') {
    const get = fields.map(([field, c]) => [field, KEY_COLUMNS[c].group!] as const);
    const { of, reps } = unitKeys(data.groups, name, (u) => get.map(([, fn]) => fn(u)).join('|'));
    return { level, of, count: reps.length, values: (k) => Object.fromEntries(get.map(([field, fn]) => [field, fn(data.groups.values[reps[k]])])) };
  }
  const get = fields.map(([field, c]) => [field, KEY_COLUMNS[c].host!] as const);
  const { of, reps } = unitKeys(data.hosts, name, (u) => get.map(([, fn]) => fn(u)).join('|'));
  return { level, of, count: reps.length, values: (k) => Object.fromEntries(get.map(([field, fn]) => [field, fn(data.hosts.values[reps[k]])])) };
}

/** Each selected row's dense key (in scratch slot 1: rowKeys, rowDirections), null when there is one key. */
function rowKeysOf(sel: Selection, keys: Keys): Int32Array | null {
  if (keys.level === 'group') return rowKeys(sel, keys.of!, false);
  if (keys.level === 'host') return rowKeys(sel, keys.of!, true);
  if (keys.level === 'direction') return rowDirections(sel);
  return null;
}

let identities = new Int32Array(0);

/** 0, 1, ..., n - 1 (read only: shared by every caller; grown when a longer one is asked). */
function identity(n: number): Int32Array {
  if (identities.length < n) identities = Int32Array.from({ length: Math.max(n, identities.length * 2) }, (_, i) => i);
  return identities.subarray(0, n);
}

/** What a distinct count counts, per unit when it is an attribute of a unit, else per row. */
function itemsOf(data: AccountHits, m: DistinctMeasure): { level: 'group' | 'host' | 'row'; count: number; ofUnit?: Int32Array } {
  switch (m) {
    case 'distinctHosts':
      return { level: 'host', count: data.hosts.size, ofUnit: identity(data.hosts.size) };
    case 'distinctDevices': {
      const devices = unitKeys(data.hosts, 'deviceId', (h) => String(h.deviceId));
      return { level: 'host', count: devices.reps.length, ofUnit: devices.of };
    }
    case 'distinctEntries': {
      const entries = denseBy(data, 'entry', (g) => g.iocId);
      return { level: 'group', count: entries.values.length, ofUnit: entries.of };
    }
    case 'distinctExternals':
      return { level: 'row', count: data.externals.size };
  }
}

/** Distinct items per shown key (`slot` maps a dense key to its row, -1 when not shown). */
function distinctCounts(
  data: AccountHits,
  sel: Selection,
  keys: Keys,
  rowKey: Int32Array | null,
  slot: Int32Array,
  shown: number,
  m: DistinctMeasure,
): Int32Array {
  const item = itemsOf(data, m);
  const pairs = new PairCounter(shown, item.count);
  if (item.level !== 'row' && (keys.level === 'none' || keys.level === item.level)) {
    // Key and item are attributes of the same unit: count over the units with hits, not over the hits.
    const sums = unitSums(data, sel, item.level);
    for (let u = 0; u < sums.hits.length; u++) {
      if (sums.hits[u] === 0) continue;
      const s = slot[keys.of ? keys.of[u] : 0];
      if (s >= 0) pairs.add(s, item.ofUnit![u]);
    }
    return pairs.counts;
  }
  if (item.level !== 'row' && (keys.level === 'group' || keys.level === 'host')) {
    // Key of one unit, item of the other: count over the distinct (group, host) pairs, not over the hits.
    const units = unitPairs(data, sel);
    const keyUnit = keys.level === 'group' ? units.group : units.host;
    const itemUnit = item.level === 'group' ? units.group : units.host;
    const keyOf = keys.of!;
    const itemOf = item.ofUnit!;
    for (let p = 0; p < units.n; p++) {
      const s = slot[keyOf[keyUnit[p]]];
      if (s >= 0) pairs.add(s, itemOf[itemUnit[p]]);
    }
    return pairs.counts;
  }
  const of = item.ofUnit;
  if (!rowKey) {
    // One key (totals): a mark per item, in one tight pass.
    const seen = new Uint8Array(item.count);
    let count = 0;
    for (const seg of sel.segments) {
      const ids = item.level === 'group' ? seg.group : item.level === 'host' ? seg.host : seg.external;
      for (let i = 0; i < seg.n; i++) {
        const it = of ? of[ids[i]] : ids[i];
        if (seen[it] === 0) {
          seen[it] = 1;
          count++;
        }
      }
    }
    return Int32Array.of(count);
  }
  let j = 0;
  for (const seg of sel.segments) {
    const ids = item.level === 'group' ? seg.group : item.level === 'host' ? seg.host : seg.external;
    for (let i = 0; i < seg.n; i++, j++) {
      const s = slot[rowKey[j]];
      if (s >= 0) pairs.add(s, of ? of[ids[i]] : ids[i]);
    }
  }
  return pairs.counts;
}

/** A grouping declared in groupings.ts, computed from the hits in memory. */
export function groupInMemory<R>(data: AccountHits, f: ResolvedHitFilter, g: Grouping<R>, options: GroupingOptions): R[] {
  const sel = select(data, f);
  const keys = keysOf(data, g as Grouping<unknown>);
  const wanted = (Object.entries(g.measures) as Array<[string, Measure]>).filter(([field]) => !options.skip?.includes(field));
  const needs = (m: Measure) => wanted.some(([, x]) => x === m);
  // Sums: from the request's per-unit sums when the key is an attribute of a unit, else from one pass.
  let rowKey: Int32Array | null | undefined;
  const key = () => (rowKey === undefined ? (rowKey = rowKeysOf(sel, keys)) : rowKey);
  const sums: Sums =
    keys.level === 'group' || keys.level === 'host'
      ? sumBy(unitSums(data, sel, keys.level), keys.of!, keys.count)
      : keys.level === 'none'
        ? sumBy(unitSums(data, sel, 'group'), new Int32Array(data.groups.size), 1)
        : sumsBy(sel, keys.count, 'direction');
  const extra: Partial<Record<Measure, Float64Array>> = {};
  if (needs('worstSeverity')) {
    const worst = new Float64Array(keys.count).fill(-1);
    const severityOf = Int32Array.from(data.groups.values, (x) => x.severity);
    if (keys.level === 'direction') {
      const k = key()!;
      let j = 0;
      for (const seg of sel.segments) for (let i = 0; i < seg.n; i++, j++) if (severityOf[seg.group[i]] > worst[k[j]]) worst[k[j]] = severityOf[seg.group[i]];
    } else {
      // A key of the group or the host (or none): over the distinct (group, host) pairs.
      const units = unitPairs(data, sel);
      const keyUnit = keys.level === 'host' ? units.host : units.group;
      for (let p = 0; p < units.n; p++) {
        const at = keys.of ? keys.of[keyUnit[p]] : 0;
        if (severityOf[units.group[p]] > worst[at]) worst[at] = severityOf[units.group[p]];
      }
    }
    extra.worstSeverity = worst;
  }
  if (needs('inboundHits') || needs('outboundHits')) {
    // Hits per key and direction, in one pass.
    const directions = data.directions.size;
    const perDirection = new Float64Array(keys.count * directions);
    const k = key();
    let j = 0;
    for (const seg of sel.segments) {
      const { direction } = seg;
      if (k) for (let i = 0; i < seg.n; i++, j++) perDirection[k[j] * directions + direction[i]]++;
      else for (let i = 0; i < seg.n; i++) perDirection[direction[i]]++;
    }
    for (const m of ['inboundHits', 'outboundHits'] as const) {
      const code = data.directions.values.indexOf(COUNTED_DIRECTION[m]!);
      extra[m] = Float64Array.from({ length: keys.count }, (_, key) => (code < 0 ? 0 : perDirection[key * directions + code]));
    }
  }
  const valueOf = (m: Measure, k: number): number | Date => {
    switch (m) {
      case 'hits':
        return sums.hits[k];
      case 'packets':
        return sums.packets[k];
      case 'bytes':
        return sums.bytes[k];
      case 'firstSeen':
        return new Date(sums.first[k]);
      case 'lastSeen':
        return new Date(sums.last[k]);
      default:
        return extra[m]?.[k] ?? 0;
    }
  };
  // The keys with hits, and those always shown.
  const present: number[] = [];
  for (let k = 0; k < keys.count; k++) if (sums.hits[k] > 0) present.push(k);
  const rows = new Map<number, Record<string, unknown>>();
  const rowOf = (k: number) => {
    let row = rows.get(k);
    if (!row) {
      row = { ...keys.values(k) };
      for (const [field, m] of Object.entries(g.measures) as Array<[string, Measure]>)
        row[field] = isDistinct(m) || options.skip?.includes(field) ? 0 : valueOf(m, k);
      rows.set(k, row);
    }
    return row;
  };
  const order = (a: number, b: number) => compareRows(g.order, rowOf(a), rowOf(b));
  let shownKeys: number[];
  let out: Array<Record<string, unknown>>;
  if (g.top) {
    const first = options.first ?? Infinity;
    const byHits = g.order[0] && g.measures[g.order[0].by as keyof R & string] === 'hits' && g.order[0].desc;
    shownKeys = byHits && Number.isFinite(first) ? topBy(present, (k) => sums.hits[k], first, order) : present.sort(order).slice(0, first);
    out = shownKeys.map(rowOf);
  } else {
    shownKeys = present;
    out = withAlwaysRows(g as Grouping<Record<string, unknown>>, present.map(rowOf));
  }
  // Distinct counts for the rows shown only.
  const distinct = wanted.filter((w): w is [string, DistinctMeasure] => isDistinct(w[1]));
  if (distinct.length && shownKeys.length) {
    const slot = new Int32Array(keys.count).fill(-1);
    shownKeys.forEach((k, s) => (slot[k] = s));
    const needRowKeys = distinct.some(([, m]) => keys.level === 'direction' || itemsOf(data, m).level === 'row');
    const k = needRowKeys ? key() : null;
    for (const [field, m] of distinct) {
      const counts = distinctCounts(data, sel, keys, k, slot, shownKeys.length, m);
      shownKeys.forEach((key, s) => (rows.get(key)![field] = counts[s]));
    }
  }
  return out as R[];
}
