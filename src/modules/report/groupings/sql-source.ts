import { DataSource, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { FlowHit } from '../../flow-hit/flow-hit.entity';
import { applyHitDimensions, ResolvedHitFilter, rollupCanFilter } from '../../flow-hit/hit-filter';
import { DAY_MS, HOUR_MS } from '../../flow-hit/hit-rollup';
import { HitDayHost, HitHour } from '../hit-rollup.entity';

/**
 * The row sources of the SQL executor: the hourly roll-up, the daily per-host roll-up (hit-rollup.entity.ts)
 * and the raw hits, with the columns each has (entity property names, alike in all three).
 */
export interface RollupSource {
  name: 'hour' | 'dayHost';
  entity: typeof HitHour | typeof HitDayHost;
  grainMs: number;
  columns: readonly string[];
  bytes: boolean;
}

export const ROLLUPS: readonly RollupSource[] = [
  { name: 'hour', entity: HitHour, grainMs: HOUR_MS, columns: ['deviceId', 'direction', 'iocListId', 'severity', 'category', 'protocol'], bytes: true },
  { name: 'dayHost', entity: HitDayHost, grainMs: DAY_MS, columns: ['deviceId', 'internalIp', 'direction', 'iocListId', 'severity', 'category'], bytes: false },
];

/** The coarsest roll-up with every column asked for that can apply the filter; null: the raw hits. */
export function rollupFor(f: ResolvedHitFilter, columns: readonly string[], bytes: boolean, among: readonly RollupSource[] = ROLLUPS): RollupSource | null {
  return among.find((r) => (!bytes || r.bytes) && columns.every((c) => r.columns.includes(c)) && rollupCanFilter(f, r.columns.includes('protocol'))) ?? null;
}

export interface Sql {
  sql: string;
  params: unknown[];
}

export interface SourceOptions {
  at?: boolean;
  where?: <T extends ObjectLiteral>(qb: SelectQueryBuilder<T>) => void;
}

/**
 * What the SQL executor reads hits from: flow hits with their roll-ups (FLOW_HITS, below), or DNS hits
 * (dns-source.ts). A source gives rows of the columns asked for (entity property names of flow hits) plus hits,
 * packets, bytes, first_at, last_at and, with `at`, the capture instant.
 */
export interface HitTable {
  rollups: readonly RollupSource[];
  /** Whether a top grouping may rank from flow_hit's (account, severity, time, device, host, entry) index alone. */
  prunes: boolean;
  source(dataSource: DataSource, f: ResolvedHitFilter, rollup: RollupSource | null, columns: readonly string[], options?: SourceOptions): Sql;
}

/**
 * [from, to) split into the whole buckets of `grain` it contains (read from a roll-up) and the partial ones at
 * its edges (read from the raw hits). Buckets are UTC-aligned multiples of the grain.
 */
export function splitWindow(from: number, to: number, grainMs: number): { whole: [number, number] | null; edges: Array<[number, number]> } {
  const a = Math.ceil(from / grainMs) * grainMs;
  const b = Math.floor(to / grainMs) * grainMs;
  if (a >= b) return { whole: null, edges: [[from, to]] };
  const edges: Array<[number, number]> = [];
  if (from < a) edges.push([from, a]);
  if (b < to) edges.push([b, to]);
  return { whole: [a, b], edges };
}

const snake = (property: string) => property.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The hits matching `f` as one row source with columns `columns` plus hits, packets, bytes (not from dayHost),
 * first_at, last_at and, with `at`, the bucket or capture instant. Whole buckets of the window come from
 * `rollup` (when given), its edges from the raw hits: a 30-day report sums thousands of rows, not hundreds of
 * thousands. `where` adds conditions (on `h`, entity property names) to every part.
 */
export function source(
  dataSource: DataSource,
  f: ResolvedHitFilter,
  rollup: RollupSource | null,
  columns: readonly string[],
  options: SourceOptions = {},
): Sql {
  const split = rollup ? splitWindow(f.from, f.to, rollup.grainMs) : { whole: null, edges: [[f.from, f.to]] as Array<[number, number]> };
  const parts: Sql[] = [];
  const finish = <T extends ObjectLiteral>(qb: SelectQueryBuilder<T>) => {
    options.where?.(qb);
    const [sql, params] = applyHitDimensions(qb, f).getQueryAndParameters();
    parts.push({ sql, params });
  };
  if (split.whole && rollup) {
    const qb = dataSource
      .getRepository<ObjectLiteral>(rollup.entity)
      .createQueryBuilder('h')
      .where('h.accountId = :accountId AND h.bucketAt >= :wFrom AND h.bucketAt < :wTo', { accountId: f.accountId, wFrom: split.whole[0], wTo: split.whole[1] });
    // One select expression in a fixed order: TypeORM moves selected entity properties ahead of other
    // expressions, and a UNION matches columns by position.
    const list = [...columns.map((c) => `h.${snake(c)} AS ${c}`), 'h.hits AS hits', 'h.packets AS packets'];
    if (rollup.bytes) list.push('h.bytes AS bytes');
    list.push('h.first_seen_at AS first_at', 'h.last_seen_at AS last_at');
    if (options.at) list.push('h.bucket_at AS at_ms');
    qb.select(list.join(', '));
    finish(qb);
  }
  if (split.edges.length) {
    const qb = dataSource.getRepository(FlowHit).createQueryBuilder('h');
    const list = [...columns.map((c) => `h.${snake(c)} AS ${c}`), '1 AS hits', 'h.packets_forward + h.packets_reverse AS packets'];
    if (!rollup || rollup.bytes) list.push('h.bytes_forward + h.bytes_reverse AS bytes');
    list.push('h.first_seen_at AS first_at', 'h.last_seen_at AS last_at');
    if (options.at) list.push('h.first_seen_at AS at_ms');
    qb.select(list.join(', '));
    qb.where('h.accountId = :accountId', { accountId: f.accountId });
    const ranges = split.edges.map((_, i) => `(h.firstSeenAt >= :e${i}a AND h.firstSeenAt < :e${i}b)`).join(' OR ');
    qb.andWhere(
      `(${ranges})`,
      Object.fromEntries(
        split.edges.flatMap(([a, b], i) => [
          [`e${i}a`, a],
          [`e${i}b`, b],
        ]),
      ),
    );
    finish(qb);
  }
  return { sql: parts.map((p) => p.sql).join(' UNION ALL '), params: parts.flatMap((p) => p.params) };
}

/** Flow hits: flow_hit and its roll-ups. */
export const FLOW_HITS: HitTable = { rollups: ROLLUPS, prunes: true, source };
