// In-memory IOC index for one policy: which IOC entries contain an address. Pure: no DB, no GraphQL.
//
// Layout (struct of arrays, no per-entry objects on the hot path):
// - "rows" are accepted entries, IPv4 rows first, sorted by (network, prefix); IPv6 rows after,
//   grouped by network. Rows with the same network/prefix (one CIDR in several lists) form a "node";
//   inside a node ALLOW rows come first, then severity descending, list id, entry id.
// - IPv4: the address space is cut into non-overlapping segments, each holding the answer for its
//   addresses (the best BLOCK row of the most specific node covering it, after ALLOW suppression) next
//   to its start, so a lookup is one bucket read on the top bits plus a short search in one or two
//   cache lines. Each node links to the next wider node containing it: all matches are a walk up.
// - IPv6: one open-addressing hash of (masked network, prefix) -> node, probed once per prefix length
//   that nodes sharing the address's first 32 (or 16) bits use; a per-node answer as for IPv4.
// - IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 host: such addresses are looked up as IPv4, IPv6
//   entries inside ::ffff:0:0/96 are stored as IPv4 entries, and an IPv6 entry wide enough to contain
//   all of ::ffff:0:0/96 also matches every IPv4 address (stored as an extra IPv4 0.0.0.0/0 row).
//
// Expiry: entries already expired at build `now` are dropped (an earlier lookup `now` does not bring
// them back). Lookups take an optional `now` (epoch ms); without it the index answers as of build time;
// an entry matches while now < expiresAt. `validUntil` is the earliest remaining expiry: until
// then the precomputed best match is used; after it, lookups with `now` filter rows one by one, so
// callers should rebuild once `validUntil` passes (rebuilding 1M entries takes well under a second).
// There is no incremental patch: a policy's lists change rarely and a rebuild is cheap.

import { IPV6_MASK_WORDS } from '../../../common/net/cidr';
import { formatIpv4, formatIpv6, ipv6FromWords, ipv6ToWords, parseIp, ParsedIp } from '../../../common/net/ip';

export type IocListKind = 'BLOCK' | 'ALLOW';

export interface IocListInfo {
  readonly id: number;
  readonly kind: IocListKind;
  /** 0 no threat .. 5 full adversarial control. */
  readonly severity: number;
  readonly category: string;
}

export interface IocEntryInput {
  readonly id: number;
  readonly listId: number;
  readonly family: 4 | 6;
  /** uint32 for IPv4, bigint for IPv6; host bits are cleared. */
  readonly network: number | bigint;
  readonly prefix: number;
  /** Epoch ms; null/undefined never expires. */
  readonly expiresAt?: number | null;
}

export interface IocMatch {
  readonly entryId: number;
  readonly list: IocListInfo;
  readonly family: 4 | 6;
  readonly prefix: number;
  /** The entry's CIDR. Entries given as IPv6 inside ::ffff:0:0/96 keep their IPv6 text. */
  readonly cidr: string;
  readonly expiresAt: number | null;
  /** A BLOCK entry outranked by an ALLOW entry that contains the same address. */
  readonly suppressed: boolean;
}

export interface IocIndexStats {
  readonly lists: number;
  /** Accepted entries (expired ones excluded). */
  readonly entries: number;
  readonly ipv4Entries: number;
  readonly ipv6Entries: number;
  /** Distinct IPv4 / IPv6 networks (the same CIDR in several lists counts once). */
  readonly ipv4Networks: number;
  readonly ipv6Networks: number;
  readonly ipv4Segments: number;
  readonly ipv6PrefixLengths: number;
  readonly expiredAtBuild: number;
  /** Typed-array bytes held by the index (excludes the small list objects). */
  readonly bytes: number;
}

export interface IocIndexBuildOptions {
  /** Epoch ms; entries expiring at or before it are dropped. Default Date.now(). */
  readonly now?: number;
  /** Expected number of entries, to size the builder's arrays once. */
  readonly capacity?: number;
}

/** Where an IPv6 entry was stored as an IPv4 row (see the header), what to report. */
interface Ipv6Origin {
  readonly cidr: string;
  readonly prefix: number;
}

// Bucket table of about half as many entries as segments (measured best: it stays cache-friendly
// while leaving ~2 segments to scan), at most 2^22 entries (16 MB).
const BUCKET_BITS_MAX = 22;
const BUCKET_BITS_BIAS = -1;

/** Row value meaning "no match". */
export const NO_MATCH = -1;

const MAX_U32 = 0xffffffff;

// Per-length IPv6 masks as four uint32 words: MASK6[len * 4 + k].
const MASK6 = IPV6_MASK_WORDS;

