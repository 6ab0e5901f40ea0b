import { isUtf8 } from 'node:buffer';

/** What the first bytes of an upload say it is. */
export type Sniffed = 'gzip' | 'pcap' | 'pcapng' | 'text' | 'binary';

const PCAP_MAGICS = [
  0xa1b2c3d4, // microsecond, big-endian writer
  0xd4c3b2a1, // microsecond, little-endian writer
  0xa1b23c4d, // nanosecond, big-endian
  0x4d3cb2a1, // nanosecond, little-endian
];
// pcapng starts with a Section Header Block, type 0x0A0D0D0A in either byte order (a palindrome).
const PCAPNG_MAGIC = 0x0a0d0d0a;

/**
 * Classifies the head of a file (at least its first 4 bytes; up to a few KiB for the text check).
 * tcpdump -tt -n output is ASCII; a NUL byte or invalid UTF-8 means it is something else.
 */
export function sniff(head: Buffer): Sniffed {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4) {
    const magic = head.readUInt32BE(0);
    if (PCAP_MAGICS.includes(magic)) return 'pcap';
    if (magic === PCAPNG_MAGIC) return 'pcapng';
  }
  if (head.includes(0)) return 'binary';
  return isUtf8(withoutCutSequence(head)) ? 'text' : 'binary';
}

/** A head cut mid-way through a multi-byte character is still text. */
function withoutCutSequence(buf: Buffer): Buffer {
  for (let back = 1; back <= 3 && back <= buf.length; back++) {
    const b = buf[buf.length - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? buf.subarray(0, buf.length - back) : buf;
    }
    return buf;
  }
  return buf;
}

export const CONVERT_HINT = 'tcpdump -tt -n -r FILE > FILE.txt';
