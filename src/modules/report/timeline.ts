import { DateTime, IANAZone } from 'luxon';
import { Direction } from '../flow-hit/flow-hit.enums';
import { TimeBucket } from './report.enums';
import { TimelineBucketRow } from './report.types';

/** Every zone offset in use is a multiple of 15 minutes: each such UTC slot falls in exactly one local bucket. */
export const SLOT_MS = 15 * 60_000;

export function validTimeZone(zone: string): boolean {
  // Asked on every timeline and dashboard; luxon builds an Intl.DateTimeFormat to answer, so valid zones are kept
  // (a bounded set; an unknown zone is asked again).
  if (validZones.has(zone)) return true;
  const valid = IANAZone.isValidZone(zone);
  if (valid && validZones.size < 1_000) validZones.add(zone);
  return valid;
}

const validZones = new Set<string>();

/**
 * Local buckets covering [from, to) in `zone`: hours or calendar days, so a day around a DST change is 23
 * or 25 hours long. Every bucket is present, empty or not.
 */
export function localBuckets(from: number, to: number, bucket: TimeBucket, zone: string): number[] {
  const unit = bucket === TimeBucket.HOUR ? 'hour' : 'day';
  const starts: number[] = [];
  let t = DateTime.fromMillis(from, { zone }).startOf(unit);
  while (t.toMillis() < to) {
    starts.push(t.toMillis());
    t = t.plus({ [unit === 'hour' ? 'hours' : 'days']: 1 }).startOf(unit);
  }
  return starts;
}

/** Index of the bucket (by its start) that holds instant `at`; starts must be ascending. */
export function bucketIndex(starts: number[], at: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  if (hi < 0 || at < starts[0]) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The start of the bucket after the one starting at `start`. */
export function nextBucketStart(start: number, bucket: TimeBucket, zone: string): number {
  const [, second] = localBuckets(start, start + 26 * 3600_000, bucket, zone);
  return second;
}

/**
 * The local buckets starting at `starts`, from hit counts per 15-minute UTC slot and direction (what the SQL and
 * ClickHouse executors count): every bucket present, empty or not.
 */
export function slotsToBuckets(
  starts: number[],
  bucket: TimeBucket,
  zone: string,
  rows: ReadonlyArray<Record<string, string | number | null | undefined>>,
): TimelineBucketRow[] {
  const out = starts.map((start, i) => ({
    start: new Date(start),
    end: new Date(i + 1 < starts.length ? starts[i + 1] : nextBucketStart(start, bucket, zone)),
    hits: 0,
    inbound: 0,
    outbound: 0,
  }));
  for (const r of rows) {
    const i = bucketIndex(starts, Number(r.slot) * SLOT_MS);
    if (i < 0) continue;
    const count = Number(r.hits ?? 0);
    out[i].hits += count;
    if (r.direction === Direction.INBOUND) out[i].inbound += count;
    else out[i].outbound += count;
  }
  return out;
}