function hash6(w0: number, w1: number, w2: number, w3: number, len: number): number {
  let h = Math.imul(w0 ^ (len << 24), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ w1, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16) ^ w3, 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

function hashW0(w0: number): number {
  const h = Math.imul(w0 ^ (w0 >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 15)) >>> 0;
}

function ipv4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (MAX_U32 << (32 - prefix)) >>> 0;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Collects entries, then `build()`s an immutable IocIndex. The add* methods take plain numbers so
 * millions of entries can be streamed in without allocating an object each.
 */
export class IocIndexBuilder {
  private readonly lists: IocListInfo[];
  private readonly listIndexById = new Map<number, number>();
  private readonly now: number;
  private n = 0;
  private cap: number;
  private ids: Float64Array;
  private listIdx: Int32Array;
  private prefix: Uint8Array;
  private family: Uint8Array;
  /** IPv4 network, or for IPv6 the slot in words6. */
  private net: Uint32Array;
  private expires: Float64Array | null = null;
  private n6 = 0;
  private words6: Uint32Array;
  /** Builder row -> the original IPv6 CIDR, for IPv6 entries stored as IPv4 rows. */
  private notes: Map<number, Ipv6Origin> | null = null;
  private accepted = 0;
  private accepted4 = 0;
  private expiredAtBuild = 0;
  private readonly scratch = new Uint32Array(4);
  private lastListId = NaN;
  private lastListIndex = -1;

  constructor(lists: readonly IocListInfo[], options: IocIndexBuildOptions = {}) {
    this.lists = lists.slice();
    this.lists.forEach((list, i) => {
      if (this.listIndexById.has(list.id)) throw new RangeError(`duplicate IOC list id ${list.id}`);
      this.listIndexById.set(list.id, i);
    });
    this.now = options.now ?? Date.now();
    this.cap = Math.max(16, options.capacity ?? 1024);
    this.ids = new Float64Array(this.cap);
    this.listIdx = new Int32Array(this.cap);
    this.prefix = new Uint8Array(this.cap);
    this.family = new Uint8Array(this.cap);
    this.net = new Uint32Array(this.cap);
    this.words6 = new Uint32Array(64);
  }

  add(entry: IocEntryInput): boolean {
    const expiresAt = entry.expiresAt ?? null;
    if (entry.family === 4) return this.addV4(entry.id, entry.listId, Number(entry.network), entry.prefix, expiresAt);
    if (entry.family === 6 && typeof entry.network === 'bigint') {
      const w = ipv6ToWords(entry.network, this.scratch);
      return this.addV6Words(entry.id, entry.listId, w[0], w[1], w[2], w[3], entry.prefix, expiresAt);
    }
    throw new RangeError(`IOC entry ${entry.id}: family ${entry.family} needs a ${entry.family === 6 ? 'bigint' : 'number'} network`);
  }

  /** Returns false when the entry is already expired (it is not indexed). */
  addV4(id: number, listId: number, network: number, prefix: number, expiresAt: number | null = null): boolean {
    if (!(prefix >= 0 && prefix <= 32) || !Number.isInteger(prefix)) throw new RangeError(`IOC entry ${id}: IPv4 prefix ${prefix}`);
    if (!(network >= 0 && network <= MAX_U32) || !Number.isInteger(network)) throw new RangeError(`IOC entry ${id}: IPv4 network ${network}`);
    const list = this.listIndex(id, listId);
    if (expiresAt !== null && expiresAt <= this.now) {
      this.expiredAtBuild++;
      return false;
    }
    this.push(id, list, 4, (network & ipv4Mask(prefix)) >>> 0, prefix, expiresAt);
    this.accepted++;
    this.accepted4++;
    return true;
  }

  addV6(id: number, listId: number, network: bigint, prefix: number, expiresAt: number | null = null): boolean {
    const w = ipv6ToWords(network, this.scratch);
    return this.addV6Words(id, listId, w[0], w[1], w[2], w[3], prefix, expiresAt);
  }

  addV6Words(id: number, listId: number, w0: number, w1: number, w2: number, w3: number, prefix: number, expiresAt: number | null = null): boolean {
    if (!(prefix >= 0 && prefix <= 128) || !Number.isInteger(prefix)) throw new RangeError(`IOC entry ${id}: IPv6 prefix ${prefix}`);
    const list = this.listIndex(id, listId);
    if (expiresAt !== null && expiresAt <= this.now) {
      this.expiredAtBuild++;
      return false;
    }
    const o = prefix * 4;
    const m0 = (w0 & MASK6[o]) >>> 0;
    const m1 = (w1 & MASK6[o + 1]) >>> 0;
    const m2 = (w2 & MASK6[o + 2]) >>> 0;
    const m3 = (w3 & MASK6[o + 3]) >>> 0;
    this.accepted++;
    if (prefix >= 96 && m0 === 0 && m1 === 0 && m2 === 0xffff) {
      // Inside ::ffff:0:0/96: the same hosts as an IPv4 network.
      const row = this.push(id, list, 4, m3, prefix - 96, expiresAt);
      this.note(row, m0, m1, m2, m3, prefix);
      this.accepted4++;
      return true;
    }
    this.push(id, list, 6, this.n6, prefix, expiresAt);
    this.push6(m0, m1, m2, m3);
    if (prefix < 96 && m0 === 0 && m1 === 0 && m2 === (0xffff & MASK6[o + 2]) >>> 0) {
      // Contains all of ::ffff:0:0/96, hence every IPv4 host: also index it as IPv4 0.0.0.0/0 (same
      // entry id, list and expiry; the row reports the IPv6 CIDR).
      const alias = this.push(id, list, 4, 0, 0, expiresAt);
      this.note(alias, m0, m1, m2, m3, prefix);
    }
    return true;
  }

  /** The index copies what it keeps: the builder may go on adding and build again (a superset). */
  build(): IocIndex {
    return buildFromColumns(this.columns());
  }

  /** Rows added so far (IPv4 aliases of IPv6 entries included). */
  get size(): number {
    return this.n;
  }

  /** What build() reads, as plain data (typed arrays, the lists): buildFromColumns takes it on another thread. */
  columns(): BuilderColumns {
    return {
      lists: this.lists,
      now: this.now,
      n: this.n,
      ids: this.ids,
      listIdx: this.listIdx,
      prefix: this.prefix,
      family: this.family,
      net: this.net,
      expires: this.expires,
      words6: this.words6,
      notes: this.notes,
      accepted: this.accepted,
      accepted4: this.accepted4,
      expiredAtBuild: this.expiredAtBuild,
    };
  }

  private listIndex(id: number, listId: number): number {
    // Entries usually arrive list by list: skip the Map for a repeat.
    if (listId === this.lastListId) return this.lastListIndex;
    const i = this.listIndexById.get(listId);
    if (i === undefined) throw new RangeError(`IOC entry ${id} refers to unknown list ${listId}`);
    this.lastListId = listId;
    this.lastListIndex = i;
    return i;
  }

  private note(row: number, w0: number, w1: number, w2: number, w3: number, prefix: number): void {
    const cidr = `${formatIpv6(ipv6FromWords(w0, w1, w2, w3))}/${prefix}`;
    (this.notes ??= new Map()).set(row, { cidr, prefix });
  }

  private push(id: number, list: number, family: 4 | 6, net: number, prefix: number, expiresAt: number | null): number {
    if (this.n === this.cap) this.grow();
    const row = this.n++;
    this.ids[row] = id;
    this.listIdx[row] = list;
    this.family[row] = family;
    this.net[row] = net;
    this.prefix[row] = prefix;
    if (expiresAt !== null) {
      if (this.expires === null) {
        this.expires = new Float64Array(this.cap);
        this.expires.fill(Infinity);
      }
      this.expires[row] = expiresAt;
    } else if (this.expires !== null) {
      this.expires[row] = Infinity;
    }
    return row;
  }

  private push6(w0: number, w1: number, w2: number, w3: number): void {
    if ((this.n6 + 1) * 4 > this.words6.length) {
      const next = new Uint32Array(this.words6.length * 2);
      next.set(this.words6);
      this.words6 = next;
    }
    const o = this.n6++ * 4;
    this.words6[o] = w0;
    this.words6[o + 1] = w1;
    this.words6[o + 2] = w2;
    this.words6[o + 3] = w3;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const next = make(cap);
      next.set(a as never);
      return next;
    };
    this.ids = grow(this.ids, (k) => new Float64Array(k));
    this.listIdx = grow(this.listIdx, (k) => new Int32Array(k));
    this.prefix = grow(this.prefix, (k) => new Uint8Array(k));
    this.family = grow(this.family, (k) => new Uint8Array(k));
    this.net = grow(this.net, (k) => new Uint32Array(k));
    if (this.expires !== null) {
      const next = new Float64Array(cap);
      next.fill(Infinity);
      next.set(this.expires);
      this.expires = next;
    }
    this.cap = cap;
  }
}

