/**
 * Columnar (struct-of-arrays) output of the tcpdump parser: one row per packet line, no per-row objects,
 * so a 15 MB upload (~130k rows) costs a handful of typed arrays instead of 130k objects for the GC.
 */
import { formatIpv4, formatIpv6, ipv6FromWords } from '../../../common/net/ip';

/** Layer-4 protocol as the line states it. Numeric: it lives in a Uint8Array column. */
export enum Protocol {
  UNKNOWN = 0,
  TCP = 1,
  UDP = 2,
  ICMP = 3,
  ICMP6 = 4,
}

/** TCP header flag bits (RFC 9293 order), decoded from tcpdump's `Flags [S.]` letters. */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Largest whole second whose microsecond count still fits a float64 exactly (2^53 µs, year 2255). */
export const MAX_EPOCH_SECONDS = Math.floor(Number.MAX_SAFE_INTEGER / 1e6);

/** Bytes of one row over all columns: tsMicros 8, seven 4-byte columns, three 1-byte ones. */
const BYTES_PER_ROW = 8 + 7 * 4 + 3;
/** IPv6 words a new batch has room for (8 slots) before addV6Slot allocates. */
const V6_WORDS_START = 64;

/**
 * Rows `0 .. count-1` are valid. IPv6 rows keep their addresses in a side table: `v6Slot[i]` = s >= 0 means
 * source `v6Words[8s .. 8s+3]` and destination `v6Words[8s+4 .. 8s+7]`, most significant word first.
 * No text is kept: ipv6Text() gives back tcpdump's spelling when a row is shown.
 */
export class PacketBatch {
  count = 0;
  /** 1-based line number in the whole upload (not in the chunk). */
  lineNo: Uint32Array;
  /** Capture time in whole microseconds since the epoch: exact, since tcpdump -tt prints `%u.%06u`. */
  tsMicros: Float64Array;
  /** 4 or 6: the outer IP header's family (tcpdump's `IP` / `IP6`). */
  family: Uint8Array;
  protocol: Uint8Array;
  /** TcpFlag bits; 0 when the line is not TCP or prints no flags (`-q`). */
  tcpFlags: Uint8Array;
  /** IPv4 addresses as unsigned 32-bit integers (a.b.c.d = a<<24 | ...); 0 on IPv6 rows. */
  srcV4: Uint32Array;
  dstV4: Uint32Array;
  /** -1 when the header shape has no ports (ICMP, fragments, ESP, GRE, ...). */
  srcPort: Int32Array;
  dstPort: Int32Array;
  /** The last `length N` printed from the IP header on (not -e's frame length), 0 when none. */
  printedLength: Uint32Array;
  /** -1 on IPv4 rows; otherwise the slot in the IPv6 side table. */
  v6Slot: Int32Array;
  v6Count = 0;
  v6Words: Uint32Array;

  constructor(capacity = 1024) {
    const n = Math.max(16, capacity | 0);
    // One ArrayBuffer carved into every column (and the first IPv6 words): the parser makes a batch per chunk
    // when given none, and twelve backing stores per batch cost more than filling the batch.
    const mem = new ArrayBuffer(n * BYTES_PER_ROW + V6_WORDS_START * 4);
    let at = 0;
    const take = (bytes: number): number => {
      const start = at;
      at += bytes;
      return start;
    };
    this.tsMicros = new Float64Array(mem, take(n * 8), n);
    this.lineNo = new Uint32Array(mem, take(n * 4), n);
    this.srcV4 = new Uint32Array(mem, take(n * 4), n);
    this.dstV4 = new Uint32Array(mem, take(n * 4), n);
    this.srcPort = new Int32Array(mem, take(n * 4), n);
    this.dstPort = new Int32Array(mem, take(n * 4), n);
    this.printedLength = new Uint32Array(mem, take(n * 4), n);
    this.v6Slot = new Int32Array(mem, take(n * 4), n);
    this.v6Words = new Uint32Array(mem, take(V6_WORDS_START * 4), V6_WORDS_START);
    this.family = new Uint8Array(mem, take(n), n);
    this.protocol = new Uint8Array(mem, take(n), n);
    this.tcpFlags = new Uint8Array(mem, take(n), n);
  }

  get capacity(): number {
    return this.lineNo.length;
  }

