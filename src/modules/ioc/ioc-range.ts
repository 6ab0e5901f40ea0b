import { Cidr, cidrBounds } from '../../common/net/cidr';
import { ParsedIp, unmapIp } from '../../common/net/ip';

// IPv4 lives in ::ffff:0:0/96 so both families share one ordered key space (see ioc.entity.ts).
function hex128(value: bigint): string {
  return value.toString(16).padStart(32, '0');
}

const V4_KEY_PREFIX = '00000000000000000000ffff';

// IPv4 keys are built from the uint32 directly: no BigInt on the import hot path.
function key(family: 4 | 6, value: number | bigint): string {
  return family === 4 ? V4_KEY_PREFIX + (value as number).toString(16).padStart(8, '0') : hex128(value as bigint);
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
  return (
    (w[0] >>> 0).toString(16).padStart(8, '0') +
    (w[1] >>> 0).toString(16).padStart(8, '0') +
    (w[2] >>> 0).toString(16).padStart(8, '0') +
    (w[3] >>> 0).toString(16).padStart(8, '0')
  );
}
