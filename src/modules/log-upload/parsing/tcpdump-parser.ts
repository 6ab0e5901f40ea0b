/**
 * Streaming parser of `tcpdump -tt -n` text (tcpdump 4.x). Pure: bytes in, PacketBatch rows + ParseStats out.
 *
 * What makes a packet row (checked against ../shared/corpus/tcpdump: every ascii/ file reproduces expected/):
 * - The line starts with `SECONDS.USEC ` where USEC is exactly 6 digits (tcpdump prints `%u.%06u`; a capture
 *   with tv_usec >= 1e6 prints `1418145370.2147483648`, a time we cannot trust: NO_TIMESTAMP).
 *   A wall-clock start (`21:46:16.463334 `, plain `tcpdump -n`) is NO_TIMESTAMP too and is also counted in
 *   stats.timeOfDayLines so the upload can fail asking for `-tt` (see missingEpochTimestamps).
 * - Then `IP ` or `IP6 ` (not `IP6,`, `IPX`, ...), an optional `truncated-ip - N bytes missing! ` /
 *   `truncated-ip6 - N bytes missing!` (the addresses still come from a complete IP header), and
 *   `SRC > DST:` followed by a space or the end of the line. IPv4 is `a.b.c.d[.port]` (no leading zeros);
 *   IPv6 is a strict address, with `.port` split at the last dot. Both sides have a port or neither.
 * - Link-level output (`-e`) has no `IP` keyword: the header starts after `ethertype IPv4 (0x0800), length N: `
 *   (also after VLAN tags, Linux cooked ` In`/`Out`), PPP's `IP (0x0021), length N: `, raw `ip: `, or the
 *   bottom MPLS label `[S], ttl N) `. The first such anchor on the line is the outer header.
 *
 * Choices on the reference's ambiguous lines (corpus ambiguous/*.amb.tsv; either treatment is accepted):
 * - Tunnels (GRE, Geneve, MPLS-over-UDP, NSH, IP6-in-IP6 on ONE line): the outer header only. The inner packet
 *   never reached or left our network as such; the outer endpoints are what crossed the wire.
 * - `IP a > b: a.P > b.P: PGM` and IPv6 extension headers (`HBH 41851 > 43913:`, `RT6 (...) 57745 > 5001:`):
 *   EMPTY ports. Only ports glued to the header's addresses are read; payload text is not trusted.
 * - IP after a layer-2 tag on a line that does not start with `IP` (MPLS, DSA, EDSA, BRCM, NSH, Arista,
 *   unknown PPP): a row. tcpdump prints `IP `/`IP6 ` before every IP header it decodes, and these tags sit
 *   below IP, so the first ` IP ` token on such a line is the packet's outermost IP header.
 * - Packet lines without their own timestamp (VXLAN/Geneve inner packet, `[Error converting time] IP ...`):
 *   no row (NO_TIMESTAMP); the outer line, when present, already carried the packet.
 *
 * Protocol (tcpdump prints no L4 name in the default format, so only explicit tokens right after `DST: `):
 * `Flags [` or `-q`'s `tcp N` -> TCP (flag letters decoded, SYN visible); `UDP` as a whole token (`UDP,`,
 * `UDP-encap:`) -> UDP; `ICMP` -> ICMP; `ICMP6` (also after `HBH `) -> ICMP6; `ip-proto-N` -> by number.
 * Anything else (DNS, NTP, BOOTP printers...) stays UNKNOWN even on well-known ports: a port is no proof.
 * `length` is the last `length N` from the IP header on (for `-q` TCP, the N of `tcp N`), 0 when none.
 *
 * `-v` output is read too: `IP (tos ..., proto UDP (17), length 84)` ends the line and the next line,
 * indented 4 spaces, holds `SRC > DST: ...` (the row keeps the header's line number; the address line is
 * counted as a continuation); `IP6 (hlim ..., next-header UDP (17) ...) SRC > DST:` is one line. The header's
 * protocol number is used when the tail names none. Not read: -v headers nested under MPLS or tunnels
 * (indented, without a timestamp of their own).
 */
import { MAX_EPOCH_SECONDS, PacketBatch, PacketRow, Protocol, TcpFlag, batchRows } from './packet-batch';
import { ParseStats, SkipReason, emptyParseStats } from './parse-stats';
import { scanIpv4, scanIpv6Token, scanned } from './address-scan';
import { DnsRow, DnsStats, emptyDnsStats, readDnsText } from './dns-text';