export interface BuilderColumns {
  lists: IocListInfo[];
  now: number;
  n: number;
  ids: Float64Array;
  listIdx: Int32Array;
  prefix: Uint8Array;
  family: Uint8Array;
  net: Uint32Array;
  expires: Float64Array | null;
  words6: Uint32Array;
  notes: Map<number, Ipv6Origin> | null;
  accepted: number;
  accepted4: number;
  expiredAtBuild: number;
}

/** Builds an index from entry objects; see IocIndexBuilder to stream plain numbers instead. */
export function buildIocIndex(lists: readonly IocListInfo[], entries: Iterable<IocEntryInput>, options: IocIndexBuildOptions = {}): IocIndex {
  const capacity = options.capacity ?? (Array.isArray(entries) ? entries.length : undefined);
  const builder = new IocIndexBuilder(lists, { ...options, capacity });
  for (const entry of entries) builder.add(entry);
  return builder.build();
}

/** Final, immutable arrays of an index; see the file header for the layout. */
export interface IndexData {
  lists: IocListInfo[];
  listAllow: Uint8Array;
  builtAt: number;
  validUntil: number;
  n4: number;
  ids: Float64Array;
  listIdx: Int32Array;
  prefix: Uint8Array;
  expires: Float64Array | null;
  net4: Uint32Array;
  words6: Uint32Array;
  notes: Map<number, Ipv6Origin> | null;
  // IPv4
  node4First: Int32Array;
  node4Parent: Int32Array;
  /** Segment pairs [start, best BLOCK row + 1 (0 = none)]: the hot path reads one array only. */
  seg4: Uint32Array;
  /** Most specific node of each segment (-1 none), for lookups that walk the chain. */
  seg4Node: Int32Array;
  seg4Count: number;
  bucket4: Uint32Array;
  bucketShift4: number;
  // IPv6
  nodes6: number;
  node6First: Int32Array;
  node6Allow: Uint8Array;
  node6Best: Int32Array;
  /** Open addressing, slot pairs [full hash, node + 1 (0 = empty)]: a miss rarely leaves the slot's cache line. */
  table6: Int32Array;
  tableMask6: number;
  // Which prefix lengths to probe for an address (bit L % 32 of word L / 32, as in lengthMask6):
  /** Lengths 32..128 of nodes whose first 32 bits hash to a bucket: 4 words per bucket. */
  highLens6: Uint32Array;
  highMask6: number;
  /** Lengths 16..31 per first 16 bits (one word per /16), when there are many nodes. */
  lowLens6: Uint32Array;
  lowTopBits6: number;
  /** Lengths below lowTopBits6 (and all of 0..31 for small sets): probed for every address. */
  wideLens6: number;
  stats: IocIndexStats;
}

