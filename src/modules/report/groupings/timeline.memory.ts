import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { AccountHits, Block } from '../hit-memory';
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
    if (seg.whole) {
      // All of a block: its hits per (slot, direction), counted once per block.
      const s = blockSlots(seg.whole);
      for (let p = 0; p < s.slot.length; p++) {
        const b = bucketOfSlot[s.slot[p] - slot0];
        if (b < 0) continue;
        hits[b] += s.hits[p];
        if (s.direction[p] === inboundCode) inbound[b] += s.hits[p];
      }
      continue;
    }
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

/** A block's hits per 15-minute UTC slot and direction, slots ascending (a block's hits are in capture order). */
interface BlockSlots {
  slot: Float64Array;
  direction: Uint8Array;
  hits: Float64Array;
}

/** Blocks never change (hit-memory.ts): their slot counts are made once, when first asked. */
const blockSlotsCache = new WeakMap<Block, BlockSlots>();

function blockSlots(b: Block): BlockSlots {
  const known = blockSlotsCache.get(b);
  if (known) return known;
  const slot: number[] = [];
  const direction: number[] = [];
  const hits: number[] = [];
  // Per direction code, the index of its entry in the current slot (-1: none yet).
  const at = new Int32Array(256).fill(-1);
  let current = NaN;
  let opened: number[] = [];
  for (let i = 0; i < b.n; i++) {
    const s = Math.floor(b.at[i] / SLOT_MS);
    if (s !== current) {
      for (const d of opened) at[d] = -1;
      opened = [];
      current = s;
    }
    const d = b.direction[i];
    if (at[d] < 0) {
      at[d] = hits.length;
      opened.push(d);
      slot.push(s);
      direction.push(d);
      hits.push(0);
    }
    hits[at[d]]++;
  }
  const made = { slot: Float64Array.from(slot), direction: Uint8Array.from(direction), hits: Float64Array.from(hits) };
  blockSlotsCache.set(b, made);
  return made;
}