export interface TcpdumpParserOptions {
  /** Longest line read (bytes); longer ones are skipped as TOO_LONG without being buffered. */
  maxLineBytes?: number;
  /** Sample lines kept per skip reason. */
  samplesPerReason?: number;
  /** Characters kept of a sample line. */
  sampleChars?: number;
  /** Also read the DNS text of port 53/5353 lines into `dnsRows` (see dns-text.ts). Off: the IP path is unchanged. */
  dns?: boolean;
}

const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const DOT = 0x2e;
const COLON = 0x3a;
const GT = 0x3e;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const DASH = 0x2d;

const MPLS_BOTTOM = ascii('[S], ttl ');
const TRUNCATED_IP = ascii('truncated-ip');
const BYTES_MISSING = ascii(' bytes missing!');
const IP_PROTO = ascii('ip-proto-');
const LENGTH = ascii('length ');
const PROTO_FIELD = ascii('proto ');
const NEXT_HEADER_FIELD = ascii('next-header ');
const TCP_LENGTH = ascii(', length ');
const UDP_SUM = ascii('[udp sum ok] ');
const BAD_UDP_SUM = ascii('[bad udp cksum ');

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isAlnum(c: number): boolean {
  const l = c | 0x20;
  return (c >= 0x30 && c <= 0x39) || (l >= 0x61 && l <= 0x7a);
}

/** Bytes of IPv6 text with a `.port`: hex digits, `:` and `.`; a table, as an address is scanned byte by byte. */
const V6_CHARS = Uint8Array.from({ length: 256 }, (_, c) => {
  const l = c | 0x20;
  return (c >= 0x30 && c <= 0x3a) || (l >= 0x61 && l <= 0x66) || c === DOT ? 1 : 0;
});

function isV6Char(c: number): boolean {
  return V6_CHARS[c] === 1;
}

/** True when buf[i..] starts with lit. Safe past `end`: the newline (or buffer end) there never matches. */
function startsWith(buf: Uint8Array, i: number, lit: Uint8Array): boolean {
  for (let k = 0; k < lit.length; k++) if (buf[i + k] !== lit[k]) return false;
  return true;
}

/** Digits at i (at most 10); value in `digitsValue`, returns the index after them or -1. */
function digitsEnd(buf: Uint8Array, i: number, end: number): number {
  const start = i;
  let v = 0;
  while (i < end && isDigit(buf[i]) && i - start < 10) v = v * 10 + buf[i++] - 0x30;
  if (i === start) return -1;
  digitsValue = v;
  return i;
}
let digitsValue = 0;

/** `HH:MM:SS.ffffff ` (plain -n, also -ttt deltas) or `YYYY-MM-DD HH:MM:SS.ffffff ` (-tttt). */
function isWallClock(buf: Uint8Array, s: number, end: number): boolean {
  let i = s;
  if (end - s > 11 && buf[s + 4] === DASH && buf[s + 7] === DASH && buf[s + 10] === SP) i = s + 11;
  const d = digitsEnd(buf, i, end);
  if (d < 0 || d - i > 2 || buf[d] !== COLON) return false;
  return (
    isDigit(buf[d + 1]) &&
    isDigit(buf[d + 2]) &&
    buf[d + 3] === COLON &&
    isDigit(buf[d + 4]) &&
    isDigit(buf[d + 5]) &&
    buf[d + 6] === DOT &&
    digitsEnd(buf, d + 7, end) === d + 13 &&
    buf[d + 13] === SP
  );
}

/**
 * `(0xHHHH), ` after a link-level protocol name (`ethertype IPv4 (0x0800), `, PPP `IP (0x0021), `):
 * 4 or 6 when the code is IP, else 0. The code, not the name, decides: names vary between printers.
 */
function linkCodeFamily(buf: Uint8Array, k: number): number {
  if (buf[k] !== LPAREN || buf[k + 1] !== 0x30 || buf[k + 2] !== 0x78) return 0;
  if (buf[k + 7] !== RPAREN || buf[k + 8] !== COMMA || buf[k + 9] !== SP) return 0;
  const code = ((buf[k + 3] << 24) | (buf[k + 4] << 16) | (buf[k + 5] << 8) | buf[k + 6]) >>> 0;
  switch (code) {
    case 0x30383030: // 0800 ethertype IPv4
    case 0x30303231: // 0021 PPP IP
      return 4;
    case 0x38366464: // 86dd ethertype IPv6
    case 0x30303537: // 0057 PPP IPv6
      return 6;
    default:
      return 0;
  }
}