// Orders rows of one node: ALLOW first, then severity descending, list id, entry id.
function compareRowsInNode(c: BuilderColumns, listAllow: Uint8Array, a: number, b: number): number {
  const la = c.listIdx[a];
  const lb = c.listIdx[b];
  if (la !== lb) {
    const allow = listAllow[lb] - listAllow[la];
    if (allow !== 0) return allow;
    const sev = c.lists[lb].severity - c.lists[la].severity;
    if (sev !== 0) return sev;
    return c.lists[la].id - c.lists[lb].id;
  }
  return c.ids[a] - c.ids[b] || a - b;
}

function sortRuns(order: Uint32Array, runStarts: Int32Array, runs: number, c: BuilderColumns, listAllow: Uint8Array): void {
  for (let k = 0; k < runs; k++) {
    const s = runStarts[k];
    const e = runStarts[k + 1];
    if (e - s < 2) continue;
    const run = Array.from(order.subarray(s, e)).sort((a, b) => compareRowsInNode(c, listAllow, a, b));
    order.set(run, s);
  }
}

interface SortedV4 {
  rows: Uint32Array;
  net: Uint32Array;
  prefix: Uint8Array;
  ids: Float64Array;
  listIdx: Int32Array;
}

// Stable LSD radix sort of IPv4 rows by (network, prefix): prefix first, then the network in 11-bit
// digits (small count tables stay in cache). The row's columns travel with it so every pass reads
// sequentially; gathering them afterwards by row id would be one cache miss per row and column.
function sortV4Rows(rows4: Uint32Array, c: BuilderColumns): SortedV4 {
  const n = rows4.length;
  let r: Uint32Array = rows4;
  let k: Uint32Array = new Uint32Array(n);
  let p: Uint8Array = new Uint8Array(n);
  let id: Float64Array = new Float64Array(n);
  let li: Int32Array = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = rows4[i];
    k[i] = c.net[row];
    p[i] = c.prefix[row];
    id[i] = c.ids[row];
    li[i] = c.listIdx[row];
  }
  let r2: Uint32Array = new Uint32Array(n);
  let k2: Uint32Array = new Uint32Array(n);
  let p2: Uint8Array = new Uint8Array(n);
  let id2: Float64Array = new Float64Array(n);
  let li2: Int32Array = new Int32Array(n);
  const count = new Uint32Array(2049);
  for (let pass = 0; pass < 4; pass++) {
    const shift = pass === 1 ? 0 : pass === 2 ? 11 : 22;
    count.fill(0);
    if (pass === 0) for (let i = 0; i < n; i++) count[p[i] + 1]++;
    else for (let i = 0; i < n; i++) count[((k[i] >>> shift) & 0x7ff) + 1]++;
    for (let j = 0; j < 2048; j++) count[j + 1] += count[j];
    for (let i = 0; i < n; i++) {
      const at = count[pass === 0 ? p[i] : (k[i] >>> shift) & 0x7ff]++;
      r2[at] = r[i];
      k2[at] = k[i];
      p2[at] = p[i];
      id2[at] = id[i];
      li2[at] = li[i];
    }
    [r, r2] = [r2, r];
    [k, k2] = [k2, k];
    [p, p2] = [p2, p];
    [id, id2] = [id2, id];
    [li, li2] = [li2, li];
  }
  return { rows: r, net: k, prefix: p, ids: id, listIdx: li };
}

// 2^(32 - prefix): addresses in an IPv4 network.
const SPAN4 = Float64Array.from({ length: 33 }, (_, p) => 2 ** (32 - p));

interface SweepV4 {
  /** Breakpoints: from starts[i] on, owners[i] is the most specific node (-1 none). */
  starts: Uint32Array;
  owners: Int32Array;
  count: number;
}

// One pass over nodes sorted by (start, prefix): CIDRs nest or are disjoint, so a stack of open nodes
// gives each node its parent (the next wider node containing it) and the owner of every address.
function sweepV4(net4: Uint32Array, prefix: Uint8Array, first: Int32Array, nodes: number, parent: Int32Array): SweepV4 {
  const starts = new Uint32Array(2 * nodes + 1);
  const owners = new Int32Array(2 * nodes + 1);
  const stack = new Int32Array(34);
  const stackEnd = new Float64Array(34);
  let sp = 0;
  let m = 1; // breakpoint 0: address 0 owned by nobody
  owners[0] = -1;
  for (let k = 0; k < nodes; k++) {
    const row = first[k];
    const start = net4[row];
    while (sp > 0 && stackEnd[sp - 1] < start) {
      const end = stackEnd[--sp];
      if (end < MAX_U32) {
        starts[m] = end + 1;
        owners[m++] = sp > 0 ? stack[sp - 1] : -1;
      }
    }
    parent[k] = sp > 0 ? stack[sp - 1] : -1;
    starts[m] = start;
    owners[m++] = k;
    stack[sp] = k;
    stackEnd[sp++] = start + SPAN4[prefix[row]] - 1;
  }
  while (sp > 0) {
    const end = stackEnd[--sp];
    if (end < MAX_U32) {
      starts[m] = end + 1;
      owners[m++] = sp > 0 ? stack[sp - 1] : -1;
    }
  }
  // Compact in place: at equal positions the last breakpoint wins; neighbours with one owner merge.
  let out = 0;
  for (let i = 0; i < m; i++) {
    const pos = starts[i];
    const owner = owners[i];
    if (out > 0 && starts[out - 1] === pos) {
      owners[out - 1] = owner;
      if (out > 1 && owners[out - 2] === owner) out--;
      continue;
    }
    if (out > 0 && owners[out - 1] === owner) continue;
    starts[out] = pos;
    owners[out++] = owner;
  }
  return { starts, owners, count: out };
}

