/**
 * Folds the packets of one upload into connections, batch by batch as the parser produces them.
 *
 * - One connection per (protocol, {address A, port A}, {address B, port B}): both directions of the pair
 *   fold together (the key is the pair in canonical order). Lines without ports (ICMP, fragments, ESP)
 *   fold per (protocol, address pair). Port reuse after a close is not split: one upload is minutes long.
 * - The initiator is the source of the opening packet: a TCP SYN (`Flags [S]`) when one is seen, else the
 *   destination of a SYN-ACK (capture began mid-handshake), else the source of the first packet. A SYN
 *   seen later than other packets still re-orients the connection, counters included.
 * - Direction, internal and external side come from the initiator and responder once all packets are in,
 *   by the rule of sides.ts with nothing matched yet: OUTBOUND when the initiator is inside and the
 *   responder is not; then the initiator is the internal side. Otherwise INBOUND (the product default), and
 *   the responder is the internal side. The processor chooses again once it knows which ends matched an
 *   IOC (when neither end is inside, the unmatched one is ours).
 * - IPv4 keys live in a typed-array open-addressing hash (no string per packet: ~10x faster than a Map
 *   of string keys on 130k packets, see bench/parser.bench.ts); IPv6 uses a Map keyed by a 16-char
 *   string of the address bits.
 */
import { formatIpv4, IpFamily } from '../../../common/net';
import { growTo, ipv6Text, PacketBatch, Protocol, TcpFlag } from '../parsing/packet-batch';
import { Direction, DirectionClassifier } from './direction';
import { sidesOf } from './sides';

export enum ConnectionOpening {
  /** A SYN (no ACK) was seen: its source initiated. */
  SYN = 'SYN',
  /** Only the SYN-ACK was seen: its destination initiated. */
  SYN_ACK = 'SYN_ACK',
  /** No handshake in the capture: the first packet's source is taken as initiator. */
  FIRST_PACKET = 'FIRST_PACKET',
}

export interface ConnectionEndpoint {
  /** Address text as tcpdump prints it. */
  ip: string;
  port: number | null;
  /** IPv4 as uint32; 0 for IPv6. */
  v4: number;
  /** IPv6 as four big-endian words; null for IPv4. */
  v6: Uint32Array | null;
  /** RFC 1918, fc00::/7 or one of the device's internal networks. */
  internal: boolean;
  /** Not internal and not local scope: the only endpoints matched against IOCs. */
  canCrossInternet: boolean;
  /** Not internal, and multicast, link-local, broadcast, loopback or unspecified: never one of our hosts. */
  localScope: boolean;
}

export interface Connection {
  family: IpFamily;
  protocol: Protocol;
  direction: Direction;
  openedBy: ConnectionOpening;
  initiator: ConnectionEndpoint;
  responder: ConnectionEndpoint;
  /** The same objects as initiator/responder, picked by the rule of sides.ts. */
  internal: ConnectionEndpoint;
  external: ConnectionEndpoint;
  /** Initiator -> responder. */
  packetsForward: number;
  bytesForward: number;
  /** Responder -> initiator. */
  packetsReverse: number;
  bytesReverse: number;
  /** Capture times (µs since the epoch) of the earliest and latest packet. */
  firstMicros: number;
  lastMicros: number;
}

const EMPTY = -1;
const OPENED_FIRST = 0;
const OPENED_SYN_ACK = 1;
const OPENED_SYN = 2;
const OPENINGS = [ConnectionOpening.FIRST_PACKET, ConnectionOpening.SYN_ACK, ConnectionOpening.SYN];

/** murmur3 finalizer over the IPv4 key. */
function hashV4(lo: number, hi: number, ports: number, proto: number): number {
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ hi, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ports, 0x85ebca6b);
  h ^= proto << 24;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Columns per connection are in canonical endpoint order ("lo" = the smaller (address, port)); which of
 * them initiated is a flag, so a late SYN re-orients by flipping it.
 */
export class ConnectionFolder {
  private n = 0;
  private family: Uint8Array;
  private protocol: Uint8Array;
  private loV4: Uint32Array;
  private hiV4: Uint32Array;
  private loPort: Int32Array;
  private hiPort: Int32Array;
  private initiatorIsLo: Uint8Array;
  private opened: Uint8Array;
  private packetsLoHi: Float64Array;
  private packetsHiLo: Float64Array;
  private bytesLoHi: Float64Array;
  private bytesHiLo: Float64Array;
  private first: Float64Array;
  private last: Float64Array;
  /** IPv6 connections: 8 words (lo, hi) per connection index; unused for IPv4. */
  private v6Words: Uint32Array;
  private table: Int32Array;
  private tableMask: number;
  private v4Count = 0;
  private readonly v6Index = new Map<string, number>();

