// Streams a feed file (Readable or any async iterable of chunks) into numbered, parsed lines. Pure
// apart from consuming the iterable: no file or network access of its own.

import { isUtf8 } from 'node:buffer';
import { DEFAULT_CIDR_LIMITS, IPV6_MASK_WORDS } from '../../../common/net/cidr';
import { hexValue, ipv6GroupsToWords } from '../../../common/net/ip';
import { FeedLineOptions, FeedLineResult, FeedSkipCode, parseFeedLine } from './feed-line';

export interface FeedLine {
  /** 1-based. */
  readonly lineNumber: number;
  /** The line without its `\n` / `\r\n`; overlong lines are cut to a short prefix ending in "...". */
  readonly text: string;
  readonly result: FeedLineResult;
}

export interface FeedReadOptions extends FeedLineOptions {
  /** Longer lines are skipped (not buffered). Default 4096 bytes. */
  readonly maxLineLength?: number;
  /**
   * Takes the plain IPv4 lines (`a.b.c.d` or `a.b.c.d/n` alone, canonical, within the prefix limit) instead of
   * yielding them: no string or object is made for them (a bulk import's million lines). Their line numbers count
   * as usual; every other line is yielded as without it. `network` has its host bits clear; `normalized` says
   * some were set (as parseFeedLine's entry result).
   */
  readonly onPlainIpv4?: (network: number, prefix: number, normalized: boolean) => void;
  /**
   * The same for plain IPv6 lines (an address of hex groups, no dotted tail, alone or with `/n`, within the prefix
   * limit) whose network lies outside `::/64`, where the IPv4-mapped block and the hosts-file sinks are (those lines
   * are yielded as usual). `network` is four big-endian uint32 words with the host bits clear, in an array the reader
   * reuses: copy it.
   */
  readonly onPlainIpv6?: (network: Uint32Array, prefix: number, normalized: boolean) => void;
}

/**
 * The IPv4 network of a line that is exactly `a.b.c.d` or `a.b.c.d/n` (octets 0-255 and n 0-32 in decimal
 * without leading zeros, an optional `\r`), as `address * 64 + prefix`; -1 for any other line. What it accepts,
 * parseFeedLine reads as the same single CIDR with no comment.
 */
export function plainIpv4(buf: Buffer, from: number, end: number): number {
  if (end > from && buf[end - 1] === 0x0d) end--;
  let address = 0;
  let i = from;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (i >= end || buf[i] !== 0x2e) return -1;
      i++;
    }
    const d = decimalAt(buf, i, end, 3);
    if (d < 0 || d >> 2 > 255) return -1;
    address = address * 256 + (d >> 2);
    i += d & 3;
  }
  if (i === end) return address * 64 + 32;
  if (buf[i] !== 0x2f) return -1;
  const d = decimalAt(buf, i + 1, end, 2);
  if (d < 0 || d >> 2 > 32 || i + 1 + (d & 3) !== end) return -1;
  return address * 64 + (d >> 2);
}

/**
 * The decimal number at buf[i..end) of 1 to `max` (at most 3) digits without a leading zero, as value * 4 + its
 * digit count; -1 when there is none, or more digits, or a leading zero.
 */
function decimalAt(buf: Buffer, i: number, end: number, max: number): number {
  let value = 0;
  let j = i;
  while (j < end && j - i <= max) {
    const d = buf[j] - 0x30;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
    j++;
  }
  const digits = j - i;
  if (digits === 0 || digits > max || (digits > 1 && buf[i] === 0x30)) return -1;
  return value * 4 + digits;
}

/**
 * Reads a line that is exactly an IPv6 address of hex groups (one `::` at most, no dotted IPv4 tail) with an optional
 * `/n` (no leading zero, at most 128) into `out` (four big-endian uint32 words); returns the prefix (128 without `/n`),
 * or -1 for anything else. A trailing `\r` is ignored.
 */
