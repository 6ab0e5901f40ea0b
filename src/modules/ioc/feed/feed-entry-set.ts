// A feed's entries gathered in memory, then deduplicated and visited in index order. Pure.
//
// Bulk loads insert far faster in key order (every B-tree but one then grows at its right edge) and a
// REPLACE can then be a merge with the list's rows read in the same order: no per-entry lookups, no set of
// a million strings. Entries are kept as numbers (IPv4: network * 64 + prefix; IPv6: four words and a prefix) and
// their text is made only when a row is written.

import { Cidr, IPV6_MASK_WORDS } from '../../../common/net/cidr';
import { formatIpv4, formatIpv6Words, ipv6ToWords } from '../../../common/net/ip';
import { ipv4Key, ipv6Key } from '../ioc-range';

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
  /** IPv6 networks: four big-endian words each, their prefixes and arrival orders. */
  private v6Words = new Uint32Array(4096);
  private v6Prefix = new Uint8Array(1024);
  private v6Order = new Uint32Array(1024);
  private n6 = 0;
  /** By arrival order; undefined when there is none (sparse arrays stay small for comment-less feeds). */
  private readonly comments: Array<string | undefined> = [];
  private readonly expiries: Array<number | undefined> = [];
  private arrivals = 0;
  private sorted: Sorted | null = null;

  /** Adds one entry as the feed gives it; repeats are counted, and the first one's comment and expiry win. */
  add(cidr: Cidr, comment: string | null = null, expiresAt: number | null = null): void {
    if (this.sorted) throw new Error('FeedEntrySet: add after sort');
    const order = this.arrivals++;
    if (comment !== null) this.comments[order] = comment;
    if (expiresAt !== null) this.expiries[order] = expiresAt;
    if (cidr.family === 4) this.pushV4(cidr.network, cidr.prefix, order);
    else this.pushV6(ipv6ToWords(cidr.network, WORDS), cidr.prefix, order);
  }

  /** Adds an IPv4 network (host bits clear) without comment or expiry: the reader's fast path for plain address lines. */
  addV4(network: number, prefix: number): void {
    if (this.sorted) throw new Error('FeedEntrySet: add after sort');
    this.pushV4(network, prefix, this.arrivals++);
  }

  /** Adds an IPv6 network (four big-endian words, host bits clear) without comment or expiry (the reader's fast path). */
  addV6(network: ArrayLike<number>, prefix: number): void {
    if (this.sorted) throw new Error('FeedEntrySet: add after sort');
    this.pushV6(network, prefix, this.arrivals++);
  }

  private pushV6(network: ArrayLike<number>, prefix: number, order: number): void {
    if (this.n6 === this.v6Prefix.length) {
      this.v6Words = grown(this.v6Words, this.n6 * 8);
      this.v6Prefix = grown(this.v6Prefix, this.n6 * 2);
      this.v6Order = grown(this.v6Order, this.n6 * 2);
    }
    const at = this.n6 * 4;
    this.v6Words[at] = network[0];
    this.v6Words[at + 1] = network[1];
    this.v6Words[at + 2] = network[2];
    this.v6Words[at + 3] = network[3];
    this.v6Prefix[this.n6] = prefix;
    this.v6Order[this.n6++] = order;
  }

  private pushV4(network: number, prefix: number, order: number): void {
    if (this.n4 === this.v4Keys.length) {
      this.v4Keys = grown(this.v4Keys, this.n4 * 2);
      this.v4Order = grown(this.v4Order, this.n4 * 2);
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
    // IPv6: by network (word by word), then prefix (a shorter one ends later), then arrival; repeats dropped.
    const words = this.v6Words;
    const prefixes = this.v6Prefix;
    const orders = this.v6Order;
    const by6 = new Uint32Array(this.n6);
    for (let i = 0; i < by6.length; i++) by6[i] = i;
    by6.sort((a, b) => {
      const x = a * 4;
      const y = b * 4;
      for (let k = 0; k < 4; k++) if (words[x + k] !== words[y + k]) return words[x + k] - words[y + k];
      return prefixes[a] - prefixes[b] || orders[a] - orders[b];
    });
    let w6 = 0;
    for (let r = 0; r < by6.length; r++) if (w6 === 0 || !sameV6(words, prefixes, by6[r], by6[w6 - 1])) by6[w6++] = by6[r];
    const v6 = by6.subarray(0, w6);
    const distinct = v4.length + v6.length;
    this.sorted = { v4, v6, distinct, duplicates: this.arrivals - distinct };
  }

  private done(): Sorted {
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
    return new OrderedCursor(v4, this.v4Keys, this.v4Order, v6, this.v6Words, this.v6Prefix, this.v6Order, this.comments, this.expiries);
  }
}

