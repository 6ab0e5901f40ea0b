import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { AccountHits } from '../hit-memory';
import { select } from '../hit-memory.report';
import { TimeBucket } from '../report.enums';
import { TimelineBucketRow } from '../report.types';
import { bucketIndex, localBuckets, nextBucketStart, SLOT_MS } from '../timeline';

/** Hits per local hour or day (timeline.sql.ts), from the store: each hit's 15-minute UTC slot picks its bucket. */
export function timeline(data: AccountHits, f: ResolvedHitFilter, bucket: TimeBucket, zone: string): TimelineBucketRow[] {
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
    end: new Date(i + 1 < starts.length ? starts[i + 1] : nextBucketStart(start, bucket, zone)),
    hits: hits[i],
    inbound: inbound[i],
    outbound: hits[i] - inbound[i],
  }));
}