export function plainIpv6(buf: Buffer, from: number, end: number, out: Uint32Array): number {
  if (end > from && buf[end - 1] === 0x0d) end--;
  const groups = V6_GROUPS;
  let count = 0;
  let gapAt = -1;
  let i = from;
  if (i + 1 < end && buf[i] === 0x3a) {
    if (buf[i + 1] !== 0x3a) return -1;
    gapAt = 0;
    i += 2;
  }
  let prefix = 128;
  while (i < end) {
    let value = 0;
    let digits = 0;
    for (; i < end; i++) {
      const h = hexValue(buf[i]);
      if (h < 0) break;
      if (++digits > 4) return -1;
      value = value * 16 + h;
    }
    if (digits === 0 || count === 8) return -1;
    groups[count++] = value;
    if (i === end) break;
    const c = buf[i];
    if (c === 0x2f) {
      prefix = slashPrefix(buf, i, end);
      break;
    }
    if (c !== 0x3a) return -1;
    i++;
    if (i < end && buf[i] === 0x3a) {
      if (gapAt >= 0) return -1;
      gapAt = count;
      i++;
      // "::" last, or "::/n"
      if (i === end) break;
      if (buf[i] === 0x2f) {
        prefix = slashPrefix(buf, i, end);
        break;
      }
    } else if (i === end) return -1;
  }
  return prefix >= 0 && ipv6GroupsToWords(groups, count, gapAt, out) ? prefix : -1;
}

const V6_GROUPS = new Uint16Array(8);

/** The n of a `/n` at buf[at] that ends the line (0 to 128, no leading zero), or -1. */
function slashPrefix(buf: Buffer, at: number, end: number): number {
  const d = decimalAt(buf, at + 1, end, 3);
  return d < 0 || d >> 2 > 128 || at + 1 + (d & 3) !== end ? -1 : d >> 2;
}

/**
 * Clears the host bits of the words for `prefix`. Returns 1 when a set host bit was cleared, 0 when none was set, and
 * -1 when the network lies inside ::/64 (the IPv4-mapped block and the hosts-file sinks: the general path's).
 */
function clearHostBits(words: Uint32Array, prefix: number): number {
  let changed = 0;
  for (let w = 0; w < 4; w++) {
    const net = (words[w] & IPV6_MASK_WORDS[prefix * 4 + w]) >>> 0;
    if (net !== words[w]) changed = 1;
    words[w] = net;
  }
  return words[0] === 0 && words[1] === 0 ? -1 : changed;
}

export type FeedNotTextReason = 'compressed' | 'binary' | 'notUtf8';

/** The file is not a text feed; nothing should be imported from it. */
export class FeedNotTextError extends Error {
  readonly reason: FeedNotTextReason;

  constructor(reason: FeedNotTextReason, message: string) {
    super(message);
    this.name = 'FeedNotTextError';
    this.reason = reason;
  }
}

export const DEFAULT_MAX_FEED_LINE = 4096;
/** Bytes looked at before the first line is parsed, to refuse binary files up front. */
const SNIFF_BYTES = 8192;
const SAMPLE_CHARS = 120;

