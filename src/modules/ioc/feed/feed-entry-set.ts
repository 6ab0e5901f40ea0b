// A feed's entries gathered in memory, then deduplicated and visited in index order. Pure.
//
// Bulk loads insert far faster in key order (every B-tree but one then grows at its right edge) and a
// REPLACE can then be a merge with the list's rows read in the same order: no per-entry lookups, no set of
// a million strings. IPv4 entries are kept as numbers (network * 64 + prefix) and their text is made only
// when a row is written.

import { Cidr, Cidr6 } from '../../../common/net/cidr';
import { formatIpv4 } from '../../../common/net/ip';
import { cidrRangeKeys, ipv4Key } from '../ioc-range';

/** One distinct entry, in `(rangeStart ASC, rangeEnd DESC)` order. */
export interface OrderedEntry {
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly prefix: number;
  /** 32-digit hex keys, as stored in `ioc.range_start` / `ioc.range_end`. */
  readonly start: string;
  readonly end: string;
  readonly comment: string | null;
  /** Epoch ms; null when the feed gives none. */
  readonly expiresAt: number | null;
}

interface V6Entry {
  readonly cidr: Cidr6;
  readonly start: string;
  readonly end: string;
  readonly order: number;
}

/** Orders two (start, end) key pairs as the import does: start ascending, then end descending. */
export function compareRange(aStart: string, aEnd: string, bStart: string, bEnd: string): number {
  if (aStart !== bStart) return aStart < bStart ? -1 : 1;
  if (aEnd !== bEnd) return aEnd > bEnd ? -1 : 1;
  return 0;
}

export class FeedEntrySet {
  private v4Keys = new Float64Array(4096);
  private v4Order = new Uint32Array(4096);
  private n4 = 0;
  private readonly v6: V6Entry[] = [];
  /** By arrival order; undefined when there is none (sparse arrays stay small for comment-less feeds). */
  private readonly comments: Array<string | undefined> = [];
  private readonly expiries: Array<number | undefined> = [];
  private arrivals = 0;
  private sorted: { v4: Uint32Array; v6: V6Entry[]; distinct: number; duplicates: number } | null = null;

  /** Adds one entry as the feed gives it; repeats are counted, and the first one's comment and expiry win. */
  add(cidr: Cidr, comment: string | null = null, expiresAt: number | null = null): void {
    if (this.sorted) throw new Error('FeedEntrySet: add after sort');
    const order = this.arrivals++;
    if (comment !== null) this.comments[order] = comment;
    if (expiresAt !== null) this.expiries[order] = expiresAt;
    if (cidr.family === 4) this.pushV4(cidr.network, cidr.prefix, order);
    else {
      const { start, end } = cidrRangeKeys(cidr);
      this.v6.push({ cidr, start, end, order });
    }
  }

  /** Adds an IPv4 network (host bits clear) without comment or expiry: the reader's fast path for plain address lines. */
  addV4(network: number, prefix: number): void {
    if (this.sorted) throw new Error('FeedEntrySet: add after sort');
    this.pushV4(network, prefix, this.arrivals++);
  }

  private pushV4(network: number, prefix: number, order: number): void {
    if (this.n4 === this.v4Keys.length) {
      const keys = new Float64Array(this.n4 * 2);
      keys.set(this.v4Keys);
      this.v4Keys = keys;
      const ord = new Uint32Array(this.n4 * 2);
      ord.set(this.v4Order);
      this.v4Order = ord;
    }
    this.v4Keys[this.n4] = network * 64 + prefix;
    this.v4Order[this.n4++] = order;
  }

  /** Entries offered, repeats included. */
  get offered(): number {
    return this.arrivals;
  }

  /** Distinct entries (after sort()). */
  get distinct(): number {
    return this.done().distinct;
  }

  /** Repeats of an entry offered earlier. */
  get duplicates(): number {
    return this.done().duplicates;
  }