/** Sorted distinct entries, as indexes into each family's arrays. */
interface Sorted {
  v4: Uint32Array;
  v6: Uint32Array;
  distinct: number;
  duplicates: number;
}

const WORDS = new Uint32Array(4);

/** A copy of a typed array, `length` elements long (the arrays above grow by doubling). */
function grown<T extends Float64Array | Uint32Array | Uint8Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

function sameV6(words: Uint32Array, prefixes: Uint8Array, a: number, b: number): boolean {
  const x = a * 4;
  const y = b * 4;
  return (
    prefixes[a] === prefixes[b] && words[x] === words[y] && words[x + 1] === words[y + 1] && words[x + 2] === words[y + 2] && words[x + 3] === words[y + 3]
  );
}

/** The last word of an IPv6 network's range: its word `k` with the host bits of `prefix` set. */
function lastWord(word: number, k: number, prefix: number): number {
  return (word | ~IPV6_MASK_WORDS[prefix * 4 + k]) >>> 0;
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

  constructor(
    /** Sorted distinct IPv4 entries, as indexes into keys and orders. */
    private readonly v4: Uint32Array,
    /** network * 64 + prefix, and arrival order, by index. */
    private readonly keys: Float64Array,
    private readonly orders: Uint32Array,
    /** Sorted distinct IPv6 entries, as indexes into words (four each), prefixes and orders6. */
    private readonly v6: Uint32Array,
    private readonly words: Uint32Array,
    private readonly prefixes: Uint8Array,
    private readonly orders6: Uint32Array,
    private readonly comments: ReadonlyArray<string | undefined>,
    private readonly expiries: ReadonlyArray<number | undefined>,
  ) {}

  /** Moves to the next entry; false past the last. */
  next(): boolean {
    const { v4, v6, words: w } = this;
    const has4 = this.i < v4.length;
    const has6 = this.j < v6.length;
    const k = has4 ? v4[this.i] : 0;
    const m = has6 ? v6[this.j] : 0;
    const at = m * 4;
    if (has4) {
      const key = this.keys[k];
      const prefix = key % 64;
      const network = (key - prefix) / 64;
      // The IPv4 entry goes first unless the IPv6 one's range (compared as IPv4-mapped words) is ordered before it.
      if (!has6 || compareV4V6(network, prefix, w, at, this.prefixes[m]) <= 0) {
        const order = this.orders[k];
        this.i++;
        this.cidr = formatIpv4(network) + SLASH[prefix];
        this.family = 4;
        this.prefix = prefix;
        this.start = ipv4Key(network);
        this.end = prefix === 32 ? this.start : ipv4Key(network + 2 ** (32 - prefix) - 1);
        this.comment = this.comments[order] ?? null;
        this.expiresAt = this.expiries[order] ?? null;
        return true;
      }
    }
    if (!has6) return false;
    this.j++;
    const p6 = this.prefixes[m];
    const order = this.orders6[m];
    this.cidr = `${formatIpv6Words(w[at], w[at + 1], w[at + 2], w[at + 3])}/${p6}`;
    this.family = 6;
    this.prefix = p6;
    this.start = ipv6Key(w[at], w[at + 1], w[at + 2], w[at + 3]);
    this.end = p6 === 128 ? this.start : ipv6Key(lastWord(w[at], 0, p6), lastWord(w[at + 1], 1, p6), lastWord(w[at + 2], 2, p6), lastWord(w[at + 3], 3, p6));
    this.comment = this.comments[order] ?? null;
    this.expiresAt = this.expiries[order] ?? null;
    return true;
  }
}

/**
 * compareRange of an IPv4 network and an IPv6 one (words[at..at+3] and p6), without their keys: the IPv4 one is
 * ::ffff:network/(96 + prefix) in the shared key space.
 */
function compareV4V6(network: number, prefix: number, words: Uint32Array, at: number, p6: number): number {
  // Start keys: (0, 0, 0xffff, network) against the IPv6 words.
  if (words[at] !== 0 || words[at + 1] !== 0) return -1;
  if (words[at + 2] !== 0xffff) return words[at + 2] > 0xffff ? -1 : 1;
  if (words[at + 3] !== network) return network < words[at + 3] ? -1 : 1;
  // Same start: the one that ends later (the shorter prefix) goes first.
  const p4 = 96 + prefix;
  return p4 === p6 ? 0 : p4 < p6 ? -1 : 1;
}
