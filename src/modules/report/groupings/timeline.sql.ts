import { DataSource } from 'typeorm';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { HOUR_MS } from '../../flow-hit/hit-rollup';
import { TimeBucket } from '../report.enums';
import { TimelineBucketRow } from '../report.types';
import { localBuckets, SLOT_MS, slotsToBuckets } from '../timeline';
import { SqlDialect } from './sql-dialect';
import { FLOW_HITS, HitTable, rollupFor } from './sql-source';

/**
 * Hits per local hour or day in `zone`, split by direction, every bucket present (timeline.memory.ts is its
 * pair). SQL counts per 15-minute UTC slot (every zone offset is a multiple of 15 minutes, so a slot never
 * straddles a local bucket), and the slots are summed into local buckets here.
 */
export async function timeline(
  dataSource: DataSource,
  dialect: SqlDialect,
  f: ResolvedHitFilter,
  bucket: TimeBucket,
  zone: string,
  table: HitTable = FLOW_HITS,
): Promise<TimelineBucketRow[]> {
  const starts = localBuckets(f.from, f.to, bucket, zone);
  // Hourly roll-ups serve zones whose buckets start on UTC hours (nearly all); a zone offset by :30 or :45
  // (India, Nepal, parts of Australia) splits hours, so its timeline counts raw hits per 15-minute slot.
  const hourly = starts.every((s) => s % HOUR_MS === 0);
  const hour = table.rollups.filter((r) => r.name === 'hour');
  const src = table.source(dataSource, f, hourly ? rollupFor(f, ['direction'], false, hour) : null, ['direction'], { at: true });
  const slot = dialect.intDiv('u.at_ms', SLOT_MS);
  const rows: Array<Record<string, string | number | null>> = await dataSource.query(
    `SELECT ${slot} AS slot, u.direction AS direction, SUM(u.hits) AS hits FROM (${src.sql}) u GROUP BY ${slot}, u.direction`,
    src.params,
  );
  return slotsToBuckets(starts, bucket, zone, rows);
}