export function buildFromColumns(c: BuilderColumns): IocIndex {
  const n = c.n;
  const listAllow = Uint8Array.from(c.lists, (l) => (l.kind === 'ALLOW' ? 1 : 0));

  // 1. Split rows by family.
  let n4 = 0;
  for (let r = 0; r < n; r++) if (c.family[r] === 4) n4++;
  const n6 = n - n4;
  const rows4 = new Uint32Array(n4);
  const rows6 = new Uint32Array(n6);
  for (let r = 0, i4 = 0, i6 = 0; r < n; r++) {
    if (c.family[r] === 4) rows4[i4++] = r;
    else rows6[i6++] = r;
  }

  // 2. IPv4 order and nodes (runs of equal network/prefix). Sorting does not change inside a run, so
  // the sorted keys are already the final IPv4 network and prefix columns.
  const order = new Uint32Array(n);
  const sorted4 = sortV4Rows(rows4, c);
  order.set(sorted4.rows, 0);
  const net4 = sorted4.net;
  const runStarts4 = new Int32Array(n4 + 1);
  let nodes4 = 0;
  for (let i = 0; i < n4; i++) {
    if (i === 0 || net4[i] !== net4[i - 1] || sorted4.prefix[i] !== sorted4.prefix[i - 1]) runStarts4[nodes4++] = i;
  }
  runStarts4[nodes4] = n4;

  // 3. IPv6 nodes: hash (masked network, prefix) -> node, then group rows by node.
  const tableSize = nextPow2(Math.max(16, n6 * 2));
  const tableMask6 = tableSize - 1;
  const table6 = new Int32Array(tableSize * 2);
  const nodeRep = new Int32Array(n6);
  const nodeOfRow = new Int32Array(n6);
  const w = c.words6;
  let nodes6 = 0;
  for (let i = 0; i < n6; i++) {
    const r = rows6[i];
    const o = c.net[r] * 4;
    const p = c.prefix[r];
    const full = hash6(w[o], w[o + 1], w[o + 2], w[o + 3], p) | 0;
    let h = full & tableMask6;
    let node = -1;
    for (;;) {
      const slot = table6[2 * h + 1];
      if (slot === 0) break;
      if (table6[2 * h] === full) {
        const rep = nodeRep[slot - 1];
        const q = c.net[rep] * 4;
        if (c.prefix[rep] === p && w[q] === w[o] && w[q + 1] === w[o + 1] && w[q + 2] === w[o + 2] && w[q + 3] === w[o + 3]) {
          node = slot - 1;
          break;
        }
      }
      h = (h + 1) & tableMask6;
    }
    if (node < 0) {
      node = nodes6++;
      nodeRep[node] = r;
      table6[2 * h] = full;
      table6[2 * h + 1] = node + 1;
    }
    nodeOfRow[i] = node;
  }
  const runStarts6 = new Int32Array(nodes6 + 1);
  for (let i = 0; i < n6; i++) runStarts6[nodeOfRow[i] + 1]++;
  for (let k = 0; k < nodes6; k++) runStarts6[k + 1] += runStarts6[k];
  {
    const fill = runStarts6.slice(0, nodes6);
    const sorted6 = new Uint32Array(n6);
    for (let i = 0; i < n6; i++) sorted6[fill[nodeOfRow[i]]++] = rows6[i];
    order.set(sorted6, n4);
  }

  // 4. Order rows inside each node, then lay every column out in final order.
  sortRuns(order, runStarts4, nodes4, c, listAllow);
  sortRuns(order.subarray(n4), runStarts6, nodes6, c, listAllow);

  // IPv4 columns come sorted from the radix sort (re-gathered where a run was reordered); IPv6 ones
  // are gathered column by column, one source array per loop, to keep cache misses down.
  const ids = new Float64Array(n);
  const listIdx = new Int32Array(n);
  ids.set(sorted4.ids, 0);
  listIdx.set(sorted4.listIdx, 0);
  for (let k = 0; k < nodes4; k++) {
    if (runStarts4[k + 1] - runStarts4[k] < 2) continue;
    for (let i = runStarts4[k]; i < runStarts4[k + 1]; i++) {
      ids[i] = c.ids[order[i]];
      listIdx[i] = c.listIdx[order[i]];
    }
  }
  for (let i = n4; i < n; i++) ids[i] = c.ids[order[i]];
  for (let i = n4; i < n; i++) listIdx[i] = c.listIdx[order[i]];
  const prefix = new Uint8Array(n);
  prefix.set(sorted4.prefix, 0);
  for (let i = n4; i < n; i++) prefix[i] = c.prefix[order[i]];
  const words6 = new Uint32Array(n6 * 4);
  for (let i = n4, q = 0; i < n; i++, q += 4) {
    const o = c.net[order[i]] * 4;
    words6[q] = w[o];
    words6[q + 1] = w[o + 1];
    words6[q + 2] = w[o + 2];
    words6[q + 3] = w[o + 3];
  }
  let expires: Float64Array | null = null;
  let validUntil = Infinity;
  if (c.expires !== null) {
    const source = c.expires;
    expires = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = source[order[i]];
      expires[i] = e;
      if (e < validUntil) validUntil = e;
    }
  }
  let notes: Map<number, Ipv6Origin> | null = null;
  if (c.notes !== null) {
    const finalOf = new Map<number, number>();
    for (let i = 0; i < n; i++) if (c.notes.has(order[i])) finalOf.set(order[i], i);
    notes = new Map();
    for (const [r, origin] of c.notes) notes.set(finalOf.get(r) as number, origin);
  }

  // 5. IPv4 nodes: parents and segments.
  const node4First = runStarts4.slice(0, nodes4 + 1);
  const node4Parent = new Int32Array(nodes4);
  const node4Best = new Int32Array(nodes4);
  const sweep = sweepV4(net4, prefix, node4First, nodes4, node4Parent);
  const segs = sweep.count;
  const seg4Start = sweep.starts;
  const seg4Node = sweep.owners.slice(0, segs);

  // Precomputed answer per node, valid until the first expiry: the best BLOCK row on the chain, or
  // NO_MATCH when an ALLOW on the chain (the node or any wider node) suppresses it. Parents come first.
  {
    const chainAllow = new Uint8Array(nodes4);
    for (let k = 0; k < nodes4; k++) {
      let ownAllow = 0;
      let ownBest = NO_MATCH;
      for (let r = node4First[k]; r < node4First[k + 1]; r++) {
        if (listAllow[listIdx[r]]) ownAllow = 1;
        else if (ownBest === NO_MATCH) ownBest = r;
      }
      const parent = node4Parent[k];
      chainAllow[k] = ownAllow || (parent >= 0 ? chainAllow[parent] : 0);
      node4Best[k] = chainAllow[k] ? NO_MATCH : ownBest !== NO_MATCH ? ownBest : parent >= 0 ? node4Best[parent] : NO_MATCH;
    }
  }

  const seg4 = new Uint32Array(segs * 2);
  for (let i = 0; i < segs; i++) {
    seg4[2 * i] = seg4Start[i];
    seg4[2 * i + 1] = seg4Node[i] < 0 ? 0 : node4Best[seg4Node[i]] + 1;
  }

  // Bucket index over the top bits: bucket b's address lies in segments [bucket4[b], bucket4[b + 1]].
  const bucketBits = Math.min(BUCKET_BITS_MAX, Math.max(4, Math.ceil(Math.log2(Math.max(segs, 1))) + BUCKET_BITS_BIAS));
  const bucketShift4 = 32 - bucketBits;
  const buckets = 2 ** bucketBits;
  const bucket4 = new Uint32Array(buckets + 1);
  const bucketSpan = 2 ** bucketShift4;
  for (let b = 0, j = 0; b < buckets; b++) {
    const addr = b * bucketSpan;
    while (j + 1 < segs && seg4Start[j + 1] <= addr) j++;
    bucket4[b] = j;
  }
  bucket4[buckets] = segs - 1;

  // 6. IPv6 nodes: first row, own ALLOW / best BLOCK, table already maps to node ids.
  const node6First = new Int32Array(nodes6 + 1);
  for (let k = 0; k <= nodes6; k++) node6First[k] = runStarts6[k] + n4;
  const node6Allow = new Uint8Array(nodes6);
  const node6Best = new Int32Array(nodes6).fill(NO_MATCH);
  // Length filter: a lookup probes only lengths used by nodes that share the address's first 32 bits
  // (hashed into about nodes/2 buckets) or first 16 bits, instead of every length present.
  const highBuckets = Math.min(2 ** 20, nextPow2(Math.max(1, nodes6 >>> 1)));
  const highMask6 = highBuckets - 1;
  const highLens6 = new Uint32Array(highBuckets * 4);
  const lowTopBits6 = nodes6 >= 4096 ? 16 : 0;
  const lowLens6 = new Uint32Array(2 ** lowTopBits6);
  let wideLens6 = 0;
  const lengthsSeen = new Uint8Array(129);
  for (let k = 0; k < nodes6; k++) {
    for (let r = node6First[k]; r < node6First[k + 1]; r++) {
      if (listAllow[listIdx[r]]) node6Allow[k] = 1;
      else if (node6Best[k] === NO_MATCH) node6Best[k] = r;
    }
    const r = node6First[k];
    const len = prefix[r];
    const w0 = words6[(r - n4) * 4];
    lengthsSeen[len] = 1;
    const bit = 1 << (len & 31);
    if (len >= 32) highLens6[(hashW0(w0) & highMask6) * 4 + (len >>> 5) - 1] |= bit;
    else if (len >= lowTopBits6 && lowTopBits6 > 0) lowLens6[w0 >>> 16] |= bit;
    else wideLens6 |= bit;
  }

  const data: IndexData = {
    lists: c.lists,
    listAllow,
    builtAt: c.now,
    validUntil,
    n4,
    ids,
    listIdx,
    prefix,
    expires,
    net4,
    words6,
    notes,
    node4First,
    node4Parent,
    seg4,
    seg4Node,
    seg4Count: segs,
    bucket4,
    bucketShift4,
    nodes6,
    node6First,
    node6Allow,
    node6Best,
    table6,
    tableMask6,
    highLens6,
    highMask6,
    lowLens6,
    lowTopBits6,
    wideLens6,
    stats: {
      lists: c.lists.length,
      entries: c.accepted,
      ipv4Entries: c.accepted4,
      ipv6Entries: c.accepted - c.accepted4,
      ipv4Networks: nodes4,
      ipv6Networks: nodes6,
      ipv4Segments: segs,
      ipv6PrefixLengths: lengthsSeen.reduce((sum, seen) => sum + seen, 0),
      expiredAtBuild: c.expiredAtBuild,
      bytes: 0,
    },
  };
  const arrays = [ids, listIdx, prefix, expires, net4, words6, node4First, node4Parent, seg4, seg4Node, bucket4];
  const arrays6 = [node6First, node6Allow, node6Best, table6, highLens6, lowLens6];
  const bytes = [...arrays, ...arrays6].reduce((sum, a) => sum + (a === null ? 0 : a.byteLength), 0);
  data.stats = { ...data.stats, bytes };
  return new IocIndex(data);
}

