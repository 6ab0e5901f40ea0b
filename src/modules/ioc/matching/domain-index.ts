// In-memory index of domain IOC entries for one policy: which entries contain a query name. Pure: no DB, no GraphQL.
//
// An entry `evil.example` contains `evil.example` and every name under it (`a.b.evil.example`), never a name that
// merely ends with the same characters (`notevil.example`, `evil.example.network2`): matching is the exact name or
// a suffix that starts at a label boundary. Names are lowercase ASCII without a trailing dot (feed/domain-name.ts);
// lookups fold A-Z and drop one trailing dot themselves.
//
// Layout (struct of arrays, no per-entry objects on the hot path):
// - "nodes" are distinct names; their bytes sit in one pool (nodeOff/nodeLen). "Rows" are entries, grouped by node;
//   inside a node ALLOW rows come first, then severity descending, list id, entry id (as the IP index orders them).
// - One open-addressing hash table maps a name to its node. The hash runs over a name's characters from the END,
//   so a lookup computes the hash of every suffix in one right-to-left pass and probes once per label boundary:
//   no substring, no allocation. The longest listed suffix is the most specific containing entry. A slot holds
//   its parent suffix's slot and its first label's bytes, so a probe compares one label and reads one cache line;
//   a Bloom filter of the table's hashes answers most probes of absent suffixes without reading the table.
// - Each node links to the nearest listed parent (`parent`); its precomputed answer is the best BLOCK row of the
//   most specific node on the chain that has one, or NO_MATCH when an ALLOW row on the chain (the node or any
//   wider name) suppresses it: ALLOW wins.
// Expiry: entries already expired at build `now` are dropped; `validUntil` is the earliest remaining expiry, after
// which callers rebuild (lookups answer as of build time).

import type { IocListInfo } from './ioc-index';

export interface DomainEntryInput {
  readonly id: number;
  readonly listId: number;
  /** Lowercase ASCII, no trailing dot (as stored in ioc_domain). */
  readonly name: string;
  /** Epoch ms; null/undefined never expires. */
  readonly expiresAt?: number | null;
}

export interface DomainMatch {
  readonly entryId: number;
  readonly list: IocListInfo;
  /** The entry's name: the query name itself or one of its parents. */
  readonly name: string;
  readonly expiresAt: number | null;
  /** A BLOCK entry outranked by an ALLOW entry that contains the same name. */
  readonly suppressed: boolean;
}

export interface DomainIndexStats {
  readonly lists: number;
  readonly entries: number;
  readonly names: number;
  readonly droppedExpired: number;
  readonly droppedUnknownList: number;
  /** Bytes of the typed arrays and the name pool. */
  readonly bytes: number;
}

export const NO_DOMAIN_MATCH = -1;
/** int32s per hash table slot (32 bytes: a slot never straddles a cache line). */
const SLOT = 8;
/** Slot word of a node's answer (its best row); while the index is built, its node. */
const BEST = 3;
/** Slot word of the parent suffix's slot (its table index, -1 for a last label). */
const PARENT = 4;
/** Slot word where the first LABEL_INLINE bytes of the suffix's first label start. */
const LABEL = 5;
const LABEL_INLINE = 12;
/** Slot word 2: the name's length, and flags. */
const LEN_MASK = 0xffff;
const IS_NODE = 1 << 16;
const HAS_DESC = 1 << 17;
const ALLOWED = 1 << 18;

function poolEquals(pool: Buffer, off: number, name: string, i: number, end: number): boolean {
  for (let j = i; j < end; j++, off++) if (pool[off] !== name.charCodeAt(j)) return false;
  return true;
}

// A suffix absent from the table (most suffixes a lookup meets: the names asked are mostly not listed) costs a
// cache miss in the table, which is tens of megabytes at 1M names. A Bloom filter of the table's hashes, 8 bits a
// suffix (1 MB at 1M names: it stays in the caches), answers most of those probes without the miss; a suffix it
// lets through is probed as before, so answers stay exact. One word per suffix, two bits in it.
const FILTER_BITS_PER_NAME = 8;

/** Names bestBlockRows looks up together, and the suffixes per name its scratch holds (a longer name is looked up alone). */
const BATCH = 32;
const BATCH_PROBES = 32;

function filterWord(hash: number, shift: number): number {
  return Math.imul(hash, 0x9e3779b1) >>> shift;
}

function filterBits(hash: number): number {
  return (1 << (hash & 31)) | (1 << ((hash >>> 5) & 31));
}

