/**
 * Address readers for the parser, straight from the Buffer bytes to integers (IPv4 uint32, IPv6 four words):
 * no string, no regex, no allocation. Results go to `scanned`, one module-level record, since JS has no
 * out-parameters and an object per call would cost more than the parse.
 */

const DOT = 0x2e;
const COLON = 0x3a;

export const scanned = {
  /** IPv4 address as uint32. */
  v4: 0,
  /** Port after the address, -1 when none. */
  port: -1,
};

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * `a.b.c.d` or `a.b.c.d.port` starting at i. Returns the index after it (or -1) and sets scanned.v4/port.
 * Octets are 0-255 without leading zeros (tcpdump prints %u; `010` is no address it prints).
 * The caller checks what follows (` > ` or `:`). One flat loop: this is the parser's hottest code.
 */
export function scanIpv4(buf: Uint8Array, i: number, end: number): number {
  let addr = 0;
  let parts = 0;
  // d is the byte after the digits read so far minus '0' (-1 past end): `(d >>> 0) <= 9` is one test for a digit.
  let d = 0;
  for (;;) {
    if (i >= end) return -1;
    let v = buf[i] - 0x30;
    if (v >>> 0 > 9) return -1;
    i++;
    d = i < end ? buf[i] - 0x30 : -1;
    if (d >>> 0 <= 9) {
      if (v === 0) return -1; // digits after a 0
      v = v * 10 + d;
      i++;
      d = i < end ? buf[i] - 0x30 : -1;
      if (d >>> 0 <= 9) {
        v = v * 10 + d;
        if (v > 255) return -1;
        i++;
        d = i < end ? buf[i] - 0x30 : -1;
        if (d >>> 0 <= 9) return -1; // a fourth digit
      }
    }
    addr = (addr << 8) | v;
    if (++parts === 4) break;
    if (d !== DOT - 0x30) return -1;
    i++;
  }
  scanned.v4 = addr >>> 0;
  scanned.port = -1;
  if (i + 1 < end && buf[i] === DOT && isDigit(buf[i + 1])) {
    const p = scanPortEnd(buf, i + 1, end);
    if (p < 0) return -1;
    i = p;
  }
  return i;
}

/** 1-5 digits, 0-65535, into scanned.port. */
function scanPortEnd(buf: Uint8Array, i: number, end: number): number {
  let v = 0;
  const start = i;
  while (i < end && isDigit(buf[i])) {
    if (i - start === 5) return -1;
    v = v * 10 + buf[i++] - 0x30;
  }
  if (i === start || v > 65535) return -1;
  scanned.port = v;
  return i;
}

const groups = new Uint16Array(8);

/** Value of a hex digit byte, -1 for any other byte; a table, as IPv6 text is read byte by byte. */
const HEX_VALUES = Int8Array.from({ length: 256 }, (_, c) => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
});

function hexValue(c: number): number {
  return HEX_VALUES[c];
}

/**
 * Strict IPv6 text in buf[i, end) to four big-endian words at out[off..off+3]: the rules of common/net's
 * parseIpv6Words (1-4 hex digits a group, one `::` at most, a dotted-quad tail, no zone id), read from the
 * bytes. A string per address made IPv6-heavy captures ~6x slower (allocation and GC), hence this copy.
 */
export function parseIpv6Bytes(buf: Uint8Array, i: number, end: number, out: Uint32Array, off: number): boolean {
  if (end - i < 2 || end - i > 45) return false;
  let n = 0;
  let gap = -1;
  if (buf[i] === COLON) {
    if (buf[i + 1] !== COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const start = i;
    let v = 0;
    let h = 0;
    while (i < end && i - start < 5 && (h = hexValue(buf[i])) >= 0) {
      v = (v << 4) | h;
      i++;
    }
    if (i < end && buf[i] === DOT) {
      // Dotted IPv4 tail (`::ffff:1.2.3.4`): this group was its first octet; it must end the address.
      if (n > 6 || scanIpv4(buf, start, end) !== end || scanned.port >= 0) return false;
      groups[n++] = scanned.v4 >>> 16;
      groups[n++] = scanned.v4 & 0xffff;
      break;
    }
    if (i === start || i - start > 4 || n === 8) return false;
    groups[n++] = v;
    if (i === end) break;
    if (buf[i] !== COLON) return false;
    i++;
    if (i < end && buf[i] === COLON) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) {
      return false; // trailing single colon
    }
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    if (n > 7) return false; // "::" stands for at least one group
    const move = 8 - n;
    for (let k = n - 1; k >= gap; k--) groups[k + move] = groups[k];
    for (let k = gap; k < gap + move; k++) groups[k] = 0;
  }
  for (let k = 0; k < 4; k++) out[off + k] = ((groups[2 * k] << 16) | groups[2 * k + 1]) >>> 0;
  return true;
}

/**
 * IPv6 token buf[i, end) with an optional `.port`: tcpdump appends the port after a dot, so split at the last
 * dot when what follows is a port and what precedes is an address; otherwise the whole token must be an
 * address (`::ffff:1.2.3.4` has dots but no port). Returns false when neither; sets scanned.port.
 */
export function scanIpv6Token(buf: Uint8Array, i: number, end: number, out: Uint32Array, off: number): boolean {
  let dot = end - 1;
  while (dot > i && buf[dot] !== DOT) dot--;
  if (dot > i && end - dot <= 6 && scanPortEnd(buf, dot + 1, end) === end) {
    const port = scanned.port; // an IPv4 tail re-read by parseIpv6Bytes would overwrite it
    if (parseIpv6Bytes(buf, i, dot, out, off)) {
      scanned.port = port;
      return true;
    }
  }
  scanned.port = -1;
  return parseIpv6Bytes(buf, i, end, out, off);
}
