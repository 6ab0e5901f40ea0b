import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocCategory } from '../../ioc/ioc.enums';
import { AccountHits } from '../hit-memory';
import { byteOrder, denseBy, PairTable, scratchInt32, select, topBy } from '../hit-memory.report';
import { ThreatRow } from '../report.types';

/**
 * The triage view: (host, entry, category) pairs of the worst severity ranked by hits, then the next severity
 * while rows are missing (threats.sql.ts). A pair's rows split by list and CIDR as its hits recorded them.
 */
export function threats(data: AccountHits, f: ResolvedHitFilter, first: number, levels: number[], maxCells = MAX_CELLS): ThreatRow[] {
  const sel = select(data, f);
  const groups = data.groups.values;
  const hostInfo = data.hosts.values;
  const pair = denseBy(data, 'entry+category', (g) => `${g.iocId}|${g.category}`);
  const pairs = pair.values.length;
  const pairOf = pair.of;
  const pairEntry = new Int32Array(pairs);
  for (let g = 0; g < groups.length; g++) pairEntry[pairOf[g]] = groups[g].iocId;
  const out: ThreatRow[] = [];
  const isLevel = new Uint8Array(groups.length);
  for (const severity of levels) {
    if (out.length >= first) break;
    const want = first - out.length;
    let any = false;
    for (let g = 0; g < groups.length; g++) {
      isLevel[g] = groups[g].severity === severity ? 1 : 0;
      if (isLevel[g] === 1) any = true;
    }
    if (!any) continue;
    // Each hit of this severity counted under its (host, entry, category) pair, key host * pairs + pair, in an
    // open-addressing table that starts small and doubles (a few thousand pairs stay in the caches); and where the
    // hit is (segment, index), so that the pass over the pairs shown reads these hits only.
    const table = new PairTable(1024);
    const at = scratchInt32(2, 2 * sel.n);
    let n = 0;
    for (let si = 0; si < sel.segments.length; si++) {
      const { group, host } = sel.segments[si];
      for (let i = 0, end = sel.segments[si].n; i < end; i++) {
        const g = group[i];
        if (isLevel[g] === 0) continue;
        table.count(host[i] * pairs + pairOf[g]);
        at[n++] = si;
        at[n++] = i;
      }
    }
    if (table.size === 0) continue;
    // The `want` best pairs: more hits, then device, host (by bytes), entry.
    const hitsOf = (slot: number) => table.counts[slot];
    const order = (a: number, b: number) => {
      const ka = table.keys[a];
      const kb = table.keys[b];
      const ha = hostInfo[Math.floor(ka / pairs)];
      const hb = hostInfo[Math.floor(kb / pairs)];
      return hitsOf(b) - hitsOf(a) || ha.deviceId - hb.deviceId || byteOrder(ha.ip, hb.ip) || pairEntry[ka % pairs] - pairEntry[kb % pairs];
    };
    const ranked = topBy(table.used(), hitsOf, want, order);
    // The rows of the pairs shown, per (host, entry group): hits, packets, ports, directions and times, in typed
    // arrays (tens of thousands of hits can fall to the pairs shown). A hit of a host not shown is passed over at
    // once; the others find their row through (host's place among those shown, group), -2 for a pair not shown.
    const shown = ranked.length;
    const winHost = new Int32Array(shown);
    const winPair = new Int32Array(shown);
    const hostSlot = new Int32Array(hostInfo.length).fill(-1);
    let hostSlots = 0;
    ranked.forEach((slot, w) => {
      const key = table.keys[slot];
      winHost[w] = Math.floor(key / pairs);
      winPair[w] = key % pairs;
      if (hostSlot[winHost[w]] < 0) hostSlot[winHost[w]] = hostSlots++;
    });
    // A cell per (host shown, group) while that stays small (at most 100 hosts are shown, but an account can have
    // hits of hundreds of thousands of entry groups), else a map of the cells met.
    const cells = hostSlots * groups.length;
    const accOf = cells <= maxCells ? new Int32Array(cells).fill(-1) : null;
    const accMap = accOf ? null : new Map<number, number>();
    const acc = new Accumulators(shown * 4);
    for (let k = 0; k < n; k += 2) {
      const seg = sel.segments[at[k]];
      const i = at[k + 1];
      const h = seg.host[i];
      if (hostSlot[h] < 0) continue;
      const g = seg.group[i];
      const cell = hostSlot[h] * groups.length + g;
      let a = accOf ? accOf[cell] : (accMap!.get(cell) ?? -1);
      if (a === -1) {
        const p = pairOf[g];
        let w = 0;
        while (w < shown && (winHost[w] !== h || winPair[w] !== p)) w++;
        a = w === shown ? -2 : acc.open(h, g, w);
        if (accOf) accOf[cell] = a;
        else accMap!.set(cell, a);
      }
      if (a >= 0) acc.add(a, seg.packets[i], seg.port[i], seg.direction[i], seg.at[i], seg.last[i]);
    }
    const rows = acc.rows();
    rows.sort((a, b) => a.rank - b.rank || b.hits - a.hits);
    for (const a of rows) {
      const e = groups[a.group];
      out.push({
        deviceId: hostInfo[a.host].deviceId,
        internalIp: hostInfo[a.host].ip,
        iocId: e.iocId,
        iocListId: e.listId,
        matchedCidr: e.cidr,
        severity: e.severity,
        category: e.category as IocCategory,
        hits: a.hits,
        packets: a.packets,
        destinationPorts: a.ports,
        directions: a.directions.map((d) => data.directions.values[d]).sort() as Direction[],
        firstSeenAt: new Date(a.first),
        lastSeenAt: new Date(a.last),
      });
    }
  }
  return out;
}