  constructor(
    private readonly classifier: DirectionClassifier,
    capacity = 1024,
  ) {
    const c = Math.max(16, capacity | 0);
    this.family = new Uint8Array(c);
    this.protocol = new Uint8Array(c);
    this.loV4 = new Uint32Array(c);
    this.hiV4 = new Uint32Array(c);
    this.loPort = new Int32Array(c);
    this.hiPort = new Int32Array(c);
    this.initiatorIsLo = new Uint8Array(c);
    this.opened = new Uint8Array(c);
    this.packetsLoHi = new Float64Array(c);
    this.packetsHiLo = new Float64Array(c);
    this.bytesLoHi = new Float64Array(c);
    this.bytesHiLo = new Float64Array(c);
    this.first = new Float64Array(c);
    this.last = new Float64Array(c);
    this.v6Words = new Uint32Array(c * 8);
    let t = 16;
    while (t < c * 2) t *= 2;
    this.table = new Int32Array(t).fill(EMPTY);
    this.tableMask = t - 1;
  }

  /** Connections so far. */
  get size(): number {
    return this.n;
  }

  add(batch: PacketBatch): void {
    const { family, protocol, srcV4, dstV4, srcPort, dstPort, tcpFlags, printedLength, tsMicros, v6Slot, v6Words } = batch;
    for (let i = 0; i < batch.count; i++) {
      const sp = srcPort[i];
      const dp = dstPort[i];
      let c: number;
      let srcIsLo: boolean;
      if (family[i] === 4) {
        const s = srcV4[i];
        const d = dstV4[i];
        srcIsLo = s < d || (s === d && sp <= dp);
        c = srcIsLo ? this.findV4(s, sp, d, dp, protocol[i]) : this.findV4(d, dp, s, sp, protocol[i]);
      } else {
        const o = v6Slot[i] * 8;
        srcIsLo = compareV6(v6Words, o, sp, o + 4, dp) <= 0;
        c = this.findV6(batch, i, o, srcIsLo);
      }
      const t = tsMicros[i];
      const len = printedLength[i];
      if (c < 0) {
        c = -c - 1; // new: the first packet opens it
        this.initiatorIsLo[c] = srcIsLo ? 1 : 0;
        this.first[c] = t;
        this.last[c] = t;
      } else {
        if (t < this.first[c]) this.first[c] = t;
        if (t > this.last[c]) this.last[c] = t;
      }
      if (srcIsLo) {
        this.packetsLoHi[c]++;
        this.bytesLoHi[c] += len;
      } else {
        this.packetsHiLo[c]++;
        this.bytesHiLo[c] += len;
      }
      const flags = tcpFlags[i];
      if ((flags & TcpFlag.SYN) !== 0 && this.opened[c] !== OPENED_SYN) {
        if (!(flags & TcpFlag.ACK)) {
          this.opened[c] = OPENED_SYN;
          this.initiatorIsLo[c] = srcIsLo ? 1 : 0;
        } else if (this.opened[c] === OPENED_FIRST) {
          this.opened[c] = OPENED_SYN_ACK;
          this.initiatorIsLo[c] = srcIsLo ? 0 : 1;
        }
      }
    }
  }

  /** All connections in order of first appearance. The folder can keep folding afterwards. */
  finish(): Connection[] {
    const out: Connection[] = new Array(this.n);
    for (let c = 0; c < this.n; c++) out[c] = this.connection(c);
    return out;
  }

  /** Index of the connection, or -(index+1) when it was just created. */
  private findV4(lo: number, loPort: number, hi: number, hiPort: number, proto: number): number {
    const ports = ((loPort & 0xffff) << 16) | (hiPort & 0xffff); // hash only: equality compares the Int32 ports
    let h = hashV4(lo, hi, ports, proto) & this.tableMask;
    for (;;) {
      const c = this.table[h];
      if (c === EMPTY) break;
      const same = this.loV4[c] === lo && this.hiV4[c] === hi && this.loPort[c] === loPort && this.hiPort[c] === hiPort;
      if (same && this.protocol[c] === proto) return c;
      h = (h + 1) & this.tableMask;
    }
    const c = this.create(4, proto, loPort, hiPort);
    this.loV4[c] = lo;
    this.hiV4[c] = hi;
    this.table[h] = c;
    if (++this.v4Count * 2 > this.table.length) this.rehash();
    return -c - 1;
  }

  private findV6(batch: PacketBatch, i: number, o: number, srcIsLo: boolean): number {
    const w = batch.v6Words;
    const lo = srcIsLo ? o : o + 4;
    const hi = srcIsLo ? o + 4 : o;
    const loPort = srcIsLo ? batch.srcPort[i] : batch.dstPort[i];
    const hiPort = srcIsLo ? batch.dstPort[i] : batch.srcPort[i];
    const proto = batch.protocol[i];
    // 19 UTF-16 units: protocol (+ a no-ports bit, so port 65535 never meets "no port"), ports, 16 address halves.
    const key = String.fromCharCode(
      proto | (loPort < 0 ? 0x100 : 0),
      loPort & 0xffff,
      hiPort & 0xffff,
      w[lo] >>> 16,
      w[lo] & 0xffff,
      w[lo + 1] >>> 16,
      w[lo + 1] & 0xffff,
      w[lo + 2] >>> 16,
      w[lo + 2] & 0xffff,
      w[lo + 3] >>> 16,
      w[lo + 3] & 0xffff,
      w[hi] >>> 16,
      w[hi] & 0xffff,
      w[hi + 1] >>> 16,
      w[hi + 1] & 0xffff,
      w[hi + 2] >>> 16,
      w[hi + 2] & 0xffff,
      w[hi + 3] >>> 16,
      w[hi + 3] & 0xffff,
    );
    const found = this.v6Index.get(key);
    if (found !== undefined) return found;
    const c = this.create(6, proto, loPort, hiPort);
    this.v6Words.set(w.subarray(lo, lo + 4), c * 8);
    this.v6Words.set(w.subarray(hi, hi + 4), c * 8 + 4);
    this.v6Index.set(key, c);
    return -c - 1;
  }