/** Immutable IOC index of one policy; build with buildIocIndex or IocIndexBuilder. */
export class IocIndex {
  private readonly d: IndexData;
  private readonly scratch = new Uint32Array(4);
  private readonly lens6 = new Uint32Array(5);
  // Hot-path copies of IndexData fields: one property load each instead of two.
  private readonly seg4: Uint32Array;
  private readonly bucket4: Uint32Array;
  private readonly bucketShift4: number;
  /** validUntil, or Infinity when no entry expires. */
  private readonly fastUntil: number;

  /** @internal use buildIocIndex / IocIndexBuilder. */
  constructor(data: IndexData) {
    this.d = data;
    this.seg4 = data.seg4;
    this.bucket4 = data.bucket4;
    this.bucketShift4 = data.bucketShift4;
    this.fastUntil = data.expires === null ? Infinity : data.validUntil;
  }

  /** The index's arrays (structured-cloneable: an index built on another thread comes back as this). */
  get data(): IndexData {
    return this.d;
  }

  get stats(): IocIndexStats {
    return this.d.stats;
  }

  get lists(): readonly IocListInfo[] {
    return this.d.lists;
  }

  /** The build `now` (epoch ms): lookups without `now` answer as of this instant. */
  get builtAt(): number {
    return this.d.builtAt;
  }