function filterAdd(filter: Int32Array, shift: number, hash: number): void {
  filter[filterWord(hash, shift)] |= filterBits(hash);
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * One character into a suffix's running hash (FNV-1a). `| 0x20` folds A-Z to a-z without a branch; it also maps a
 * few other characters onto others ('_' onto DEL), which only costs a probe: slots are compared byte for byte.
 */
function hashChar(h: number, c: number): number {
  return Math.imul(h ^ (c | 0x20), FNV_PRIME);
}

/** Mixes the running hash of a suffix into a slot number (the table size is a power of two). */
function finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export class DomainIndexBuilder {
  private readonly lists: IocListInfo[];
  private readonly listIndex = new Map<number, number>();
  private readonly now: number;
  private count = 0;
  private ids = new Float64Array(1024);
  private listIdx = new Int32Array(1024);
  private expires = new Float64Array(1024);
  private names: string[] = [];
  /** `packed` builders keep the names as latin1 bytes (name i ends at packedEnds[i]) instead of strings. */
  private packedBytes: Buffer | null = null;
  private packedEnds: Uint32Array | null = null;
  private packedUsed = 0;
  private droppedExpired = 0;
  private droppedUnknownList = 0;

  /**
   * `packed`: keep the names as bytes, not strings, so that columns() hands them to another thread as a few typed
   * arrays (a copy of each, no per-name work) for DomainIndexBuilder.fromColumns to build there.
   */
  constructor(lists: readonly IocListInfo[], options: { now?: number; packed?: boolean } = {}) {
    this.lists = [...lists];
    this.lists.forEach((l, i) => this.listIndex.set(l.id, i));
    this.now = options.now ?? Date.now();
    if (options.packed) {
      this.packedBytes = Buffer.allocUnsafeSlow(1 << 16);
      this.packedEnds = new Uint32Array(1024);
    }
  }

  /** Entries added (and kept) so far. */
  get size(): number {
    return this.count;
  }

  /** The entries added so far as plain data (typed arrays, the lists); `packed` builders only. */
  columns(): DomainBuilderColumns {
    if (!this.packedBytes || !this.packedEnds) throw new Error('DomainIndexBuilder.columns() needs a packed builder');
    const n = this.count;
    return {
      lists: this.lists,
      now: this.now,
      count: n,
      ids: this.ids.subarray(0, n),
      listIdx: this.listIdx.subarray(0, n),
      expires: this.expires.subarray(0, n),
      nameBytes: this.packedBytes.subarray(0, this.packedUsed),
      nameEnds: this.packedEnds.subarray(0, n),
      droppedExpired: this.droppedExpired,
      droppedUnknownList: this.droppedUnknownList,
    };
  }

  /** A builder holding what `columns()` gave (on another thread); build() it there. */
  static fromColumns(c: DomainBuilderColumns): DomainIndexBuilder {
    const b = new DomainIndexBuilder(c.lists, { now: c.now });
    const bytes = Buffer.from(c.nameBytes.buffer, c.nameBytes.byteOffset, c.nameBytes.byteLength);
    b.count = c.count;
    // build() only reads these.
    b.ids = c.ids;
    b.listIdx = c.listIdx;
    b.expires = c.expires;
    const names = new Array<string>(c.count);
    for (let i = 0, from = 0; i < c.count; i++) {
      const to = c.nameEnds[i];
      names[i] = bytes.toString('latin1', from, to);
      from = to;
    }
    b.names = names;
    b.droppedExpired = c.droppedExpired;
    b.droppedUnknownList = c.droppedUnknownList;
    return b;
  }

  private pack(name: string): void {
    let bytes = this.packedBytes as Buffer;
    let ends = this.packedEnds as Uint32Array;
    if (this.packedUsed + name.length > bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(bytes.length * 2, this.packedUsed + name.length));
      bytes.copy(grown, 0, 0, this.packedUsed);
      this.packedBytes = bytes = grown;
    }
    const i = this.count - 1;
    if (i === ends.length) {
      const grown = new Uint32Array(ends.length * 2);
      grown.set(ends);
      this.packedEnds = ends = grown;
    }
    this.packedUsed += bytes.write(name, this.packedUsed, 'latin1');
    ends[i] = this.packedUsed;
  }

  /** False when the entry is dropped (expired at build time, or its list is not one of the index's). */
  add(entry: DomainEntryInput): boolean {
    const li = this.listIndex.get(entry.listId);
    if (li === undefined) {
      this.droppedUnknownList++;
      return false;
    }
    const exp = entry.expiresAt ?? null;
    if (exp !== null && exp <= this.now) {
      this.droppedExpired++;
      return false;
    }
    const i = this.count++;
    if (i === this.ids.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.ids = grow(this.ids);
      this.listIdx = grow(this.listIdx);
      this.expires = grow(this.expires);
    }
    this.ids[i] = entry.id;
    this.listIdx[i] = li;
    this.expires[i] = exp ?? Infinity;
    if (this.packedBytes) this.pack(entry.name);
    else this.names.push(entry.name);
    return true;
  }

  build(): DomainIndex {
    if (this.packedBytes) return DomainIndexBuilder.fromColumns(this.columns()).build();
    const n = this.count;
    const lists = this.lists;
    const listAllow = Uint8Array.from(lists, (l) => (l.kind === 'ALLOW' ? 1 : 0));
    const listSeverity = Uint8Array.from(lists, (l) => l.severity);
    let size = 16;
    while (size < n * 2) size *= 2;
    let mask = size - 1;
    // Slots of 8 int32 (half a cache line): [hash, pool offset, length | flags, best row, parent slot, first label
    // bytes x 12]; length 0 = empty. A lookup has matched the parent suffix (`b.c` of `a.b.c`) when it probes, so a
    // slot is the suffix asked when its hash, length and parent agree and its first label has the same bytes: kept
    // in the slot up to 12 bytes, the pool is read only past them. One cache miss per probe.
    let table = new Int32Array(size * SLOT);
    let used = 0;
    let poolBytes = 0;
    for (let i = 0; i < n; i++) poolBytes += this.names[i].length;
    const pool = Buffer.allocUnsafe(Math.max(1, poolBytes));
    const nodeOff = new Uint32Array(n);
    const nodeLen = new Uint8Array(n);
    const rowNode = new Int32Array(n);
    /** A row of each node, to read its name without decoding the pool. */
    const nodeRow = new Int32Array(n);
    let nodes = 0;
    let poolPos = 0;
    // 1. Distinct names -> nodes (the table dedupes), rows -> their node. Names go BATCH at a time: their hashes
    // first, then a read of each one's slot in a short loop (their cache misses overlap, as in bestBlockRows), then
    // the inserts, which find the slots cached.
    const batchHash = new Int32Array(BATCH * BATCH_PROBES);
    const batchAt = new Int32Array(BATCH * BATCH_PROBES);
    const batchCount = new Int32Array(BATCH);
    let touched = 0;
    for (let from = 0; from < n; from += BATCH) {
      const to = Math.min(n, from + BATCH);
      for (let r = from; r < to; r++) {
        const name = this.names[r];
        let h = FNV_OFFSET;
        for (let i = name.length - 1; i >= 0; i--) h = hashChar(h, name.charCodeAt(i));
        batchHash[r - from] = finalize(h) | 0;
      }
      for (let r = from; r < to; r++) touched += table[(batchHash[r - from] & mask) * SLOT];
      for (let r = from; r < to; r++) {
        const name = this.names[r];
        const len = name.length;
        const hash = batchHash[r - from];
        let slot = hash & mask;
        let node = -1;
        for (;;) {
          const t = slot * SLOT;
          if (table[t + 2] === 0) break;
          const k = table[t + BEST];
          if (table[t] === hash && nodeLen[k] === len && this.names[nodeRow[k]] === name) {
            node = k;
            break;
          }
          slot = (slot + 1) & mask;
        }
        if (node < 0) {
          node = nodes++;
          const t = slot * SLOT;
          table[t] = hash;
          table[t + 1] = poolPos;
          table[t + 2] = len | IS_NODE;
          table[t + BEST] = node;
          used++;
          nodeRow[node] = r;
          nodeOff[node] = poolPos;
          nodeLen[node] = len;
          for (let i = 0; i < len; i++) pool[poolPos + i] = name.charCodeAt(i);
          poolPos += len;
        }
        rowNode[r] = node;
      }
    }
    /**
     * The proper suffixes (at a label boundary, from = 1) or all suffixes (from = 0) of nodes [first, first + BATCH)
     * into batchHash/batchAt (hash, start), BATCH_PROBES per node, and a read of each one's slot; a node with more
     * suffixes than that gets count -1 and is done alone.
     */
    const suffixBatch = (first: number, own: 0 | 1): number => {
      let sum = 0;
      const last = Math.min(nodes, first + BATCH);
      for (let k = first; k < last; k++) {
        const name = this.names[nodeRow[k]];
        const base = (k - first) * BATCH_PROBES;
        let c = 0;
        let h = FNV_OFFSET;
        for (let i = name.length - 1; i >= own; i--) {
          h = hashChar(h, name.charCodeAt(i));
          if (i > 0 && name.charCodeAt(i - 1) !== 0x2e) continue;
          if (c === BATCH_PROBES) {
            c = -1;
            break;
          }
          batchHash[base + c] = finalize(h) | 0;
          batchAt[base + c] = i;
          c++;
        }
        batchCount[k - first] = c;
      }
      for (let k = first; k < last; k++) {
        const base = (k - first) * BATCH_PROBES;
        for (let p = 0, c = batchCount[k - first]; p < c; p++) sum += table[(batchHash[base + p] & mask) * SLOT];
      }
      return sum;
    };
    // A name listed twice is stored once: the unused tail is zeroed, so that two builds of the same entries are equal.
    pool.fill(0, poolPos);
    // 1b. Every proper suffix of a listed name (at a label boundary) is in the table, flagged HAS_DESC: a marker
    // when it is not listed itself. A lookup stops at the first suffix that is absent or has nothing listed below.
    const grow = () => {
      const oldTable = table;
      const oldSize = size;
      size *= 2;
      mask = size - 1;
      table = new Int32Array(size * SLOT);
      for (let s = 0; s < oldSize; s++) {
        const o = s * SLOT;
        if (oldTable[o + 2] === 0) continue;
        let slot = oldTable[o] & mask;
        while (table[slot * SLOT + 2] !== 0) slot = (slot + 1) & mask;
        table.set(oldTable.subarray(o, o + SLOT), slot * SLOT);
      }
    };
    /** Marks the suffix name[i..end) of node k as having something listed below it, adding it as a marker if absent. */
    const markSuffix = (k: number, name: string, hash: number, i: number, end: number) => {
      const len = end - i;
      let slot = hash & mask;
      let t = -1;
      for (;;) {
        const u = slot * SLOT;
        const f = table[u + 2];
        if (f === 0) break;
        if (table[u] === hash && (f & LEN_MASK) === len && poolEquals(pool, table[u + 1], name, i, end)) {
          t = u;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (t >= 0) table[t + 2] |= HAS_DESC;
      else {
        t = slot * SLOT;
        table[t] = hash;
        table[t + 1] = nodeOff[k] + i;
        table[t + 2] = len | HAS_DESC;
        if (++used * 4 > size * 3) grow();
      }
    };
    for (let first = 0; first < nodes; first += BATCH) {
      touched += suffixBatch(first, 1);
      for (let k = first; k < Math.min(nodes, first + BATCH); k++) {
        const name = this.names[nodeRow[k]];
        const end = name.length;
        const c = batchCount[k - first];
        if (c >= 0) {
          const base = (k - first) * BATCH_PROBES;
          for (let p = 0; p < c; p++) markSuffix(k, name, batchHash[base + p], batchAt[base + p], end);
          continue;
        }
        let h = FNV_OFFSET;
        for (let i = end - 1; i > 0; i--) {
          h = hashChar(h, name.charCodeAt(i));
          if (name.charCodeAt(i - 1) === 0x2e) markSuffix(k, name, finalize(h) | 0, i, end);
        }
      }
    }
    // 1c. Each slot's parent slot and first label bytes (the table no longer grows: slots stay where they are).
    const tableBytes = new Uint8Array(table.buffer, table.byteOffset, table.byteLength);
    /** Sets the parent slot and first label bytes of the slot of name[i..end), returning its slot offset. */
    const linkSuffix = (name: string, hash: number, i: number, end: number, parent: number, labelEnd: number): number => {
      const len = end - i;
      let slot = hash & mask;
      for (;;) {
        const u = slot * SLOT;
        if (table[u] === hash && (table[u + 2] & LEN_MASK) === len && poolEquals(pool, table[u + 1], name, i, end)) break;
        slot = (slot + 1) & mask;
      }
      const u = slot * SLOT;
      table[u + PARENT] = parent;
      const inline = Math.min(labelEnd - i, LABEL_INLINE);
      for (let j = 0; j < inline; j++) tableBytes[(u + LABEL) * 4 + j] = name.charCodeAt(i + j);
      return u;
    };
    // The walk meets every proper suffix of each node, so it also finds the node's nearest listed one (its
    // parent node: the longest proper suffix that is a node), which a lookup of each parent name found before.
    const nodeParent = new Int32Array(nodes).fill(-1);
    for (let first = 0; first < nodes; first += BATCH) {
      touched += suffixBatch(first, 0);
      for (let k = first; k < Math.min(nodes, first + BATCH); k++) {
        const name = this.names[nodeRow[k]];
        const end = name.length;
        let parent = -1;
        let listed = -1;
        let labelEnd = end;
        const c = batchCount[k - first];
        if (c >= 0) {
          const base = (k - first) * BATCH_PROBES;
          for (let p = 0; p < c; p++) {
            const i = batchAt[base + p];
            parent = linkSuffix(name, batchHash[base + p], i, end, parent, labelEnd);
            if (i > 0 && (table[parent + 2] & IS_NODE) !== 0) listed = parent;
            labelEnd = i - 1;
          }
        } else {
          let h = FNV_OFFSET;
          for (let i = end - 1; i >= 0; i--) {
            h = hashChar(h, name.charCodeAt(i));
            if (i > 0 && name.charCodeAt(i - 1) !== 0x2e) continue;
            parent = linkSuffix(name, finalize(h) | 0, i, end, parent, labelEnd);
            if (i > 0 && (table[parent + 2] & IS_NODE) !== 0) listed = parent;
            labelEnd = i - 1;
          }
        }
        if (listed >= 0) nodeParent[k] = table[listed + BEST];
      }
    }
    // Kept where the optimiser cannot prove it unused, so the reads stay.
    if (touched === 0.5) throw new Error('unreachable');
    // 2. Rows grouped by node (counting sort), ordered inside a node: ALLOW, severity desc, list id, entry id.
    const nodeFirst = new Uint32Array(nodes + 1);
    for (let r = 0; r < n; r++) nodeFirst[rowNode[r] + 1]++;
    for (let k = 0; k < nodes; k++) nodeFirst[k + 1] += nodeFirst[k];
    const fill = nodeFirst.slice(0, nodes);
    const order = new Uint32Array(n);
    for (let r = 0; r < n; r++) order[fill[rowNode[r]]++] = r;
    const ids = this.ids;
    const li = this.listIdx;
    const rank = (a: number, b: number) =>
      listAllow[li[b]] - listAllow[li[a]] || listSeverity[li[b]] - listSeverity[li[a]] || lists[li[a]].id - lists[li[b]].id || ids[a] - ids[b];
    for (let k = 0; k < nodes; k++) {
      const s = nodeFirst[k];
      const e = nodeFirst[k + 1];
      if (e - s > 1) order.set(Array.from(order.subarray(s, e)).sort(rank), s);
    }
    const rowEntryId = new Float64Array(n);
    const rowList = new Uint32Array(n);
    const rowExpires = new Float64Array(n);
    let validUntil = Infinity;
    for (let i = 0; i < n; i++) {
      const r = order[i];
      rowEntryId[i] = ids[r];
      rowList[i] = li[r];
      rowExpires[i] = this.expires[r];
      if (this.expires[r] < validUntil) validUntil = this.expires[r];
    }
    // 3. Own answer per node: ALLOW present, best BLOCK row.
    const ownAllow = new Uint8Array(nodes);
    const ownBlock = new Int32Array(nodes).fill(NO_DOMAIN_MATCH);
    for (let k = 0; k < nodes; k++) {
      for (let i = nodeFirst[k]; i < nodeFirst[k + 1]; i++) {
        if (listAllow[rowList[i]] === 1) ownAllow[k] = 1;
        else if (ownBlock[k] === NO_DOMAIN_MATCH) ownBlock[k] = i;
      }
    }
    // Each node's slot held its node until now (the answer replaces it below): one read of the slot's line
    // where a table of its own cost a cache miss more per insert and per duplicate name.
    const slotNode = new Int32Array(size).fill(-1);
    for (let s = 0; s < size; s++) if ((table[s * SLOT + 2] & IS_NODE) !== 0) slotNode[s] = table[s * SLOT + BEST];
    let filterWords = 2;
    while (filterWords * 32 < used * FILTER_BITS_PER_NAME) filterWords *= 2;
    const index = new DomainIndex({
      lists,
      mask,
      table,
      tableBytes,
      filter: new Int32Array(filterWords),
      filterShift: 32 - Math.log2(filterWords),
      slotNode,
      pool,
      nodeOff,
      nodeLen,
      nodeFirst,
      parent: nodeParent,
      best: new Int32Array(nodes),
      allowed: new Uint8Array(nodes),
      rowEntryId,
      rowList,
      rowExpires,
      nodes,
      validUntil,
      droppedExpired: this.droppedExpired,
      droppedUnknownList: this.droppedUnknownList,
    });
    const d = index.data;
    // The filter of every suffix in the table (nodes and markers), before the first lookup below.
    for (let s = 0; s < size; s++) if (table[s * SLOT + 2] !== 0) filterAdd(d.filter, d.filterShift, table[s * SLOT]);
    // 4. The chain's answer (parent links from 1c), parents first.
    const done = new Uint8Array(nodes);
    const chain: number[] = [];
    for (let k = 0; k < nodes; k++) {
      for (let c = k; c >= 0 && done[c] === 0; c = d.parent[c]) chain.push(c);
      while (chain.length > 0) {
        const c = chain.pop() as number;
        const p = d.parent[c];
        const allowed = ownAllow[c] === 1 || (p >= 0 && d.allowed[p] === 1);
        d.allowed[c] = allowed ? 1 : 0;
        d.best[c] = allowed ? NO_DOMAIN_MATCH : ownBlock[c] !== NO_DOMAIN_MATCH ? ownBlock[c] : p >= 0 ? d.best[p] : NO_DOMAIN_MATCH;
        done[c] = 1;
      }
    }
    // The answer goes into the node's slot: a lookup reads nothing else.
    for (let s = 0; s < size; s++) {
      const k = slotNode[s];
      if (k < 0) continue;
      table[s * SLOT + 3] = d.best[k];
      if (d.allowed[k] === 1) table[s * SLOT + 2] |= ALLOWED;
    }
    this.count = 0;
    this.ids = new Float64Array(1024);
    this.listIdx = new Int32Array(1024);
    this.expires = new Float64Array(1024);
    this.names = [];
    return index;
  }
}

/** What a packed DomainIndexBuilder holds, for DomainIndexBuilder.fromColumns (structured-cloneable). */
export interface DomainBuilderColumns {
  lists: IocListInfo[];
  now: number;
  count: number;
  ids: Float64Array<ArrayBuffer>;
  listIdx: Int32Array<ArrayBuffer>;
  expires: Float64Array<ArrayBuffer>;
  /** The names' latin1 bytes, one after another; name i ends at nameEnds[i]. */
  nameBytes: Uint8Array;
  nameEnds: Uint32Array;
  droppedExpired: number;
  droppedUnknownList: number;
}

export interface DomainIndexData {
  lists: IocListInfo[];
  mask: number;
  table: Int32Array;
  /** The table's bytes (the inline labels). */
  tableBytes: Uint8Array;
  /** Blocked Bloom filter of the table's hashes: two bits in one word per suffix (`filterShift` = 32 - log2 words). */
  filter: Int32Array;
  filterShift: number;
  /** Node of each slot, -1 for markers (cold paths: lookup(), build). */
  slotNode: Int32Array;
  pool: Buffer;
  nodeOff: Uint32Array;
  nodeLen: Uint8Array;
  nodeFirst: Uint32Array;
  parent: Int32Array;
  best: Int32Array;
  allowed: Uint8Array;
  rowEntryId: Float64Array;
  rowList: Uint32Array;
  rowExpires: Float64Array;
  nodes: number;
  validUntil: number;
  droppedExpired: number;
  droppedUnknownList: number;
}

export function buildDomainIndex(lists: readonly IocListInfo[], entries: Iterable<DomainEntryInput>, options: { now?: number } = {}): DomainIndex {
  const b = new DomainIndexBuilder(lists, options);
  for (const e of entries) b.add(e);
  return b.build();
}

export class DomainIndex {
  constructor(readonly data: DomainIndexData) {}

  /** Earliest expiry of an entry in the index (Infinity: none): rebuild after it. */
  get validUntil(): number {
    return this.data.validUntil;
  }

  get stats(): DomainIndexStats {
    const d = this.data;
    const bytes =
      d.table.byteLength +
      d.filter.byteLength +
      d.slotNode.byteLength +
      d.pool.length +
      d.nodeOff.byteLength +
      d.nodeLen.byteLength +
      d.nodeFirst.byteLength +
      d.parent.byteLength +
      d.best.byteLength +
      d.allowed.byteLength +
      d.rowEntryId.byteLength +
      d.rowList.byteLength +
      d.rowExpires.byteLength;
    return {
      lists: d.lists.length,
      entries: d.rowEntryId.length,
      names: d.nodes,
      droppedExpired: d.droppedExpired,
      droppedUnknownList: d.droppedUnknownList,
      bytes,
    };
  }

  /**
   * The slot (table index) of the longest listed suffix of name[from..] that starts at a label boundary, or -1.
   * One right-to-left pass: the running hash of the suffix read so far is probed at every label start, until a
   * suffix is absent or nothing listed lies below it.
   */
  longestSlot(name: string, from = 0): number {
    const { filter, filterShift } = this.data;
    let end = name.length;
    if (end > from + 1 && name.charCodeAt(end - 1) === 0x2e) end--;
    let h = FNV_OFFSET;
    let found = -1;
    /** The slot of the suffix matched last (the parent of the next), and where its first label ends. */
    let parent = -1;
    let labelEnd = end;
    // The suffix name[i + 1..end) is probed when the character before it is a dot (seen as the loop reaches it)
    // or i + 1 === from: one read per character.
    for (let i = end - 1; i >= from - 1; i--) {
      const c = i >= from ? name.charCodeAt(i) : 0x2e;
      if (c === 0x2e && i < end - 1) {
        const hash = finalize(h) | 0;
        const bits = filterBits(hash);
        // Most suffixes asked are not in the table: the filter says so without reading it.
        if ((filter[filterWord(hash, filterShift)] & bits) !== bits) break;
        const t = this.probe(name, hash, i + 1, end, labelEnd, parent);
        if (t < 0) break;
        const f = this.data.table[t + 2];
        if ((f & IS_NODE) !== 0) found = t;
        if ((f & HAS_DESC) === 0) break;
        parent = t;
        labelEnd = i;
      }
      h = hashChar(h, c);
    }
    return found;
  }

  /**
   * The slot of the suffix name[start..end) whose first label ends at `labelEnd` and whose parent suffix has the
   * slot `parent`, or -1 when the table does not hold it.
   */
  private probe(name: string, hash: number, start: number, end: number, labelEnd: number, parent: number): number {
    const { table, tableBytes, mask, pool } = this.data;
    const len = end - start;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const u = slot * SLOT;
      const f = table[u + 2];
      if (f === 0) return -1;
      if (table[u] !== hash || (f & LEN_MASK) !== len || table[u + PARENT] !== parent) continue;
      // Only the first label is compared: the rest is the parent suffix, matched already.
      const inline = Math.min(labelEnd, start + LABEL_INLINE);
      let b = (u + LABEL) * 4;
      let j = start;
      for (; j < inline; j++, b++) {
        let q = name.charCodeAt(j);
        if (q >= 0x41 && q <= 0x5a) q += 0x20;
        if (tableBytes[b] !== q) break;
      }
      if (j === inline && inline < labelEnd) {
        for (let o = table[u + 1] + (j - start); j < labelEnd; j++, o++) {
          let q = name.charCodeAt(j);
          if (q >= 0x41 && q <= 0x5a) q += 0x20;
          if (pool[o] !== q) break;
        }
      }
      if (j === labelEnd) return u;
    }
  }

  /**
   * bestBlockRow of every name into `out` (same length), the names taken BATCH at a time in three passes: the first
   * hashes each name's suffixes and asks the filter, the second reads the table slot of each suffix the filter let
   * through, the third probes as longestSlot does. A listed name costs a read of the table (tens of MB: a cache
   * miss that a lookup alone waits out in full, its hashing too long for the processor to reach the next name's
   * read meanwhile); the second pass issues a batch's reads together, so their misses overlap.
   */
  bestBlockRows(names: readonly string[], out: Int32Array): void {
    let touched = 0;
    for (let from = 0; from < names.length; from += BATCH) {
      touched += this.hashBatch(names, from);
      this.probeBatch(names, from, out);
    }
    // Kept where the optimiser cannot prove it unused, so the reads stay.
    this.touched = touched;
  }

  /**
   * Hashes the suffixes of names[from..from + BATCH) into the scratch arrays, up to the first the filter rules
   * out (count -1: more than the scratch holds), then reads the table slot of each, in a loop short enough that
   * the processor has them all in flight at once. Returns a sum of what it read.
   */
  private hashBatch(names: readonly string[], from: number): number {
    const { table, mask, filter, filterShift } = this.data;
    const hashes = this.batchHashes;
    const starts = this.batchStarts;
    const counts = this.batchCounts;
    const ends = this.batchEnds;
    const touch = this.batchTouch;
    let reads = 0;
    const n = Math.min(BATCH, names.length - from);
    for (let b = 0; b < n; b++) {
      const name = names[from + b];
      let end = name.length;
      if (end > 1 && name.charCodeAt(end - 1) === 0x2e) end--;
      const base = b * BATCH_PROBES;
      let k = 0;
      let h = FNV_OFFSET;
      for (let i = end - 1; i >= -1; i--) {
        const c = i >= 0 ? name.charCodeAt(i) : 0x2e;
        if (c === 0x2e && i < end - 1) {
          const hash = finalize(h) | 0;
          const bits = filterBits(hash);
          if ((filter[filterWord(hash, filterShift)] & bits) !== bits) break;
          if (k === BATCH_PROBES) {
            k = -1;
            break;
          }
          hashes[base + k] = hash;
          starts[base + k] = i + 1;
          // A suffix of one label (a TLD) is read by most lookups, and cached: no read ahead of it.
          if (k > 0) touch[reads++] = (hash & mask) * SLOT;
          k++;
        }
        h = hashChar(h, c);
      }
      counts[b] = k;
      ends[b] = end;
    }
    let touched = 0;
    for (let i = 0; i < reads; i++) touched += table[touch[i]];
    return touched;
  }

  /** Probes names[from..from + BATCH) with the scratch arrays' hashes, as longestSlot does, into `out`. */
  private probeBatch(names: readonly string[], from: number, out: Int32Array): void {
    const table = this.data.table;
    const hashes = this.batchHashes;
    const starts = this.batchStarts;
    const n = Math.min(BATCH, names.length - from);
    for (let b = 0; b < n; b++) {
      const name = names[from + b];
      const k = this.batchCounts[b];
      if (k < 0) {
        out[from + b] = this.bestBlockRow(name);
        continue;
      }
      const end = this.batchEnds[b];
      const base = b * BATCH_PROBES;
      let found = -1;
      let parent = -1;
      let labelEnd = end;
      for (let p = 0; p < k; p++) {
        const start = starts[base + p];
        const t = this.probe(name, hashes[base + p], start, end, labelEnd, parent);
        if (t < 0) break;
        const f = table[t + 2];
        if ((f & IS_NODE) !== 0) found = t;
        if ((f & HAS_DESC) === 0) break;
        parent = t;
        labelEnd = start - 1;
      }
      out[from + b] = found < 0 ? NO_DOMAIN_MATCH : table[found + 3];
    }
  }

  /** The describing match of a row bestBlockRow(s) gave. */
  blockMatch(row: number): DomainMatch {
    return this.describeRow(row, this.rowNode(row), false);
  }

  private readonly batchHashes = new Int32Array(BATCH * BATCH_PROBES);
  private readonly batchStarts = new Int32Array(BATCH * BATCH_PROBES);
  private readonly batchCounts = new Int32Array(BATCH);
  /** The table offsets a batch reads ahead, in one flat list (one loop without inner branches). */
  private readonly batchTouch = new Int32Array(BATCH * BATCH_PROBES);
  private readonly batchEnds = new Int32Array(BATCH);
  private touched = 0;

  /**
   * The best BLOCK row containing the name, or NO_DOMAIN_MATCH when nothing blocks it or an ALLOW entry contains
   * it. "Best" = most specific name, then ALLOW/severity/list/entry order.
   */
  bestBlockRow(name: string): number {
    const t = this.longestSlot(name);
    return t < 0 ? NO_DOMAIN_MATCH : this.data.table[t + 3];
  }

  /** True when an ALLOW entry contains the name. */
  isAllowed(name: string): boolean {
    const t = this.longestSlot(name);
    return t >= 0 && (this.data.table[t + 2] & ALLOWED) !== 0;
  }

  rowEntryId(row: number): number {
    return this.data.rowEntryId[row];
  }

  rowList(row: number): IocListInfo {
    return this.data.lists[this.data.rowList[row]];
  }

  /** The best unsuppressed BLOCK match, or null. */
  bestBlock(name: string): DomainMatch | null {
    const row = this.bestBlockRow(name);
    return row === NO_DOMAIN_MATCH ? null : this.blockMatch(row);
  }

  /**
   * Every entry containing the name, most specific first (same name: ALLOW first, then severity descending).
   * BLOCK entries are marked `suppressed` when a matching ALLOW entry exists.
   */
  lookup(name: string): DomainMatch[] {
    const d = this.data;
    const t = this.longestSlot(name);
    if (t < 0) return [];
    const top = d.slotNode[t / SLOT];
    const suppressed = d.allowed[top] === 1;
    const out: DomainMatch[] = [];
    for (let k = top; k >= 0; k = d.parent[k]) {
      for (let r = d.nodeFirst[k]; r < d.nodeFirst[k + 1]; r++) out.push(this.describeRow(r, k, suppressed));
    }
    return out;
  }

  private rowNode(row: number): number {
    // nodeFirst is ascending: binary search for the node holding the row.
    const f = this.data.nodeFirst;
    let lo = 0;
    let hi = this.data.nodes - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private describeRow(row: number, node: number, suppressed: boolean): DomainMatch {
    const d = this.data;
    const list = d.lists[d.rowList[row]];
    const exp = d.rowExpires[row];
    return {
      entryId: d.rowEntryId[row],
      list,
      name: d.pool.toString('latin1', d.nodeOff[node], d.nodeOff[node] + d.nodeLen[node]),
      expiresAt: exp === Infinity ? null : exp,
      suppressed: suppressed && list.kind === 'BLOCK',
    };
  }
}
