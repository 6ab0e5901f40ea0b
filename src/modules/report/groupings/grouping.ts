import { Direction } from '../../flow-hit/flow-hit.enums';
import { EntryGroup, HostInfo } from '../hit-memory';

/**
 * The vocabulary the groupings are declared in (groupings.ts), and what every executor must know of it: a
 * report grouping is a key (some hit columns), named measures over the hits of each key, an order with its
 * tie-breaks, and whether it takes `top`. Executors (memory.executor.ts, sql.executor.ts) run any declaration;
 * none of them names a grouping.
 */

/** A hit column a grouping can be keyed by. `level`: what the column is an attribute of in the store. */
export interface KeyColumn {
  /** Entity property name, alike in flow_hit and the roll-ups that have the column. */
  property: string;
  text: boolean;
  /** In the store: an attribute of the matched entry group, of the internal host, or of the hit itself. */
  level: 'group' | 'host' | 'direction';
  group?: (g: EntryGroup) => number | string;
  host?: (h: HostInfo) => number | string;
}

export type KeyName = 'deviceId' | 'internalIp' | 'iocId' | 'iocListId' | 'matchedCidr' | 'severity' | 'category' | 'direction' | 'qname';

export const KEY_COLUMNS: Record<KeyName, KeyColumn> = {
  deviceId: { property: 'deviceId', text: false, level: 'host' as const, host: (h: HostInfo) => h.deviceId },
  internalIp: { property: 'internalIp', text: true, level: 'host' as const, host: (h: HostInfo) => h.ip },
  iocId: { property: 'iocId', text: false, level: 'group', group: (g: EntryGroup) => g.iocId },
  iocListId: { property: 'iocListId', text: false, level: 'group', group: (g: EntryGroup) => g.listId },
  matchedCidr: { property: 'matchedCidr', text: true, level: 'group', group: (g: EntryGroup) => g.cidr },
  severity: { property: 'severity', text: false, level: 'group', group: (g: EntryGroup) => g.severity },
  category: { property: 'category', text: true, level: 'group', group: (g: EntryGroup) => g.category },
  direction: { property: 'direction', text: true, level: 'direction' },
  // DNS hits only (the queried name): a grouping keyed by it runs on the DNS executor alone.
  qname: { property: 'qname', text: true, level: 'group' },
};

/**
 * What a measure computes over a key's hits. Sums, extremes and conditional counts add up across roll-up rows;
 * a distinct count needs the columns of what it counts (DISTINCT_OF).
 */
export type Measure =
  | 'hits'
  | 'packets'
  | 'bytes'
  | 'firstSeen'
  | 'lastSeen'
  | 'worstSeverity'
  | 'inboundHits'
  | 'outboundHits'
  | 'distinctHosts'
  | 'distinctEntries'
  | 'distinctExternals'
  | 'distinctDevices';

export type DistinctMeasure = Extract<Measure, `distinct${string}`>;

/** The hit columns each distinct count counts (an internal host is only meaningful with its device). */
export const DISTINCT_OF: Record<DistinctMeasure, string[]> = {
  distinctHosts: ['deviceId', 'internalIp'],
  distinctEntries: ['iocId'],
  distinctExternals: ['externalIp'],
  distinctDevices: ['deviceId'],
};

export const isDistinct = (m: Measure): m is DistinctMeasure => m.startsWith('distinct');

/** Measures whose value is an instant (returned as a Date). */
export const isInstant = (m: Measure) => m === 'firstSeen' || m === 'lastSeen';

/** The direction a conditional count counts. */
export const COUNTED_DIRECTION: Partial<Record<Measure, Direction>> = { inboundHits: Direction.INBOUND, outboundHits: Direction.OUTBOUND };

/** One step of a grouping's order: a key column or a measure (by its output field), text in byte order. */
export interface OrderStep {
  by: string;
  desc?: boolean;
}

export interface Grouping<Row> {
  name: string;
  /** Output field -> key column. Every key column of a grouping is of one store level (KEY_COLUMNS). */
  key: Partial<Record<keyof Row & string, KeyName>>;
  /** Output field -> measure. */
  measures: Partial<Record<keyof Row & string, Measure>>;
  /** Total order of the rows: ties are broken until no two keys compare equal. */
  order: OrderStep[];
  /** Whether the grouping returns only its first `top` rows. */
  top: boolean;
  /** Keys present even without hits (measures 0): byDirection's both directions, totals' one row. */
  always?: Array<Partial<Record<keyof Row & string, number | string>>>;
}

/** Per-call options: `first` for a grouping that takes `top`; `skip`: output fields nobody selected (answered 0). */
export interface GroupingOptions {
  first?: number;
  skip?: readonly string[];
}

/** Declares a grouping, checking what the executors rely on. */
export function grouping<Row>(g: Grouping<Row>): Grouping<Row> {
  const levels = new Set(Object.values(g.key).map((k) => KEY_COLUMNS[k as KeyName].level));
  if (levels.size > 1) throw new Error(`grouping ${g.name}: its key mixes store levels (${[...levels].join(', ')})`);
  const fields = new Set([...Object.keys(g.key), ...Object.keys(g.measures)]);
  for (const step of g.order) if (!fields.has(step.by)) throw new Error(`grouping ${g.name}: orders by ${step.by}, which it does not return`);
  for (const k of Object.keys(g.key))
    if (!g.order.some((s) => s.by === k) && !(g.always && Object.keys(g.key).length === 0))
      throw new Error(`grouping ${g.name}: its order does not break ties on ${k}`);
  return g;
}

/** Orders two rows by a grouping's order (numbers and instants numerically, text by bytes, as SQL is told to). */
/**
 * Every executor's last step: the grouping's `always` rows the result lacks, added with empty measures (0, and
 * null for instants), then every row in the grouping's order.
 */
export function withAlwaysRows<R>(g: Grouping<R>, rows: Array<Record<string, unknown>>): R[] {
  for (const always of g.always ?? []) {
    if (rows.some((r) => Object.entries(always).every(([field, v]) => r[field] === v))) continue;
    const row: Record<string, unknown> = { ...always };
    for (const [field, m] of Object.entries(g.measures) as Array<[string, Measure]>) row[field] = isInstant(m) ? null : 0;
    rows.push(row);
  }
  return rows.sort((a, b) => compareRows(g.order, a, b)) as R[];
}

export function compareRows(order: OrderStep[], a: Record<string, unknown>, b: Record<string, unknown>): number {
  for (const { by, desc } of order) {
    const x = a[by];
    const y = b[by];
    const c = typeof x === 'string' ? (x < (y as string) ? -1 : x > (y as string) ? 1 : 0) : Number(x) - Number(y);
    if (c !== 0) return desc ? -c : c;
  }
  return 0;
}
