import { DateTime, IANAZone } from 'luxon';
import { TimeBucket } from './report.enums';

/** Every zone offset in use is a multiple of 15 minutes: each such UTC slot falls in exactly one local bucket. */
export const SLOT_MS = 15 * 60_000;

export function validTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

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