/** Drops a trailing, possibly cut multi-byte UTF-8 sequence so the sniff window can be validated. */
function withoutCutSequence(buf: Buffer): Buffer {
  let i = buf.length - 1;
  let back = 0;
  while (i >= 0 && back < 3 && (buf[i] & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i < 0 || buf[i] < 0xc0) return buf;
  const need = buf[i] >= 0xf0 ? 4 : buf[i] >= 0xe0 ? 3 : 2;
  return buf.length - i < need ? buf.subarray(0, i) : buf;
}

function sniff(head: Buffer): void {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    throw new FeedNotTextError('compressed', 'the file is gzip-compressed: decompress it and import the text file');
  }
  const nul = head.indexOf(0);
  if (nul >= 0) {
    throw new FeedNotTextError('binary', `the file is binary, not a text feed (NUL byte at offset ${nul})`);
  }
  if (!isUtf8(withoutCutSequence(head))) {
    throw new FeedNotTextError('notUtf8', 'the file is not UTF-8 text: expected one IP address or CIDR per line');
  }
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Yields every line (`\n` or `\r\n`; a last line without newline counts) with its number and parse
 * result. Throws FeedNotTextError before the first line when the start of the file is gzip, contains a
 * NUL byte or is not UTF-8. Later lines that are not UTF-8 are skipped with a reason.
 */
export async function* readFeedLines(
  source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  options: FeedReadOptions = {},
): AsyncGenerator<FeedLine> {
  const maxLine = options.maxLineLength ?? DEFAULT_MAX_FEED_LINE;
  const onPlainIpv4 = options.onPlainIpv4;
  const onPlainIpv6 = options.onPlainIpv6;
  const minPrefixV4 = options.minPrefixV4 ?? DEFAULT_CIDR_LIMITS.minPrefixV4;
  const minPrefixV6 = options.minPrefixV6 ?? DEFAULT_CIDR_LIMITS.minPrefixV6;
  const words = new Uint32Array(4);
  let head: Buffer[] | null = [];
  let headBytes = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  let lineNumber = 0;
  let first = true;

  const finish = (bytes: Buffer): FeedLine => {
    lineNumber++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    let line = bytes.subarray(0, end);
    if (first) {
      first = false;
      if (line.length >= 3 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf) line = line.subarray(3);
    }
    if (overlong) {
      overlong = false;
      const text = `${line.subarray(0, SAMPLE_CHARS).toString('utf8')}...`;
      return { lineNumber, text, result: { type: 'skip', code: FeedSkipCode.LINE_TOO_LONG, reason: `line longer than ${maxLine} bytes` } };
    }
    if (line.indexOf(0) >= 0 || !isUtf8(line)) {
      const text = line
        .subarray(0, SAMPLE_CHARS)
        .toString('latin1')
        .replace(/[^\x20-\x7e]/g, '?');
      return { lineNumber, text, result: { type: 'skip', code: FeedSkipCode.NOT_TEXT, reason: 'line is not UTF-8 text' } };
    }
    const text = line.toString('utf8');
    return { lineNumber, text, result: parseFeedLine(text, options) };
  };

  // Appends part of the current line, keeping at most maxLine + 2 bytes (room for "\r").
  const append = (part: Buffer): void => {
    if (overlong) return;
    if (pendingBytes + part.length > maxLine + 1) {
      overlong = true;
      const keep = Math.max(0, Math.min(part.length, SAMPLE_CHARS - pendingBytes));
      if (keep > 0) {
        pending.push(part.subarray(0, keep));
        pendingBytes += keep;
      }
      return;
    }
    pending.push(part);
    pendingBytes += part.length;
  };

  function* split(buf: Buffer): Generator<FeedLine> {
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, from);
      if (nl < 0) break;
      // A plain IPv4 line wholly in this chunk (not the first line: it may start with a BOM) goes to the callback.
      if (onPlainIpv4 !== undefined && pendingBytes === 0 && !first && nl - from <= 19) {
        const key = plainIpv4(buf, from, nl);
        const prefix = key % 64;
        if (key >= 0 && prefix >= minPrefixV4) {
          const address = (key - prefix) / 64;
          const network = prefix === 0 ? 0 : (address & (-1 << (32 - prefix))) >>> 0;
          lineNumber++;
          onPlainIpv4(network, prefix, network !== address);
          from = nl + 1;
          continue;
        }
      }
      // The same for a plain IPv6 line ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\r" is 44 bytes).
      if (onPlainIpv6 !== undefined && pendingBytes === 0 && !first && nl - from <= 44) {
        const prefix = plainIpv6(buf, from, nl, words);
        const cleared = prefix >= minPrefixV6 ? clearHostBits(words, prefix) : -1;
        if (cleared >= 0) {
          lineNumber++;
          onPlainIpv6(words, prefix, cleared === 1);
          from = nl + 1;
          continue;
        }
      }
      append(buf.subarray(from, nl));
      const bytes = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
      // A line of exactly maxLine bytes plus "\r" is fine; only longer ones were flagged.
      if (!overlong && bytes.length > maxLine && !(bytes.length === maxLine + 1 && bytes[maxLine] === 0x0d)) overlong = true;
      pending = [];
      pendingBytes = 0;
      yield finish(bytes);
      from = nl + 1;
    }
    if (from < buf.length) append(buf.subarray(from));
  }

  for await (const chunk of source) {
    const buf = toBuffer(chunk);
    if (head !== null) {
      head.push(buf);
      headBytes += buf.length;
      if (headBytes < SNIFF_BYTES) continue;
      const all = Buffer.concat(head, headBytes);
      head = null;
      sniff(all.subarray(0, SNIFF_BYTES));
      yield* split(all);
      continue;
    }
    yield* split(buf);
  }
  if (head !== null) {
    const all = Buffer.concat(head, headBytes);
    sniff(all);
    yield* split(all);
  }
  if (pendingBytes > 0 || overlong) {
    const bytes = Buffer.concat(pending, pendingBytes);
    if (!overlong && bytes.length > maxLine) overlong = true;
    yield finish(bytes);
  }
}