/** One row of the pairs shown, as Accumulators.rows() gives it. */
interface ThreatAcc {
  host: number;
  group: number;
  rank: number;
  hits: number;
  packets: number;
  /** The 20 lowest destination ports, ascending. */
  ports: number[];
  /** Direction indexes seen. */
  directions: number[];
  first: number;
  last: number;
}

/** Largest (host shown, group) cell array the threats' second pass allocates (4 MB); past it, a map (`maxCells`). */
const MAX_CELLS = 1 << 20;

/** Words of a port bitmap (65,536 ports). */
const PORT_WORDS = 2048;
/** Destination ports a threat row lists (the lowest). */
const PORTS_SHOWN = 20;

/** Per-row sums of the threats shown, in typed arrays that double as rows are opened. */
class Accumulators {
  private n = 0;
  private host: Int32Array;
  private group: Int32Array;
  private rank: Int32Array;
  private hits: Float64Array;
  private packets: Float64Array;
  private first: Float64Array;
  private last: Float64Array;
  /** A bit per direction index seen. */
  private dirs: Int32Array;
  /** A bitmap of the destination ports seen per row (PORT_WORDS words, 8 KB: rows are few). */
  private readonly ports: Int32Array[] = [];

  constructor(capacity: number) {
    const c = Math.max(4, capacity);
    this.host = new Int32Array(c);
    this.group = new Int32Array(c);
    this.rank = new Int32Array(c);
    this.hits = new Float64Array(c);
    this.packets = new Float64Array(c);
    this.first = new Float64Array(c).fill(Infinity);
    this.last = new Float64Array(c).fill(-Infinity);
    this.dirs = new Int32Array(c);
  }

  open(host: number, group: number, rank: number): number {
    if (this.n === this.host.length) this.grow();
    const a = this.n++;
    this.host[a] = host;
    this.group[a] = group;
    this.rank[a] = rank;
    this.ports.push(new Int32Array(PORT_WORDS));
    return a;
  }

  add(a: number, packets: number, port: number, direction: number, at: number, last: number): void {
    this.hits[a]++;
    this.packets[a] += packets;
    // Ports are 0-65535 (the parser's); -1 is none (ICMP).
    if (port >= 0) this.ports[a][port >>> 5] |= 1 << (port & 31);
    this.dirs[a] |= 1 << direction;
    if (at < this.first[a]) this.first[a] = at;
    if (last > this.last[a]) this.last[a] = last;
  }

  rows(): ThreatAcc[] {
    const out: ThreatAcc[] = [];
    for (let a = 0; a < this.n; a++) {
      const ports: number[] = [];
      const seen = this.ports[a];
      for (let w = 0; w < PORT_WORDS && ports.length < PORTS_SHOWN; w++) {
        const bits = seen[w];
        if (bits === 0) continue;
        for (let b = 0; b < 32 && ports.length < PORTS_SHOWN; b++) if ((bits & (1 << b)) !== 0) ports.push(w * 32 + b);
      }
      const directions: number[] = [];
      for (let d = 0; d < 31; d++) if ((this.dirs[a] & (1 << d)) !== 0) directions.push(d);
      out.push({
        host: this.host[a],
        group: this.group[a],
        rank: this.rank[a],
        hits: this.hits[a],
        packets: this.packets[a],
        ports,
        directions,
        first: this.first[a],
        last: this.last[a],
      });
    }
    return out;
  }

  private grow(): void {
    const c = this.host.length * 2;
    const more = <T extends Int32Array | Float64Array>(a: T, fill?: number): T => {
      const b = new (a.constructor as new (n: number) => T)(c);
      if (fill !== undefined) b.fill(fill);
      b.set(a);
      return b;
    };
    this.host = more(this.host);
    this.group = more(this.group);
    this.rank = more(this.rank);
    this.hits = more(this.hits);
    this.packets = more(this.packets);
    this.first = more(this.first, Infinity);
    this.last = more(this.last, -Infinity);
    this.dirs = more(this.dirs);
  }
}
