import { EntityManager } from 'typeorm';
import { bulkInsertObjects, dialectOf, execute } from '../../db/bulk';
import { FLOW_HIT_COLUMNS, HitSum, hitSum, hitSumSql, InsertKey, NewHit } from './flow-hit.columns';

/** Columns a roll-up can group by: those never null. */
type RollupKey = { [K in InsertKey]: null extends NewHit[K] ? never : K }[InsertKey];

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A roll-up's measure: the hits counted, a sum (HIT_SUMS), or the earliest / latest capture time. */
type Measure =
  { column: string; of: 'count' } | { column: string; of: 'sum'; sum: HitSum } | { column: string; of: 'min' | 'max'; key: 'firstSeenAt' | 'lastSeenAt' };

export interface RollupGrain {
  table: string;
  /** Width of the bucket (by first_seen_at, UTC), stored in bucket_at. */
  bucketMs: number;
  /** flow_hit columns the roll-up keeps and groups by, besides the bucket. */
  keys: readonly RollupKey[];
  measures: readonly Measure[];
}

const LIST = ['direction', 'iocListId', 'severity', 'category'] as const;
const SPAN: readonly Measure[] = [
  { column: 'first_seen_at', of: 'min', key: 'firstSeenAt' },
  { column: 'last_seen_at', of: 'max', key: 'lastSeenAt' },
];

/**
 * The roll-ups of flow_hit (report/hit-rollup.entity.ts says why these two grains): declared once, and from here
 * the rows written with an upload's hits (rollupRows), the SQL that recomputes them from the hits left (after a
 * purge) and the tests' recomputation. Keyed by upload, so replacing an upload's hits replaces its roll-ups.
 * The HitRollups migration keeps its own frozen copy of the backfill (see there).
 */
export const ROLLUPS = {
  hour: {
    table: 'hit_hour',
    bucketMs: HOUR_MS,
    keys: ['accountId', 'uploadId', 'deviceId', ...LIST, 'protocol'],
    measures: [{ column: 'hits', of: 'count' }, { column: 'packets', of: 'sum', sum: 'packets' }, { column: 'bytes', of: 'sum', sum: 'bytes' }, ...SPAN],
  },
  dayHost: {
    table: 'hit_day_host',
    bucketMs: DAY_MS,
    keys: ['accountId', 'uploadId', 'deviceId', 'internalIp', ...LIST],
    measures: [{ column: 'hits', of: 'count' }, { column: 'packets', of: 'sum', sum: 'packets' }, ...SPAN],
  },
} as const satisfies Record<string, RollupGrain>;

export const ROLLUP_GRAINS: readonly RollupGrain[] = Object.values(ROLLUPS);

/** A roll-up row by column name. */
export type RollupRow = Record<string, string | number>;

/** The roll-up table's columns, as written: keys, bucket_at, measures. */
export function rollupColumns(grain: RollupGrain): string[] {
  return [...grain.keys.map((k) => FLOW_HIT_COLUMNS[k].sql), 'bucket_at', ...grain.measures.map((m) => m.column)];
}

/** The roll-up rows of one grain for a set of hits (an upload's). */
export function rollupRows(grain: RollupGrain, hits: readonly NewHit[]): RollupRow[] {
  const rows = new Map<string, RollupRow>();
  const keys = grain.keys.map((k) => [k, FLOW_HIT_COLUMNS[k].sql] as const);
  for (const h of hits) {
    const bucketAt = Math.floor(h.firstSeenAt / grain.bucketMs) * grain.bucketMs;
    let id = String(bucketAt);
    for (const [k] of keys) id += `|${h[k]}`;
    let r = rows.get(id);
    if (!r) {
      r = { bucket_at: bucketAt };
      for (const [k, sql] of keys) r[sql] = h[k];
      for (const m of grain.measures) r[m.column] = m.of === 'count' || m.of === 'sum' ? 0 : h[m.key];
      rows.set(id, r);
    }
    for (const m of grain.measures) {
      if (m.of === 'count') (r[m.column] as number)++;
      else if (m.of === 'sum') (r[m.column] as number) += hitSum(h, m.sum);
      else if (m.of === 'min') r[m.column] = Math.min(r[m.column] as number, h[m.key]);
      else r[m.column] = Math.max(r[m.column] as number, h[m.key]);
    }
  }
  return [...rows.values()];
}

export async function insertRollups(em: EntityManager, hits: readonly NewHit[]): Promise<void> {
  for (const grain of ROLLUP_GRAINS) {
    const columns = rollupColumns(grain).map((sql) => ({ key: sql, sql }));
    await bulkInsertObjects(em, grain.table, columns, rollupRows(grain, hits));
  }
}

const bucketSql = (em: EntityManager, ms: number) => (dialectOf(em) === 'mysql' ? `(first_seen_at DIV ${ms}) * ${ms}` : `(first_seen_at / ${ms}) * ${ms}`);

/** The SELECT that computes a grain's rows from flow_hit rows matching `where`, in rollupColumns' order. */
export function rollupSelectSql(em: EntityManager, grain: RollupGrain, where: string): string {
  const keys = grain.keys.map((k) => FLOW_HIT_COLUMNS[k].sql);
  const bucket = bucketSql(em, grain.bucketMs);
  const measure = (m: Measure) =>
    m.of === 'count' ? 'COUNT(*)' : m.of === 'sum' ? `SUM(${hitSumSql(m.sum)})` : `${m.of.toUpperCase()}(${FLOW_HIT_COLUMNS[m.key].sql})`;
  return `SELECT ${[...keys, bucket, ...grain.measures.map(measure)].join(', ')} FROM flow_hit WHERE ${where} GROUP BY ${[...keys, bucket].join(', ')}`;
}

/**
 * Recomputes, from the flow hits left, the roll-up rows of one upload in the buckets that contain the given
 * instants (a deletion of some of its hits happened there).
 */
export async function rebuildUploadRollups(em: EntityManager, uploadId: number, instants: Iterable<number>): Promise<void> {
  for (const grain of ROLLUP_GRAINS) {
    const buckets = new Set<number>();
    for (const at of instants) buckets.add(Math.floor(at / grain.bucketMs) * grain.bucketMs);
    for (const b of [...buckets].sort((x, y) => x - y)) {
      await execute(em, `DELETE FROM ${grain.table} WHERE upload_id = ? AND bucket_at = ?`, [uploadId, b]);
      await execute(
        em,
        `INSERT INTO ${grain.table} (${rollupColumns(grain).join(', ')}) ${rollupSelectSql(em, grain, 'upload_id = ? AND first_seen_at >= ? AND first_seen_at < ?')}`,
        [uploadId, b, b + grain.bucketMs],
      );
    }
  }
}