  /**
   * Sorts and deduplicates; `pause` is awaited between passes so a caller can hand the event loop back
   * (IPv4: a stable LSD radix sort in three passes of at most 13 bits each, no comparator calls).
   */
  async sort(pause: () => Promise<void> = async () => undefined): Promise<void> {
    if (this.sorted) return;
    const n = this.n4;
    const keys = this.v4Keys;
    // network * 64 + prefix < 2^38: digits of 13, 13 and 12 bits. Stable, so equal keys keep arrival order. The
    // key is split once into its low 26 bits and the rest, so the passes take integer digits (a float modulo per
    // digit cost more than the sort's moves).
    const low = new Int32Array(n);
    const high = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const h = Math.floor(k / 67108864);
      high[i] = h;
      low[i] = k - h * 67108864;
    }
    let from = new Uint32Array(n);
    for (let i = 0; i < n; i++) from[i] = i;
    let to = new Uint32Array(n);
    const counts = new Uint32Array(8192);
    for (let pass = 0; pass < 3; pass++) {
      const digits = pass === 2 ? high : low;
      const shift = pass === 2 ? 0 : pass * 13;
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[(digits[from[i]] >>> shift) & 8191]++;
      let sum = 0;
      for (let d = 0; d < 8192; d++) {
        const c = counts[d];
        counts[d] = sum;
        sum += c;
      }
      for (let i = 0; i < n; i++) {
        const k = from[i];
        to[counts[(digits[k] >>> shift) & 8191]++] = k;
      }
      [from, to] = [to, from];
      await pause();
    }
    let w = 0;
    for (let r = 0; r < n; r++) if (w === 0 || keys[from[r]] !== keys[from[w - 1]]) from[w++] = from[r];
    const v4 = from.subarray(0, w);
    await pause();
    this.v6.sort((a, b) => compareRange(a.start, a.end, b.start, b.end) || a.order - b.order);
    const v6: V6Entry[] = [];
    for (const e of this.v6) if (v6.length === 0 || compareRange(v6[v6.length - 1].start, v6[v6.length - 1].end, e.start, e.end) !== 0) v6.push(e);
    const distinct = v4.length + v6.length;
    this.sorted = { v4, v6, distinct, duplicates: this.arrivals - distinct };
  }

  private done(): { v4: Uint32Array; v6: V6Entry[]; distinct: number; duplicates: number } {
    if (!this.sorted) throw new Error('FeedEntrySet: call sort() first');
    return this.sorted;
  }

  /** Every distinct entry in `(rangeStart ASC, rangeEnd DESC)` order, each a new object. */
  *ordered(): Generator<OrderedEntry> {
    const c = this.cursor();
    while (c.next()) yield { cidr: c.cidr, family: c.family, prefix: c.prefix, start: c.start, end: c.end, comment: c.comment, expiresAt: c.expiresAt };
  }

  /**
   * The same entries as ordered(), read through one object whose fields each next() overwrites: no object per entry
   * (a million of them in a 1M-entry import). Copy what must outlive the step.
   */
  cursor(): OrderedCursor {
    const { v4, v6 } = this.done();
    return new OrderedCursor(v4, this.v4Keys, this.v4Order, v6, this.comments, this.expiries);
  }
}

/** "/0" to "/32". */
const SLASH = Array.from({ length: 33 }, (_, i) => `/${i}`);

/** FeedEntrySet.cursor(): the current entry's fields, overwritten by each next(). */
export class OrderedCursor implements OrderedEntry {
  cidr = '';
  family: 4 | 6 = 4;
  prefix = 0;
  start = '';
  end = '';
  comment: string | null = null;
  expiresAt: number | null = null;
  private i = 0;
  private j = 0;
  /** The next IPv4 entry's keys, made once it is compared with the next IPv6 entry. */
  private headStart: string | null = null;
  private headEnd = '';

  constructor(
    /** Sorted distinct IPv4 entries, as indexes into keys and orders. */
    private readonly v4: Uint32Array,
    /** network * 64 + prefix, and arrival order, by index. */
    private readonly keys: Float64Array,
    private readonly orders: Uint32Array,
    private readonly v6: readonly V6Entry[],
    private readonly comments: ReadonlyArray<string | undefined>,
    private readonly expiries: ReadonlyArray<number | undefined>,
  ) {}

  /** Moves to the next entry; false past the last. */
  next(): boolean {
    const { v4, v6 } = this;
    const has4 = this.i < v4.length;
    const k = has4 ? v4[this.i] : 0;
    const key = has4 ? this.keys[k] : 0;
    const prefix = key % 64;
    const network = (key - prefix) / 64;
    if (has4 && this.headStart === null) {
      this.headStart = ipv4Key(network);
      this.headEnd = prefix === 32 ? this.headStart : ipv4Key(network + 2 ** (32 - prefix) - 1);
    }
    const e6 = this.j < v6.length ? v6[this.j] : null;
    if (has4 && (e6 === null || compareRange(this.headStart as string, this.headEnd, e6.start, e6.end) <= 0)) {
      const order = this.orders[k];
      this.i++;
      this.cidr = formatIpv4(network) + SLASH[prefix];
      this.family = 4;
      this.prefix = prefix;
      this.start = this.headStart as string;
      this.end = this.headEnd;
      this.comment = this.comments[order] ?? null;
      this.expiresAt = this.expiries[order] ?? null;
      this.headStart = null;
      return true;
    }
    if (e6 === null) return false;
    this.j++;
    this.cidr = e6.cidr.text;
    this.family = 6;
    this.prefix = e6.cidr.prefix;
    this.start = e6.start;
    this.end = e6.end;
    this.comment = this.comments[e6.order] ?? null;
    this.expiresAt = this.expiries[e6.order] ?? null;
    return true;
  }
}