  private create(family: number, proto: number, loPort: number, hiPort: number): number {
    if (this.n === this.family.length) this.grow();
    const c = this.n++;
    this.family[c] = family;
    this.protocol[c] = proto;
    this.loPort[c] = loPort;
    this.hiPort[c] = hiPort;
    this.opened[c] = OPENED_FIRST;
    return c;
  }

  private grow(): void {
    const c = this.family.length * 2;
    const g = growTo;
    this.family = g(this.family, new Uint8Array(c));
    this.protocol = g(this.protocol, new Uint8Array(c));
    this.loV4 = g(this.loV4, new Uint32Array(c));
    this.hiV4 = g(this.hiV4, new Uint32Array(c));
    this.loPort = g(this.loPort, new Int32Array(c));
    this.hiPort = g(this.hiPort, new Int32Array(c));
    this.initiatorIsLo = g(this.initiatorIsLo, new Uint8Array(c));
    this.opened = g(this.opened, new Uint8Array(c));
    this.packetsLoHi = g(this.packetsLoHi, new Float64Array(c));
    this.packetsHiLo = g(this.packetsHiLo, new Float64Array(c));
    this.bytesLoHi = g(this.bytesLoHi, new Float64Array(c));
    this.bytesHiLo = g(this.bytesHiLo, new Float64Array(c));
    this.first = g(this.first, new Float64Array(c));
    this.last = g(this.last, new Float64Array(c));
    this.v6Words = g(this.v6Words, new Uint32Array(c * 8));
  }

  private rehash(): void {
    const size = this.table.length * 2;
    const table = new Int32Array(size).fill(EMPTY);
    const mask = size - 1;
    for (let c = 0; c < this.n; c++) {
      if (this.family[c] !== 4) continue;
      const ports = ((this.loPort[c] & 0xffff) << 16) | (this.hiPort[c] & 0xffff);
      let h = hashV4(this.loV4[c], this.hiV4[c], ports, this.protocol[c]) & mask;
      while (table[h] !== EMPTY) h = (h + 1) & mask;
      table[h] = c;
    }
    this.table = table;
    this.tableMask = mask;
  }

  private endpoint(c: number, lo: boolean): ConnectionEndpoint {
    const port = lo ? this.loPort[c] : this.hiPort[c];
    const cls = this.classifier;
    if (this.family[c] === 4) {
      const v4 = lo ? this.loV4[c] : this.hiV4[c];
      return {
        ip: formatIpv4(v4),
        port: port < 0 ? null : port,
        v4,
        v6: null,
        internal: cls.isInternalV4(v4),
        canCrossInternet: cls.canCrossInternetV4(v4),
        localScope: cls.isLocalScopeV4(v4),
      };
    }
    const v6 = this.v6Words.slice(c * 8 + (lo ? 0 : 4), c * 8 + (lo ? 4 : 8));
    return {
      ip: ipv6Text(v6, 0),
      port: port < 0 ? null : port,
      v4: 0,
      v6,
      internal: cls.isInternalV6(v6, 0),
      canCrossInternet: cls.canCrossInternetV6(v6, 0),
      localScope: cls.isLocalScopeV6(v6, 0),
    };
  }

  private connection(c: number): Connection {
    const iniLo = this.initiatorIsLo[c] === 1;
    const initiator = this.endpoint(c, iniLo);
    const responder = this.endpoint(c, !iniLo);
    return {
      family: this.family[c] as IpFamily,
      protocol: this.protocol[c] as Protocol,
      ...sidesOf(initiator, responder, { initiator: false, responder: false }),
      openedBy: OPENINGS[this.opened[c]],
      initiator,
      responder,
      packetsForward: iniLo ? this.packetsLoHi[c] : this.packetsHiLo[c],
      bytesForward: iniLo ? this.bytesLoHi[c] : this.bytesHiLo[c],
      packetsReverse: iniLo ? this.packetsHiLo[c] : this.packetsLoHi[c],
      bytesReverse: iniLo ? this.bytesHiLo[c] : this.bytesLoHi[c],
      firstMicros: this.first[c],
      lastMicros: this.last[c],
    };
  }
}

/** Orders IPv6 (words at a, port) against (words at b, port). */
function compareV6(w: Uint32Array, a: number, ap: number, b: number, bp: number): number {
  for (let k = 0; k < 4; k++) if (w[a + k] !== w[b + k]) return w[a + k] < w[b + k] ? -1 : 1;
  return ap - bp;
}
