import type { Connection } from './flows/fold';

/**
 * The distinct matchable external addresses one upload saw (every connection end that can cross the internet:
 * the only ends the matcher looks up), kept so that a list change finds the stored uploads it affects without
 * re-reading their captures (retro-hunt). Pure: no database.
 *
 * Encoding: IPv4 as sorted, distinct uint32 (4 bytes big-endian each), IPv6 as sorted, distinct 16-byte
 * big-endian addresses. Sorted fixed-width entries intersect with sorted ranges by binary search, and the
 * bytes compare as the IOC table's range keys do (IPv4 lives in ::ffff:0:0/96 there, see ioc-range.ts).
 */
export interface AddressSet {
  v4: Uint32Array;
  /** 16 bytes per address, sorted. */
  v6: Buffer;
}

/** A range of the IOC key space (ioc.range_start/range_end: 32 hex digits), both ends included. */
export interface KeyRange {
  start: string;
  end: string;
}

const V4_PREFIX = '00000000000000000000ffff';

export function addressSetOf(connections: readonly Connection[]): AddressSet {
  const v4 = new Set<number>();
  const v6 = new Map<string, Buffer>();
  for (const c of connections) {
    for (const end of [c.initiator, c.responder]) {
      if (!end.canCrossInternet) continue;
      // An IPv4-mapped IPv6 end (::ffff:a.b.c.d) is matched as its IPv4 address (ioc-index.ts): kept as one.
      if (end.v6 && end.v6[0] === 0 && end.v6[1] === 0 && end.v6[2] >>> 0 === 0xffff) v4.add(end.v6[3] >>> 0);
      else if (end.v6) {
        const b = Buffer.alloc(16);
        for (let i = 0; i < 4; i++) b.writeUInt32BE(end.v6[i] >>> 0, i * 4);
        v6.set(b.toString('hex'), b);
      } else v4.add(end.v4 >>> 0);
    }
  }
  const sorted4 = Uint32Array.from(v4).sort();
  const keys6 = [...v6.keys()].sort();
  return { v4: sorted4, v6: Buffer.concat(keys6.map((k) => v6.get(k) as Buffer)) };
}

export function v6Count(set: AddressSet): number {
  return set.v6.length / 16;
}

/** IPv4 then IPv6 as bytes: what is stored (upload_address_set.data). */
export function encodeAddressSet(set: AddressSet): { v4: Buffer; v6: Buffer } {
  const v4 = Buffer.alloc(set.v4.length * 4);
  for (let i = 0; i < set.v4.length; i++) v4.writeUInt32BE(set.v4[i], i * 4);
  return { v4, v6: set.v6 };
}

export function decodeAddressSet(v4Bytes: Uint8Array, v6Bytes: Uint8Array): AddressSet {
  const b4 = Buffer.from(v4Bytes.buffer, v4Bytes.byteOffset, v4Bytes.byteLength);
  const v4 = new Uint32Array(b4.length / 4);
  for (let i = 0; i < v4.length; i++) v4[i] = b4.readUInt32BE(i * 4);
  return liftMapped({ v4, v6: Buffer.from(v6Bytes.buffer, v6Bytes.byteOffset, v6Bytes.byteLength) });
}

/**
 * Sets stored before addressSetOf kept IPv4-mapped ends as IPv4 held them as IPv6, where no IPv4 entry's range
 * meets them: moved to the IPv4 part here. They sort together (::ffff:0:0/96), so the rest stays sorted.
 */
function liftMapped(set: AddressSet): AddressSet {
  const v6 = set.v6;
  let first = -1;
  let last = -1;
  for (let o = 0; o < v6.length; o += 16) {
    if (v6.readUInt32BE(o) !== 0 || v6.readUInt32BE(o + 4) !== 0 || v6.readUInt32BE(o + 8) !== 0xffff) continue;
    if (first < 0) first = o;
    last = o;
  }
  if (first < 0) return set;
  const lifted = new Set(set.v4);
  for (let o = first; o <= last; o += 16) lifted.add(v6.readUInt32BE(o + 12));
  return { v4: Uint32Array.from(lifted).sort(), v6: Buffer.concat([v6.subarray(0, first), v6.subarray(last + 16)]) };
}

/**
 * Ranges prepared for intersection: split by family (an IPv4 part as uint32 bounds, the rest as 16-byte bounds),
 * sorted and merged so that they are disjoint.
 */
export interface RangeSet {
  /** The IPv4 parts, disjoint and sorted: range i is [v4Start[i], v4End[i]]. */
  v4Start: Uint32Array;
  v4End: Uint32Array;
  v6: Array<[Buffer, Buffer]>;
}