/** Skips `length N: ` (the frame length of -e output) when present. */
function skipFrameLength(buf: Uint8Array, i: number, end: number): number {
  if (!startsWith(buf, i, LENGTH)) return i;
  const d = digitsEnd(buf, i + 7, end);
  return d > 0 && buf[d] === COLON && buf[d + 1] === SP ? d + 2 : i;
}

/** Result of reading what follows `DST: `. */
let tailProtocol = Protocol.UNKNOWN;
let tailFlags = 0;
let tailQuietLength = -1;

function readTail(buf: Uint8Array, t: number, end: number): void {
  while (t < end && buf[t] === SP) t++;
  tailProtocol = Protocol.UNKNOWN;
  tailFlags = 0;
  tailQuietLength = -1;
  switch (buf[t]) {
    case 0x46: // F
      // `Flags [`, spelled out (hot: most lines are TCP).
      if (buf[t + 1] === 0x6c && buf[t + 2] === 0x61 && buf[t + 3] === 0x67 && buf[t + 4] === 0x73 && buf[t + 5] === SP && buf[t + 6] === LBRACKET) {
        tailProtocol = Protocol.TCP;
        tailFlags = tcpFlagBits(buf, t + 7, end);
      }
      return;
    case 0x55: // U: `UDP` as a whole token only (`UDP,` / `UDP-encap:`), not `UDPLITE`
      if (buf[t + 1] === 0x44 && buf[t + 2] === 0x50 && (t + 3 === end || !isAlnum(buf[t + 3]))) tailProtocol = Protocol.UDP;
      return;
    case 0x49: // I
      if (buf[t + 1] === 0x43 && buf[t + 2] === 0x4d && buf[t + 3] === 0x50) {
        const c = buf[t + 4];
        if (c === 0x36 && (t + 5 === end || !isAlnum(buf[t + 5]))) tailProtocol = Protocol.ICMP6;
        else if (t + 4 === end || !isAlnum(c)) tailProtocol = Protocol.ICMP;
      }
      return;
    case 0x74: // t: `-q` prints `tcp 605` for TCP (payload length, no flags)
      if (buf[t + 1] === 0x63 && buf[t + 2] === 0x70 && buf[t + 3] === SP) {
        const d = digitsEnd(buf, t + 4, end);
        if (d > 0 && (d === end || buf[d] === SP)) {
          tailProtocol = Protocol.TCP;
          tailQuietLength = digitsValue;
        }
      }
      return;
    case 0x69: // i: `ip-proto-17`: a non-first fragment or an undecoded protocol, by number
      if (startsWith(buf, t, IP_PROTO) && digitsEnd(buf, t + IP_PROTO.length, end) > 0) {
        tailProtocol = protocolByNumber(digitsValue);
      }
      return;
    case 0x48: // H: `HBH ICMP6, ...` (MLD) and `HBH 41851 > 43913: Flags [P.]`: protocol after the hop-by-hop header
      if (buf[t + 1] === 0x42 && buf[t + 2] === 0x48 && buf[t + 3] === SP) {
        let u = t + 4;
        const a = digitsEnd(buf, u, end);
        if (a > 0 && buf[a] === SP && buf[a + 1] === GT && buf[a + 2] === SP) {
          const b = digitsEnd(buf, a + 3, end);
          if (b > 0 && buf[b] === COLON) u = b + 1;
        }
        readTail(buf, u, end);
        tailQuietLength = -1;
      }
      return;
    default:
      return;
  }
}

/** Letters of `Flags [S.]` up to `]`: S F R P U E W and `.` for ACK; `[none]` is 0. */
function tcpFlagBits(buf: Uint8Array, i: number, end: number): number {
  let bits = 0;
  for (; i < end && buf[i] !== RBRACKET; i++) {
    switch (buf[i]) {
      case 0x53:
        bits |= TcpFlag.SYN;
        break;
      case 0x2e:
        bits |= TcpFlag.ACK;
        break;
      case 0x46:
        bits |= TcpFlag.FIN;
        break;
      case 0x52:
        bits |= TcpFlag.RST;
        break;
      case 0x50:
        bits |= TcpFlag.PSH;
        break;
      case 0x55:
        bits |= TcpFlag.URG;
        break;
      case 0x45:
        bits |= TcpFlag.ECE;
        break;
      case 0x57:
        bits |= TcpFlag.CWR;
        break;
      default:
        break;
    }
  }
  return bits;
}