  /** Earliest expiry among indexed entries (Infinity if none): rebuild after it for full speed. */
  get validUntil(): number {
    return this.d.validUntil;
  }

  // ---- hot path -----------------------------------------------------------------------------

  /**
   * The best BLOCK row containing an IPv4 address (uint32), or NO_MATCH when nothing blocks it or an
   * ALLOW entry suppresses it. "Best" = most specific network, then ALLOW/severity/list/entry order.
   */
  bestBlockRowV4(ip: number, now?: number): number {
    const seg = this.segmentV4(ip >>> 0);
    if (now === undefined || now < this.fastUntil) return this.seg4[seg * 2 + 1] - 1;
    const node = this.d.seg4Node[seg];
    return node < 0 ? NO_MATCH : this.bestBlockWalkV4(node, now);
  }

  /** As bestBlockRowV4 for an IPv6 address given as four big-endian uint32 words. */
  bestBlockRowV6(w0: number, w1: number, w2: number, w3: number, now?: number): number {
    if (w0 === 0 && w1 === 0 && w2 === 0xffff) return this.bestBlockRowV4(w3, now);
    const d = this.d;
    if (d.nodes6 === 0) return NO_MATCH;
    const filtered = now !== undefined && now >= this.fastUntil;
    const expires = d.expires as Float64Array;
    const lens = this.lengthMask6(w0);
    let best = NO_MATCH;
    for (let k = 4; k >= 0; k--) {
      let bits = lens[k];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits ^= 1 << b;
        const node = this.findNode6(w0, w1, w2, w3, k * 32 + b);
        if (node < 0) continue;
        if (!filtered) {
          if (d.node6Allow[node]) return NO_MATCH;
          if (best === NO_MATCH) best = d.node6Best[node];
          continue;
        }
        for (let r = d.node6First[node]; r < d.node6First[node + 1]; r++) {
          if (expires[r] <= (now as number)) continue;
          if (d.listAllow[d.listIdx[r]]) return NO_MATCH;
          if (best === NO_MATCH) best = r;
        }
      }
    }
    return best;
  }

  bestBlockRow(ip: ParsedIp, now?: number): number {
    if (ip.family === 4) return this.bestBlockRowV4(ip.v4, now);
    const w = ipv6ToWords(ip.v6, this.scratch);
    return this.bestBlockRowV6(w[0], w[1], w[2], w[3], now);
  }

  rowEntryId(row: number): number {
    return this.d.ids[row];
  }

  rowListId(row: number): number {
    return this.d.lists[this.d.listIdx[row]].id;
  }

  rowList(row: number): IocListInfo {
    return this.d.lists[this.d.listIdx[row]];
  }

  // ---- convenience --------------------------------------------------------------------------

  /** The best unsuppressed BLOCK match, or null. Throws on text that is not an IP address. */
  bestBlock(ip: ParsedIp | string, now?: number): IocMatch | null {
    const row = this.bestBlockRow(toIp(ip), now);
    return row === NO_MATCH ? null : this.describeRow(row, false);
  }

  /**
   * Every entry containing the address, most specific first (same network: ALLOW first, then severity
   * descending). BLOCK entries are marked `suppressed` when any matching ALLOW entry exists.
   */
  lookup(ip: ParsedIp | string, now?: number): IocMatch[] {
    const parsed = toIp(ip);
    if (parsed.family === 4) return this.lookupV4(parsed.v4, now);
    const w = ipv6ToWords(parsed.v6, this.scratch);
    if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return this.lookupV4(w[3], now);
    const d = this.d;
    const rows: number[] = [];
    const lens = this.lengthMask6(w[0]);
    for (let k = 4; k >= 0 && d.nodes6 > 0; k--) {
      let bits = lens[k];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits ^= 1 << b;
        const node = this.findNode6(w[0], w[1], w[2], w[3], k * 32 + b);
        if (node >= 0) for (let r = d.node6First[node]; r < d.node6First[node + 1]; r++) rows.push(r);
      }
    }
    return this.toMatches(rows, now);
  }

  lookupV4(ip: number, now?: number): IocMatch[] {
    const d = this.d;
    const rows: number[] = [];
    for (let node = d.seg4Node[this.segmentV4(ip >>> 0)]; node >= 0; node = d.node4Parent[node]) {
      for (let r = d.node4First[node]; r < d.node4First[node + 1]; r++) rows.push(r);
    }
    return this.toMatches(rows, now);
  }

  /** The unsuppressed BLOCK matches, most specific first. */
  blockingMatches(ip: ParsedIp | string, now?: number): IocMatch[] {
    return this.lookup(ip, now).filter((m) => m.list.kind === 'BLOCK' && !m.suppressed);
  }

  describeRow(row: number, suppressed: boolean): IocMatch {
    const d = this.d;
    const list = d.lists[d.listIdx[row]];
    const expiresAt = d.expires === null || d.expires[row] === Infinity ? null : d.expires[row];
    const origin = d.notes?.get(row);
    if (origin !== undefined) {
      return { entryId: d.ids[row], list, family: 6, prefix: origin.prefix, cidr: origin.cidr, expiresAt, suppressed };
    }
    let cidr: string;
    if (row < d.n4) cidr = `${formatIpv4(d.net4[row])}/${d.prefix[row]}`;
    else {
      const q = (row - d.n4) * 4;
      cidr = `${formatIpv6(ipv6FromWords(d.words6[q], d.words6[q + 1], d.words6[q + 2], d.words6[q + 3]))}/${d.prefix[row]}`;
    }
    const family = row < d.n4 ? 4 : 6;
    return { entryId: d.ids[row], list, family, prefix: d.prefix[row], cidr, expiresAt, suppressed };
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Index of the segment holding an IPv4 address. */
  private segmentV4(ip: number): number {
    const seg = this.seg4;
    const bucket = this.bucket4;
    const b = ip >>> this.bucketShift4;
    let lo = bucket[b];
    let hi = bucket[b + 1];
    // Binary search down to a few neighbours, then a short scan within one or two cache lines.
    while (hi - lo > 4) {
      const mid = (lo + hi + 1) >>> 1;
      if (seg[mid * 2] <= ip) lo = mid;
      else hi = mid - 1;
    }
    while (lo < hi && seg[(lo + 1) * 2] <= ip) lo++;
    return lo;
  }

  private bestBlockWalkV4(node: number, now: number): number {
    const d = this.d;
    const expires = d.expires as Float64Array;
    let best = NO_MATCH;
    for (let k = node; k >= 0; k = d.node4Parent[k]) {
      for (let r = d.node4First[k]; r < d.node4First[k + 1]; r++) {
        if (expires[r] <= now) continue;
        if (d.listAllow[d.listIdx[r]]) return NO_MATCH;
        if (best === NO_MATCH) best = r;
      }
    }
    return best;
  }

  /** Prefix lengths worth probing for an address starting with w0: bit L % 32 of word L / 32. */
  private lengthMask6(w0: number): Uint32Array {
    const d = this.d;
    const out = this.lens6;
    const h = (hashW0(w0) & d.highMask6) * 4;
    out[0] = d.wideLens6 | (d.lowTopBits6 > 0 ? d.lowLens6[w0 >>> 16] : 0);
    out[1] = d.highLens6[h];
    out[2] = d.highLens6[h + 1];
    out[3] = d.highLens6[h + 2];
    out[4] = d.highLens6[h + 3];
    return out;
  }

  private findNode6(w0: number, w1: number, w2: number, w3: number, len: number): number {
    const d = this.d;
    const o = len * 4;
    const m0 = (w0 & MASK6[o]) >>> 0;
    const m1 = (w1 & MASK6[o + 1]) >>> 0;
    const m2 = (w2 & MASK6[o + 2]) >>> 0;
    const m3 = (w3 & MASK6[o + 3]) >>> 0;
    const words = d.words6;
    const table = d.table6;
    const full = hash6(m0, m1, m2, m3, len) | 0;
    let h = full & d.tableMask6;
    for (;;) {
      const slot = table[2 * h + 1];
      if (slot === 0) return -1;
      if (table[2 * h] === full) {
        const node = slot - 1;
        const r = d.node6First[node];
        const q = (r - d.n4) * 4;
        if (d.prefix[r] === len && words[q] === m0 && words[q + 1] === m1 && words[q + 2] === m2 && words[q + 3] === m3) {
          return node;
        }
      }
      h = (h + 1) & d.tableMask6;
    }
  }

  private toMatches(rows: number[], now: number | undefined): IocMatch[] {
    const d = this.d;
    const live = now === undefined || d.expires === null ? rows : rows.filter((r) => (d.expires as Float64Array)[r] > now);
    const suppressed = live.some((r) => d.listAllow[d.listIdx[r]] === 1);
    return live.map((r) => this.describeRow(r, suppressed && d.listAllow[d.listIdx[r]] === 0));
  }
}

function toIp(ip: ParsedIp | string): ParsedIp {
  if (typeof ip !== 'string') return ip;
  const parsed = parseIp(ip);
  if (parsed === null) throw new TypeError(`not an IP address: '${ip}'`);
  return parsed;
}