/** The last 8 hex digits of a 32-digit key (lower case, as keys are stored and rangeSetOf makes them). */
function hex8(key: string): number {
  let v = 0;
  for (let i = 24; i < 32; i++) {
    const c = key.charCodeAt(i);
    v = v * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return v;
}

/** Row indexes below this fit beside a uint32 in a float64 sort key (start * 2^21 + index < 2^53). */
const PACKED_INDEX = 2 ** 21;

const V4_LOW = V4_PREFIX + '00000000';
const V4_HIGH = V4_PREFIX + 'ffffffff';

/**
 * Collects ranges into a RangeSet. A whole list's ranges come here when a list is attached, detached or deleted (a
 * million for a big feed): they are added page by page as they are read (the caller yields between pages), held in
 * typed arrays, and sorted only when they did not come in order, with one native sort of packed keys. A pair array
 * sorted with a comparator held the event loop about 3 s for 1M ranges, inside the retro-hunt's planning.
 */
export class RangeSetBuilder {
  private starts = new Uint32Array(1024);
  private ends = new Uint32Array(1024);
  private m = 0;
  private sorted = true;
  private readonly v6: Array<[Buffer, Buffer]> = [];
  private added = 0;

  /** Ranges added (IPv6 ones included). */
  get size(): number {
    return this.added;
  }

  add(r: KeyRange): void {
    this.added++;
    const start = r.start.toLowerCase();
    const end = r.end.toLowerCase();
    // The part inside ::ffff:0:0/96 is IPv4.
    const lo = start > V4_LOW ? start : V4_LOW;
    const hi = end < V4_HIGH ? end : V4_HIGH;
    if (lo <= hi) {
      if (this.m === this.starts.length) {
        const grow = (a: Uint32Array) => {
          const b = new Uint32Array(a.length * 2);
          b.set(a);
          return b;
        };
        this.starts = grow(this.starts);
        this.ends = grow(this.ends);
      }
      const s = hex8(lo);
      if (this.m > 0 && s < this.starts[this.m - 1]) this.sorted = false;
      this.starts[this.m] = s;
      this.ends[this.m] = hex8(hi);
      this.m++;
    }
    // Whatever lies outside it is IPv6 (an IPv6 end never falls inside it: addressSetOf and decodeAddressSet keep
    // IPv4-mapped ends as IPv4).
    if (start < V4_LOW || end > V4_HIGH) this.v6.push([Buffer.from(start, 'hex'), Buffer.from(end, 'hex')]);
  }

  build(): RangeSet {
    const { starts, ends, m, sorted } = this;
    let order: ArrayLike<number> | null = null;
    if (!sorted && m <= PACKED_INDEX) {
      const keys = new Float64Array(m);
      for (let i = 0; i < m; i++) keys[i] = starts[i] * PACKED_INDEX + i;
      keys.sort();
      for (let i = 0; i < m; i++) keys[i] = keys[i] - Math.floor(keys[i] / PACKED_INDEX) * PACKED_INDEX;
      order = keys;
    } else if (!sorted) order = Array.from({ length: m }, (_, i) => i).sort((a, b) => starts[a] - starts[b]);
    const outStart = new Uint32Array(m);
    const outEnd = new Uint32Array(m);
    let k = 0;
    for (let j = 0; j < m; j++) {
      const i = order === null ? j : order[j];
      const s = starts[i];
      const e = ends[i];
      // Overlapping or adjacent to the last one (its end + 1, unless that end is the last address): one range.
      if (k > 0 && (outEnd[k - 1] === 0xffffffff || s <= outEnd[k - 1] + 1)) {
        if (e > outEnd[k - 1]) outEnd[k - 1] = e;
      } else {
        outStart[k] = s;
        outEnd[k] = e;
        k++;
      }
    }
    return { v4Start: outStart.slice(0, k), v4End: outEnd.slice(0, k), v6: mergeV6(this.v6) };
  }
}

export function rangeSetOf(ranges: readonly KeyRange[]): RangeSet {
  const b = new RangeSetBuilder();
  for (const r of ranges) b.add(r);
  return b.build();
}

/** IPv6 parts (few: feeds are mostly IPv4) sorted by start and merged where they overlap. */
function mergeV6(ranges: Array<[Buffer, Buffer]>): Array<[Buffer, Buffer]> {
  ranges.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out: Array<[Buffer, Buffer]> = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && Buffer.compare(r[0], last[1]) <= 0) {
      if (Buffer.compare(r[1], last[1]) > 0) last[1] = r[1];
    } else out.push([r[0], r[1]]);
  }
  return out;
}

/** Whether any address of the set lies in one of the ranges: the smaller side is walked, the other searched. */
export function intersects(set: AddressSet, ranges: RangeSet): boolean {
  return intersectsV4(set.v4, ranges.v4Start, ranges.v4End) || intersectsV6(set.v6, ranges.v6);
}

function intersectsV4(addresses: Uint32Array, starts: Uint32Array, ends: Uint32Array): boolean {
  if (addresses.length === 0 || starts.length === 0) return false;
  if (addresses.length <= starts.length) {
    for (const a of addresses) {
      // The last range starting at or before a.
      let lo = 0;
      let hi = starts.length - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (starts[mid] <= a) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (at >= 0 && ends[at] >= a) return true;
    }
    return false;
  }
  for (let r = 0; r < starts.length; r++) {
    const s = starts[r];
    // The first address at or after s.
    let lo = 0;
    let hi = addresses.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (addresses[mid] < s) lo = mid + 1;
      else hi = mid;
    }
    if (lo < addresses.length && addresses[lo] <= ends[r]) return true;
  }
  return false;
}

function intersectsV6(addresses: Buffer, ranges: Array<[Buffer, Buffer]>): boolean {
  const n = addresses.length / 16;
  if (n === 0 || ranges.length === 0) return false;
  const at = (i: number) => addresses.subarray(i * 16, i * 16 + 16);
  for (const [s, e] of ranges) {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(at(mid), s) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo < n && Buffer.compare(at(lo), e) <= 0) return true;
  }
  return false;
}
