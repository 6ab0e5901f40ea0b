import { Cidr, cidrBounds } from '../../common/net/cidr';
import { ParsedIp, unmapIp } from '../../common/net/ip';

// IPv4 lives in ::ffff:0:0/96 so both families share one ordered key space (see ioc.entity.ts).
function hex128(value: bigint): string {
  return value.toString(16).padStart(32, '0');
}

const V4_KEY_PREFIX = '00000000000000000000ffff';

/** The four hex digits of every 16-bit value, made on first use (about 2 MB). */
let hex16: string[] | null = null;

function hex16Table(): string[] {
  const table: string[] = new Array(65536);
  for (let i = 0; i < 65536; i++) table[i] = i.toString(16).padStart(4, '0');
  return table;
}

// IPv4 keys are built from the uint32 directly: no BigInt on the import hot path, and two table reads instead of
// toString(16) and padStart (2M keys of a 1M-entry import: about 0.3 s against 0.8 s).
function key(family: 4 | 6, value: number | bigint): string {
  if (family !== 4) return hex128(value as bigint);
  const h = (hex16 ??= hex16Table());
  const v = value as number;
  return V4_KEY_PREFIX + h[v >>> 16] + h[v & 0xffff];
}

/** First and last address of a network as sortable 32-digit hex keys. */
export function cidrRangeKeys(cidr: Cidr): { start: string; end: string } {
  const b = cidrBounds(cidr);
  return { start: key(cidr.family, b.first), end: key(cidr.family, b.last) };
}

/** The sortable key of one address (IPv4-mapped IPv6 is keyed as its IPv4). */
export function ipKey(address: ParsedIp): string {
  const ip = unmapIp(address);
  return ip.family === 4 ? key(4, ip.v4) : hex128(ip.v6);
}

/**
 * The lowest start key an entry containing `ip` can have: entries are at most /8 (IPv4) or /16 (IPv6) wide,
 * so a containment query scans one such block of the index instead of everything below the address.
 */
export function lowestContainingStartKey(address: ParsedIp): string {
  const ip = unmapIp(address);
  if (ip.family === 4) return key(4, (ip.v4 & 0xff000000) >>> 0);
  const mask = ((1n << 16n) - 1n) << 112n;
  return hex128(ip.v6 & mask);
}

/** The sortable key of an IPv4 address given as uint32. */
export function ipv4Key(v4: number): string {
  return key(4, v4 >>> 0);
}

/** The sortable key of an IPv6 address given as four big-endian uint32 words (IPv4-mapped ones keyed as IPv4). */
export function ipv6WordsKey(w: ArrayLike<number>): string {
  return ipv6Key(w[0], w[1], w[2], w[3]);
}

/** ipv6WordsKey of four words given apart, from the table of 16-bit hex digits. */
export function ipv6Key(w0: number, w1: number, w2: number, w3: number): string {
  const h = (hex16 ??= hex16Table());
  return h[w0 >>> 16] + h[w0 & 0xffff] + h[w1 >>> 16] + h[w1 & 0xffff] + h[w2 >>> 16] + h[w2 & 0xffff] + h[w3 >>> 16] + h[w3 & 0xffff];
}