  /** Doubles every column; the parser calls it before writing row `capacity`. */
  grow(): void {
    const next = new PacketBatch(this.capacity * 2);
    this.lineNo = growTo(this.lineNo, next.lineNo);
    this.tsMicros = growTo(this.tsMicros, next.tsMicros);
    this.family = growTo(this.family, next.family);
    this.protocol = growTo(this.protocol, next.protocol);
    this.tcpFlags = growTo(this.tcpFlags, next.tcpFlags);
    this.srcV4 = growTo(this.srcV4, next.srcV4);
    this.dstV4 = growTo(this.dstV4, next.dstV4);
    this.srcPort = growTo(this.srcPort, next.srcPort);
    this.dstPort = growTo(this.dstPort, next.dstPort);
    this.printedLength = growTo(this.printedLength, next.printedLength);
    this.v6Slot = growTo(this.v6Slot, next.v6Slot);
  }

  /** Empties the batch for reuse (a worker folding chunk by chunk need not allocate per chunk). */
  clear(): void {
    this.count = 0;
    this.v6Count = 0;
  }

  /** Reserves the next IPv6 side-table slot and returns it. */
  addV6Slot(): number {
    const slot = this.v6Count++;
    if ((slot + 1) * 8 > this.v6Words.length) this.v6Words = growTo(this.v6Words, new Uint32Array(this.v6Words.length * 2));
    return slot;
  }
}

/** Copies `old` into the larger `next` and returns it. */
export function growTo<T extends { set(src: ArrayLike<number>): void }>(old: ArrayLike<number>, next: T): T {
  next.set(old);
  return next;
}

/** One parsed packet line as a plain object (tests, CLI, small inputs). */
export interface PacketRow {
  lineNo: number;
  /** The timestamp exactly as tcpdump printed it. */
  ts: string;
  tsMicros: number;
  /** tcpdump's family marker. */
  family: 'IP' | 'IP6';
  src: string;
  srcPort: number | null;
  dst: string;
  dstPort: number | null;
  protocol: Protocol;
  tcpFlags: number;
  /** TCP SYN without ACK: the packet that opens a connection. */
  syn: boolean;
  length: number;
}

/** Back to tcpdump's `-tt` text: `%u.%06u` has no other spelling, so this is the printed string. */
export function formatTimestamp(tsMicros: number): string {
  const sec = Math.floor(tsMicros / 1e6);
  const usec = tsMicros - sec * 1e6;
  return `${sec}.${String(usec).padStart(6, '0')}`;
}

/**
 * IPv6 words back to the text tcpdump printed. tcpdump (addrtostr6, after BIND's inet_ntop) writes the
 * RFC 5952 form that formatIpv6 gives, except that it also keeps a dotted tail for the deprecated
 * IPv4-compatible ::a.b.c.d (first 96 bits zero, not :: or ::1, i.e. the upper half of the last word set).
 */
export function ipv6Text(words: ArrayLike<number>, off: number): string {
  const w3 = words[off + 3];
  if (words[off] === 0 && words[off + 1] === 0 && words[off + 2] === 0 && w3 >>> 16 !== 0) return `::${formatIpv4(w3)}`;
  return formatIpv6(ipv6FromWords(words[off], words[off + 1], words[off + 2], w3));
}

export function isSyn(tcpFlags: number): boolean {
  return (tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
}

export function batchRow(batch: PacketBatch, i: number): PacketRow {
  const v4 = batch.family[i] === 4;
  const slot = batch.v6Slot[i];
  const sp = batch.srcPort[i];
  const dp = batch.dstPort[i];
  return {
    lineNo: batch.lineNo[i],
    ts: formatTimestamp(batch.tsMicros[i]),
    tsMicros: batch.tsMicros[i],
    family: v4 ? 'IP' : 'IP6',
    src: v4 ? formatIpv4(batch.srcV4[i]) : ipv6Text(batch.v6Words, 8 * slot),
    srcPort: sp < 0 ? null : sp,
    dst: v4 ? formatIpv4(batch.dstV4[i]) : ipv6Text(batch.v6Words, 8 * slot + 4),
    dstPort: dp < 0 ? null : dp,
    protocol: batch.protocol[i] as Protocol,
    tcpFlags: batch.tcpFlags[i],
    syn: isSyn(batch.tcpFlags[i]),
    length: batch.printedLength[i],
  };
}

export function batchRows(batch: PacketBatch): PacketRow[] {
  const rows: PacketRow[] = new Array(batch.count);
  for (let i = 0; i < batch.count; i++) rows[i] = batchRow(batch, i);
  return rows;
}