/** `length ` at k, spelled out: the generic startsWith loop cost more than the rest of lastLength. */
function isLengthWord(buf: Uint8Array, k: number): boolean {
  return (
    buf[k] === 0x6c && buf[k + 1] === 0x65 && buf[k + 2] === 0x6e && buf[k + 3] === 0x67 && buf[k + 4] === 0x74 && buf[k + 5] === 0x68 && buf[k + 6] === SP
  );
}

/** The last `length N` on the line (a word, followed by digits), searching backwards from the end. */
function lastLength(buf: Uint8Array, s: number, end: number): number {
  // Most lines end with `length N`: no `l` follows it, so it is the match the backward search finds first.
  let d = end;
  while (d > s && isDigit(buf[d - 1])) d--;
  const m = d - 7;
  if (d < end && m >= s && isLengthWord(buf, m) && (m === s || !isAlnum(buf[m - 1]))) {
    digitsEnd(buf, d, end);
    return Math.min(digitsValue, 0xffffffff);
  }
  for (let k = end - 8; k >= s; k--) {
    if (isLengthWord(buf, k) && isDigit(buf[k + 7]) && (k === s || !isAlnum(buf[k - 1]))) {
      digitsEnd(buf, k + 7, end);
      return Math.min(digitsValue, 0xffffffff);
    }
  }
  return 0;
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Index after the `)` matching the `(` at i (nested groups like `proto UDP (17)` inside), or -1. */
function closingParen(buf: Uint8Array, i: number, end: number): number {
  let depth = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === LPAREN) depth++;
    else if (c === RPAREN && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * The protocol number a `-v` header states: `proto TCP (6)` (IPv4) or `next-header UDP (17)` (IPv6), the
 * first ` (N)` after the keyword. Explicit header fields, so as reliable as the tail's own tokens.
 */
function verboseProtocol(buf: Uint8Array, from: number, to: number): Protocol {
  for (let k = from; k < to; k++) {
    let field = 0;
    if (startsWith(buf, k, PROTO_FIELD)) field = PROTO_FIELD.length;
    else if (startsWith(buf, k, NEXT_HEADER_FIELD)) field = NEXT_HEADER_FIELD.length;
    if (field > 0) {
      for (let j = k + field; j < to; j++) {
        if (buf[j] === LPAREN) {
          const d = digitsEnd(buf, j + 1, to);
          if (d < 0 || buf[d] !== RPAREN) return Protocol.UNKNOWN;
          return protocolByNumber(digitsValue);
        }
      }
      return Protocol.UNKNOWN;
    }
  }
  return Protocol.UNKNOWN;
}

function protocolByNumber(n: number): Protocol {
  return n === 6 ? Protocol.TCP : n === 17 ? Protocol.UDP : n === 1 ? Protocol.ICMP : n === 58 ? Protocol.ICMP6 : Protocol.UNKNOWN;
}

/**
 * The current line's time (µs since the epoch), handed from line() to addressPair() through a typed array:
 * ~1.7e15 is no small integer, so as an argument of a call V8 does not inline it would be boxed per line.
 */
const lineTs = new Float64Array(1);

const enum LineResult {
  ROW,
  MALFORMED,
  /** A `-v` IPv4 header; its addresses come on the next line. */
  PENDING,
}

/**
 * Feed chunks with push(); lines may straddle chunks. Each call returns the rows completed by that chunk
 * (a new batch, or appended to `into`). Call end() once for a last line without a newline.
 */
export class TcpdumpParser {
  readonly stats: ParseStats = emptyParseStats();
  private readonly maxLineBytes: number;
  private readonly samplesPerReason: number;
  private readonly sampleChars: number;
  private readonly sampled: Record<SkipReason, number>;
  private batch = new PacketBatch(16);
  private lineNo = 0;
  /** Start of a line whose newline has not arrived yet. */
  private carry: Buffer | null = null;
  /** Inside a TOO_LONG line: drop bytes until its newline. */
  private dropping = false;
  private started = false;
  private readonly v6 = new Uint32Array(8);
  /** A `-v` IPv4 header line waiting for its address line (pendingTs < 0: none). */
  private pendingTs = -1;
  private pendingLineNo = 0;
  private pendingProtocol = Protocol.UNKNOWN;
  private pendingSample: string | null = null;
  private readonly dns: boolean;
  /** DNS rows read so far (with the `dns` option); the caller takes them with takeDnsRows() after each push/end. */
  dnsRows: DnsRow[] = [];
  readonly dnsStats: DnsStats = emptyDnsStats();

  constructor(options: TcpdumpParserOptions = {}) {
    this.dns = options.dns === true;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.samplesPerReason = options.samplesPerReason ?? 5;
    this.sampleChars = options.sampleChars ?? 200;
    this.sampled = { ...this.stats.skipped };
  }

  push(chunk: Uint8Array, into?: PacketBatch): PacketBatch {
    const buf = toBuffer(chunk);
    const batch = (this.batch = into ?? new PacketBatch((buf.length >> 6) + 16));
    this.stats.bytes += buf.length;
    let pos = 0;
    if (!this.started && buf.length > 0) {
      this.started = true;
      // A UTF-8 BOM from an editor on Windows would otherwise hide the first line's timestamp.
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3;
    }
    if (this.carry !== null || this.dropping) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0) {
        if (!this.dropping) this.appendCarry(buf.subarray(pos));
        return batch;
      }
      if (this.dropping) {
        this.dropping = false;
      } else {
        const line = Buffer.concat([this.carry as Buffer, buf.subarray(pos, nl)]);
        this.carry = null;
        this.line(line, 0, line.length);
      }
      pos = nl + 1;
    }
    for (;;) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0) break;
      this.line(buf, pos, nl);
      pos = nl + 1;
    }
    if (pos < buf.length) this.appendCarry(buf.subarray(pos));
    return batch;
  }

  end(into?: PacketBatch): PacketBatch {
    const batch = (this.batch = into ?? new PacketBatch(16));
    if (this.carry !== null) {
      const line = this.carry;
      this.carry = null;
      this.line(line, 0, line.length);
    }
    this.dropping = false;
    if (this.pendingTs >= 0) this.pendingFailed();
    return batch;
  }

  /** The DNS rows read since the last call; their `packet` indexes the batch of the push/end that read them. */
  takeDnsRows(): DnsRow[] {
    const rows = this.dnsRows;
    this.dnsRows = [];
    return rows;
  }

  private appendCarry(part: Buffer): void {
    const length = (this.carry === null ? 0 : this.carry.length) + part.length;
    // +1: room for the CR of a CRLF line, which line() strips before applying the cap.
    if (length <= this.maxLineBytes + 1) {
      // Copy: the caller may reuse its chunk buffer.
      this.carry = this.carry === null ? Buffer.from(part) : Buffer.concat([this.carry, part]);
      return;
    }
    const head = this.carry === null ? part : Buffer.concat([this.carry, part.subarray(0, this.sampleChars)]);
    if (this.pendingTs >= 0) this.pendingFailed();
    this.lineNo++;
    this.stats.lines++;
    this.skip(SkipReason.TOO_LONG, head, 0, Math.min(head.length, this.sampleChars));
    this.carry = null;
    this.dropping = true;
  }

  private skip(reason: SkipReason, buf: Buffer, s: number, e: number): void {
    this.stats.skipped[reason]++;
    if (this.sampled[reason] < this.samplesPerReason) {
      this.sampled[reason]++;
      this.stats.samples.push({ lineNo: this.lineNo, reason, text: buf.toString('latin1', s, Math.min(e, s + this.sampleChars)) });
    }
  }

  /**
   * The line after a `-v` IPv4 header: `    SRC > DST: ...` (4 spaces) completes the packet, which keeps the
   * header's line number and time; the address line itself is then a continuation. Anything else leaves
   * the header MALFORMED_ADDRESS and the line is read on its own.
   */
  private verboseAddressLine(buf: Buffer, s: number, e: number): boolean {
    lineTs[0] = this.pendingTs;
    this.pendingTs = -1;
    if (
      e - s > 4 &&
      e - s <= this.maxLineBytes &&
      buf[s] === SP &&
      buf[s + 1] === SP &&
      buf[s + 2] === SP &&
      buf[s + 3] === SP &&
      isDigit(buf[s + 4]) &&
      this.addressPair(buf, s + 4, e, 4, this.pendingLineNo, this.pendingProtocol) === LineResult.ROW
    ) {
      this.skip(SkipReason.NOT_PACKET, buf, s, e);
      return true;
    }
    this.pendingFailed();
    return false;
  }

  private pendingFailed(): void {
    this.pendingTs = -1;
    this.stats.skipped[SkipReason.MALFORMED_ADDRESS]++;
    if (this.pendingSample !== null) {
      this.sampled[SkipReason.MALFORMED_ADDRESS]++;
      this.stats.samples.push({ lineNo: this.pendingLineNo, reason: SkipReason.MALFORMED_ADDRESS, text: this.pendingSample });
      this.pendingSample = null;
    }
  }

  private line(buf: Buffer, s: number, e: number): void {
    this.lineNo++;
    this.stats.lines++;
    if (e > s && buf[e - 1] === CR) e--; // CRLF from a Windows copy
    if (this.pendingTs >= 0 && this.verboseAddressLine(buf, s, e)) return;
    if (e - s > this.maxLineBytes) return this.skip(SkipReason.TOO_LONG, buf, s, e);
    if (s === e) return this.skip(SkipReason.NOT_PACKET, buf, s, e);
    let c = buf[s];
    if (c === SP || c === TAB) return this.skip(SkipReason.NOT_PACKET, buf, s, e);

    let i = s;
    let sec = 0;
    while (i < e && (c = buf[i]) >= 0x30 && c <= 0x39) {
      sec = sec * 10 + c - 0x30;
      i++;
    }
    if (i === s || buf[i] !== DOT) {
      if (i > s && isWallClock(buf, s, e)) this.stats.timeOfDayLines++;
      return this.skip(SkipReason.NO_TIMESTAMP, buf, s, e);
    }
    let usec = 0;
    for (let k = 1; k <= 6; k++) {
      c = buf[i + k];
      if (c < 0x30 || c > 0x39 || i + k >= e) return this.skip(SkipReason.NO_TIMESTAMP, buf, s, e);
      usec = usec * 10 + c - 0x30;
    }
    i += 7;
    if (i === e) return this.skip(SkipReason.NOT_IP, buf, s, e);
    if (buf[i] !== SP || sec > MAX_EPOCH_SECONDS) return this.skip(SkipReason.NO_TIMESTAMP, buf, s, e);
    lineTs[0] = sec * 1e6 + usec;
    const p = i + 1;

    // Fast path: `IP ` / `IP6 ` right after the timestamp.
    if (buf[p] === 0x49 && buf[p + 1] === 0x50) {
      let family = 0;
      let q = 0;
      if (buf[p + 2] === SP) {
        family = 4;
        q = p + 3;
      } else if (buf[p + 2] === 0x36 && buf[p + 3] === SP) {
        family = 6;
        q = p + 4;
      }
      if (family !== 0) {
        const linkFamily = linkCodeFamily(buf, q);
        if (linkFamily !== 0) {
          // `-e` over PPP: `IP (0x0021), length 64: ADDR > ADDR` (`IP (tos ...` is -v: ipHeader's business).
          family = linkFamily;
          q = skipFrameLength(buf, q + 10, e);
        }
        return this.anchored(buf, s, q, e, family);
      }
    }

    // Anything else: look for the first IP header anchor (see the header comment), else not IP.
    if (buf[p] === 0x69 && buf[p + 1] === 0x70 && buf[p + 2] === COLON && buf[p + 3] === SP) {
      return this.anchored(buf, s, p + 4, e, 0); // -e on a raw-IP link: `ip: ADDR > ADDR`
    }
    for (let k = p; k < e; k++) {
      c = buf[k];
      if (c === SP) {
        if (buf[k + 1] === 0x49 && buf[k + 2] === 0x50) {
          if (buf[k + 3] === SP) return this.anchored(buf, s, k + 4, e, 4);
          if (buf[k + 3] === 0x36 && buf[k + 4] === SP) return this.anchored(buf, s, k + 5, e, 6);
        }
      } else if (c === LPAREN) {
        const family = linkCodeFamily(buf, k);
        if (family !== 0) return this.anchored(buf, s, skipFrameLength(buf, k + 10, e), e, family);
      } else if (c === LBRACKET && startsWith(buf, k, MPLS_BOTTOM)) {
        const d = digitsEnd(buf, k + MPLS_BOTTOM.length, e);
        if (d > 0 && buf[d] === RPAREN && buf[d + 1] === SP) {
          // Bottom of the label stack; without -e tcpdump still prints `IP `/`IP6 ` before the header.
          let q = d + 2;
          let family = 0;
          if (buf[q] === 0x49 && buf[q + 1] === 0x50 && buf[q + 2] === SP) {
            family = 4;
            q += 3;
          } else if (buf[q] === 0x49 && buf[q + 1] === 0x50 && buf[q + 2] === 0x36 && buf[q + 3] === SP) {
            family = 6;
            q += 4;
          }
          return this.anchored(buf, s, q, e, family);
        }
      }
    }
    return this.skip(SkipReason.NOT_IP, buf, s, e);
  }

  /** The line [s, e) has an IP header starting at q. */
  private anchored(buf: Buffer, s: number, q: number, e: number, family: number): void {
    const r = this.ipHeader(buf, q, e, family);
    if (r === LineResult.MALFORMED) this.skip(SkipReason.MALFORMED_ADDRESS, buf, s, e);
    else if (r === LineResult.PENDING) {
      // Counted when the next line shows whether the addresses follow; keep the sample text until then.
      const sampling = this.sampled[SkipReason.MALFORMED_ADDRESS] < this.samplesPerReason;
      this.pendingSample = sampling ? buf.toString('latin1', s, Math.min(e, s + this.sampleChars)) : null;
    }
  }

  /** From the first byte of an IP header's text: truncation prefix, `-v` header fields, then addressPair. family 0 = by shape. */
  private ipHeader(buf: Buffer, q: number, e: number, family: number): LineResult {
    if (buf[q] === 0x74 && startsWith(buf, q, TRUNCATED_IP)) {
      // `truncated-ip - N bytes missing! ADDR` / `truncated-ip6 - N bytes missing!ADDR` (no space in 4.99).
      let k = q + TRUNCATED_IP.length;
      const six = buf[k] === 0x36;
      if (six) k++;
      if (family === 0) family = six ? 6 : 4;
      if ((family === 6) !== six || buf[k] !== SP || buf[k + 1] !== DASH || buf[k + 2] !== SP) return LineResult.MALFORMED;
      k = digitsEnd(buf, k + 3, e);
      if (k < 0 || !startsWith(buf, k, BYTES_MISSING)) return LineResult.MALFORMED;
      q = k + BYTES_MISSING.length;
      if (buf[q] === SP) q++;
    }
    let headerProtocol = Protocol.UNKNOWN;
    if (buf[q] === LPAREN && family !== 0) {
      // -v: `IP (tos 0x0, ..., proto UDP (17), length 84)` with the addresses on the next line, or
      // `IP6 (hlim 64, next-header UDP (17) payload length: 37) SRC > DST: ...` on this one.
      const close = closingParen(buf, q, e);
      if (close < 0) return LineResult.MALFORMED;
      const protocol = verboseProtocol(buf, q, close);
      if (close === e && family === 4) {
        this.pendingTs = lineTs[0];
        this.pendingLineNo = this.lineNo;
        this.pendingProtocol = protocol;
        return LineResult.PENDING;
      }
      if (buf[close] !== SP) return LineResult.MALFORMED;
      headerProtocol = protocol;
      q = close + 1;
    }
    return this.addressPair(buf, q, e, family, this.lineNo, headerProtocol);
  }

  /** `SRC > DST:` and the tail; writes the row. `headerProtocol` is what a `-v` header said, used when the tail names nothing. */
  private addressPair(buf: Buffer, q: number, e: number, family: number, lineNo: number, headerProtocol: Protocol): LineResult {
    if (family === 0) {
      let k = q;
      while (k < e && buf[k] !== SP && buf[k] !== COLON) k++;
      family = buf[k] === COLON && k + 1 < e && buf[k + 1] !== SP ? 6 : 4;
    }

    let srcV4 = 0;
    let dstV4 = 0;
    let srcPort: number;
    let dstPort: number;
    let tail: number;
    if (family === 4) {
      const r = scanIpv4(buf, q, e);
      if (r < 0 || buf[r] !== SP || buf[r + 1] !== GT || buf[r + 2] !== SP) return LineResult.MALFORMED;
      srcV4 = scanned.v4;
      srcPort = scanned.port;
      const r2 = scanIpv4(buf, r + 3, e);
      if (r2 < 0 || buf[r2] !== COLON || (r2 + 1 < e && buf[r2 + 1] !== SP)) return LineResult.MALFORMED;
      dstV4 = scanned.v4;
      dstPort = scanned.port;
      tail = r2 + 1;
    } else {
      let k = q;
      while (k < e && isV6Char(buf[k])) k++;
      if (k === q || buf[k] !== SP || buf[k + 1] !== GT || buf[k + 2] !== SP) return LineResult.MALFORMED;
      if (!scanIpv6Token(buf, q, k, this.v6, 0)) return LineResult.MALFORMED;
      srcPort = scanned.port;
      const j = k + 3;
      let m = j;
      // DST ends at the first `: ` (or `:` at the end): `ff02::: ICMP6` is `ff02::` then `: `.
      while (m < e && !(buf[m] === COLON && (m + 1 === e || buf[m + 1] === SP))) {
        if (!isV6Char(buf[m])) return LineResult.MALFORMED;
        m++;
      }
      if (m === e || m === j || !scanIpv6Token(buf, j, m, this.v6, 4)) return LineResult.MALFORMED;
      dstPort = scanned.port;
      tail = m + 1;
    }
    if (srcPort < 0 !== dstPort < 0) return LineResult.MALFORMED;

    readTail(buf, tail, e);
    // From the IP header on: the frame length that -e prints before it is not the packet's.
    const length = tailQuietLength >= 0 ? tailQuietLength : lastLength(buf, q, e);
    const batch = this.batch;
    const n = batch.count;
    if (n === batch.capacity) batch.grow();
    batch.lineNo[n] = lineNo;
    batch.tsMicros[n] = lineTs[0];
    batch.family[n] = family;
    batch.protocol[n] = tailProtocol !== Protocol.UNKNOWN ? tailProtocol : headerProtocol;
    batch.tcpFlags[n] = tailFlags;
    batch.srcV4[n] = srcV4;
    batch.dstV4[n] = dstV4;
    batch.srcPort[n] = srcPort;
    batch.dstPort[n] = dstPort;
    batch.printedLength[n] = length;
    if (family === 6) {
      const slot = batch.addV6Slot();
      batch.v6Words.set(this.v6, slot * 8);
      batch.v6Slot[n] = slot;
    } else {
      batch.v6Slot[n] = -1;
    }
    batch.count = n + 1;
    this.stats.packets++;
    if (this.dns && srcPort >= 0) this.dnsText(buf, tail, e, srcPort, dstPort, lineNo, n);
    return LineResult.ROW;
  }

  /**
   * Port 53 (udp53, or tcp53 when the tail is `Flags [`) wins over 5353 (udp5353, not TCP), as tcpdump tests 53 first.
   * UDP: the DNS text follows `DST: `; TCP: it follows `, length N ` (tcpdump removed the 2-byte length prefix).
   */
  private dnsText(buf: Buffer, tail: number, e: number, srcPort: number, dstPort: number, lineNo: number, n: number): void {
    const tcp = tailProtocol === Protocol.TCP && buf[tail + 1] === 0x46;
    let via: 'udp53' | 'tcp53' | 'udp5353';
    if (srcPort === 53 || dstPort === 53) via = tcp ? 'tcp53' : 'udp53';
    else if ((srcPort === 5353 || dstPort === 5353) && !tcp) via = 'udp5353';
    else return;
    let t = tail + 1;
    if (tcp) {
      let at = t;
      while (at < e && !(buf[at] === COMMA && startsWith(buf, at, TCP_LENGTH))) at++;
      if (at >= e) return;
      const d = digitsEnd(buf, at + TCP_LENGTH.length, e);
      if (d < 0 || d >= e || buf[d] !== SP) return; // `length 0`: a segment without payload
      t = d + 1;
    } else if (buf[t] === LBRACKET && (startsWith(buf, t, UDP_SUM) || startsWith(buf, t, BAD_UDP_SUM))) {
      // `-v` over IPv6: `[udp sum ok] ` or `[bad udp cksum 0x1234 -> 0x5678!] ` before the DNS text.
      while (t < e && buf[t] !== RBRACKET) t++;
      t += 2;
    }
    if (t < e) readDnsText(buf, t, e, via, lineNo, n, this.dnsRows, this.dnsStats);
  }
}

/** Whole input at once, rows as plain objects: tests, the CLI, small files. */
export function parseLines(input: string | Uint8Array, options?: TcpdumpParserOptions): { rows: PacketRow[]; stats: ParseStats } {
  const parser = new TcpdumpParser(options);
  const batch = new PacketBatch(64);
  parser.push(typeof input === 'string' ? Buffer.from(input, 'utf8') : input, batch);
  parser.end(batch);
  return { rows: batchRows(batch), stats: parser.stats };
}
