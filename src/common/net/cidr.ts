// CIDR and address-range parsing and math. Pure: no I/O, no framework imports.

import { formatIpv4, formatIpv6, IPV4_MAPPED_PREFIX, parseIpv4, parseIpv6, ParsedIp } from './ip';

export interface Cidr4 {
  readonly family: 4;
  /** Network address (host bits cleared) as uint32. */
  readonly network: number;
  readonly prefix: number;
  /** Canonical `network/prefix`; a single address is `/32`. */
  readonly text: string;
}

export interface Cidr6 {
  readonly family: 6;
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical RFC 5952 `network/prefix`; a single address is `/128`. */
  readonly text: string;
}

export type Cidr = Cidr4 | Cidr6;

export type CidrErrorReason = 'invalidAddress' | 'invalidPrefix' | 'tooBroad' | 'invalidRange' | 'rangeReversed' | 'mixedFamilies';

export interface CidrError {
  readonly ok: false;
  readonly reason: CidrErrorReason;
  /** Human message naming the input, e.g. "'224.0.0.0/3' is too broad: IPv4 networks must be /8 or narrower". */
  readonly message: string;
}

export interface CidrLimits {
  /** Broadest IPv4 prefix accepted (default 8). */
  readonly minPrefixV4?: number;
  /** Broadest IPv6 prefix accepted (default 16). */
  readonly minPrefixV6?: number;
  /**
   * Whether an IPv6 network's IPv4-mapped part (`::ffff:0:0/96`) is held to minPrefixV4 too (default true: IOC
   * entries, which the matcher keys as IPv4 there). False for networks that are not matched as IOC entries.
   */
  readonly mappedAsIpv4?: boolean;
}

/** DESIGN: "Broader than /8 is refused"; /16 is the IPv6 counterpart. */
export const DEFAULT_CIDR_LIMITS: Required<CidrLimits> = { minPrefixV4: 8, minPrefixV6: 16, mappedAsIpv4: true };

export type CidrParseResult =
  | {
      readonly ok: true;
      readonly cidr: Cidr;
      /** True when host bits were set and cleared (`10.1.2.3/8` became `10.0.0.0/8`). */
      readonly normalized: boolean;
    }
  | CidrError;

export type CidrsParseResult =
  | {
      readonly ok: true;
      /** One CIDR for an address or CIDR; the minimal covering list for a range. */
      readonly cidrs: Cidr[];
      readonly normalized: boolean;
      readonly fromRange: boolean;
    }
  | CidrError;

const TWO_32 = 0x1_0000_0000;
const ALL_128 = (1n << 128n) - 1n;

function fail(reason: CidrErrorReason, message: string): CidrError {
  return { ok: false, reason, message };
}

/** Netmask for an IPv4 prefix as uint32 (`ipv4Mask(0) === 0`). */
export function ipv4Mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function ipv6Mask(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_128 << BigInt(128 - prefix)) & ALL_128;
}

/** ipv6Mask of every prefix as four big-endian uint32 words: `IPV6_MASK_WORDS[prefix * 4 + k]` (no BigInt on hot paths). */
export const IPV6_MASK_WORDS = (() => {
  const m = new Uint32Array(129 * 4);
  for (let prefix = 0; prefix <= 128; prefix++) {
    for (let k = 0; k < 4; k++) {
      const bits = prefix - 32 * k;
      m[prefix * 4 + k] = bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    }
  }
  return m;
})();

/** Builds an IPv4 CIDR, clearing host bits. */
export function cidr4(address: number, prefix: number): Cidr4 {
  const network = (address & ipv4Mask(prefix)) >>> 0;
  return { family: 4, network, prefix, text: `${formatIpv4(network)}/${prefix}` };
}

/** Builds an IPv6 CIDR, clearing host bits. */
export function cidr6(address: bigint, prefix: number): Cidr6 {
  const network = address & ipv6Mask(prefix);
  return { family: 6, network, prefix, text: `${formatIpv6(network)}/${prefix}` };
}

/** First and last address covered. */
export function cidrBounds(cidr: Cidr4): { first: number; last: number };
export function cidrBounds(cidr: Cidr6): { first: bigint; last: bigint };
export function cidrBounds(cidr: Cidr): { first: number; last: number } | { first: bigint; last: bigint };
export function cidrBounds(cidr: Cidr): { first: number; last: number } | { first: bigint; last: bigint } {
  if (cidr.family === 4) return { first: cidr.network, last: cidr.network + 2 ** (32 - cidr.prefix) - 1 };
  return { first: cidr.network, last: cidr.network | (~ipv6Mask(cidr.prefix) & ALL_128) };
}

/**
 * Whether the address lies in the network. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the same
 * host as its IPv4 address, so it is tested against IPv4 CIDRs too (as the IOC matcher does).
 */
export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family === 4) {
    let v4: number;
    if (ip.family === 4) v4 = ip.v4;
    else if (ip.v6 >> 32n === 0xffffn) v4 = Number(ip.v6 & 0xffffffffn);
    else return false;
    return (v4 & ipv4Mask(cidr.prefix)) >>> 0 === cidr.network;
  }
  const v6 = ip.family === 6 ? ip.v6 : IPV4_MAPPED_PREFIX | BigInt(ip.v4);
  return (v6 & ipv6Mask(cidr.prefix)) === cidr.network;
}

/** Whether `inner` lies entirely inside `outer` (same family). */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  if (outer.family === 4) return ((inner.network as number) & ipv4Mask(outer.prefix)) >>> 0 === outer.network;
  return ((inner.network as bigint) & ipv6Mask(outer.prefix)) === outer.network;
}

function parsePrefix(text: string, max: number): number | null {
  const n = text.length;
  if (n === 0 || n > 3) return null;
  if (n > 1 && text.charCodeAt(0) === 48) return null; // "/08": leading zero, refuse like IPv4 octets
  let value = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return null;
    value = value * 10 + (c - 48);
  }
  return value <= max ? value : null;
}

function limitsOf(limits: CidrLimits | undefined): Required<CidrLimits> {
  return {
    minPrefixV4: limits?.minPrefixV4 ?? DEFAULT_CIDR_LIMITS.minPrefixV4,
    minPrefixV6: limits?.minPrefixV6 ?? DEFAULT_CIDR_LIMITS.minPrefixV6,
    mappedAsIpv4: limits?.mappedAsIpv4 ?? DEFAULT_CIDR_LIMITS.mappedAsIpv4,
  };
}

function tooBroad(input: string, family: 4 | 6, min: number): CidrError {
  return fail('tooBroad', `'${input}' is too broad: IPv${family} networks must be /${min} or narrower`);
}

/**
 * The IPv4 prefix an IPv6 network covers in the IPv4-mapped block `::ffff:0:0/96`, or null when it covers none of
 * it. Mapped addresses are the IPv4 hosts themselves (the matcher keys them as IPv4): `::ffff:0:0/96` is every IPv4
 * address, and so is any network around it (`::/80`).
 */
export function mappedIpv4Prefix(cidr: Cidr6): number | null {
  if (cidr.prefix <= 96) return (IPV4_MAPPED_PREFIX & ipv6Mask(cidr.prefix)) === cidr.network ? 0 : null;
  return (cidr.network & ipv6Mask(96)) === IPV4_MAPPED_PREFIX ? cidr.prefix - 96 : null;
}

/**
 * The refusal of an IPv6 network whose IPv4-mapped part is broader than the IPv4 limit, or null. `part`: the network
 * of a range that needs it.
 */
function mappedTooBroad(input: string, cidr: Cidr6, minPrefixV4: number, part = false): CidrError | null {
  const v4 = mappedIpv4Prefix(cidr);
  if (v4 === null || v4 >= minPrefixV4) return null;
  const covers = `${part ? `it needs ${cidr.text}, which covers` : 'it covers'} ${v4 === 0 ? 'every IPv4 address' : `an IPv4 /${v4}`}`;
  return fail('tooBroad', `'${input}' is too broad: ${covers} (as IPv4-mapped addresses), and IPv4 networks must be /${minPrefixV4} or narrower`);
}

/**
 * Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `ipv6/n`. Host bits are cleared (and reported as
 * `normalized`); networks broader than the limits are refused as `tooBroad`.
 */
export function parseCidr(text: string, limits?: CidrLimits): CidrParseResult {
  const { minPrefixV4, minPrefixV6, mappedAsIpv4 } = limitsOf(limits);
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIpv4(addressText);
  if (v4 !== null) {
    let prefix = 32;
    if (slash >= 0) {
      const p = parsePrefix(text.slice(slash + 1), 32);
      if (p === null) return fail('invalidPrefix', `'${text}' has an invalid prefix length (IPv4 allows /0 to /32)`);
      prefix = p;
    }
    if (prefix < minPrefixV4) return tooBroad(text, 4, minPrefixV4);
    const cidr = cidr4(v4, prefix);
    return { ok: true, cidr, normalized: cidr.network !== v4 };
  }
  const v6 = parseIpv6(addressText);
  if (v6 === null) return fail('invalidAddress', `'${text}' is not an IP address or CIDR`);
  let prefix = 128;
  if (slash >= 0) {
    const p = parsePrefix(text.slice(slash + 1), 128);
    if (p === null) return fail('invalidPrefix', `'${text}' has an invalid prefix length (IPv6 allows /0 to /128)`);
    prefix = p;
  }
  if (prefix < minPrefixV6) return tooBroad(text, 6, minPrefixV6);
  const cidr = cidr6(v6, prefix);
  const mapped = mappedAsIpv4 ? mappedTooBroad(text, cidr, minPrefixV4) : null;
  if (mapped) return mapped;
  return { ok: true, cidr, normalized: cidr.network !== v6 };
}

/** Minimal list of CIDRs covering [start, end] exactly (classic range-to-CIDR). Requires start <= end. */
export function rangeToCidrs4(start: number, end: number): Cidr4[] {
  const out: Cidr4[] = [];
  let cur = start >>> 0;
  const last = end >>> 0;
  while (cur <= last) {
    // Largest aligned block starting at cur that does not pass `last`.
    let size = cur === 0 ? TWO_32 : (cur & -cur) >>> 0 || TWO_32;
    while (cur + size - 1 > last) size /= 2;
    const prefix = 32 - Math.log2(size);
    out.push(cidr4(cur, prefix));
    cur += size;
  }
  return out;
}

export function rangeToCidrs6(start: bigint, end: bigint): Cidr6[] {
  const out: Cidr6[] = [];
  let cur = start;
  while (cur <= end) {
    let bits = 0;
    while (bits < 128 && ((cur >> BigInt(bits)) & 1n) === 0n) bits++;
    while (bits > 0 && cur + (1n << BigInt(bits)) - 1n > end) bits--;
    out.push(cidr6(cur, 128 - bits));
    cur += 1n << BigInt(bits);
  }
  return out;
}

/**
 * Parses `start-end` (both IPv4 or both IPv6, no spaces) into the minimal CIDR list. A range that needs
 * any CIDR broader than the limits is refused as a whole (`0.0.0.0-255.255.255.255` is `tooBroad`).
 */
export function parseRange(text: string, limits?: CidrLimits): CidrsParseResult {
  const { minPrefixV4, minPrefixV6, mappedAsIpv4 } = limitsOf(limits);
  const dash = text.indexOf('-');
  if (dash < 0 || text.indexOf('-', dash + 1) >= 0) {
    return fail('invalidRange', `'${text}' is not an address range (expected start-end)`);
  }
  const left = text.slice(0, dash);
  const right = text.slice(dash + 1);
  const a4 = parseIpv4(left);
  const b4 = parseIpv4(right);
  const a6 = a4 === null ? parseIpv6(left) : null;
  const b6 = b4 === null ? parseIpv6(right) : null;
  if ((a4 === null && a6 === null) || (b4 === null && b6 === null)) {
    return fail('invalidRange', `'${text}' is not an address range: both ends must be IP addresses`);
  }
  if ((a4 === null) !== (b4 === null)) {
    return fail('mixedFamilies', `'${text}' mixes IPv4 and IPv6`);
  }
  let cidrs: Cidr[];
  let min: number;
  let family: 4 | 6;
  if (a4 !== null && b4 !== null) {
    if (a4 > b4) return fail('rangeReversed', `'${text}' starts after it ends`);
    cidrs = rangeToCidrs4(a4, b4);
    min = minPrefixV4;
    family = 4;
  } else {
    const a = a6 as bigint;
    const b = b6 as bigint;
    if (a > b) return fail('rangeReversed', `'${text}' starts after it ends`);
    cidrs = rangeToCidrs6(a, b);
    min = minPrefixV6;
    family = 6;
  }
  for (const cidr of cidrs) {
    if (cidr.prefix < min) {
      return fail('tooBroad', `'${text}' is too broad: it needs ${cidr.text}, and IPv${family} networks must be /${min} or narrower`);
    }
    const mapped = cidr.family === 6 && mappedAsIpv4 ? mappedTooBroad(text, cidr, minPrefixV4, true) : null;
    if (mapped) return mapped;
  }
  return { ok: true, cidrs, normalized: false, fromRange: true };
}

/** Accepts an address, a CIDR or a range (`a-b`): every IOC entry form the project imports. */
export function parseCidrOrRange(text: string, limits?: CidrLimits): CidrsParseResult {
  if (text.indexOf('-') >= 0 && text.indexOf('/') < 0) return parseRange(text, limits);
  const r = parseCidr(text, limits);
  return r.ok ? { ok: true, cidrs: [r.cidr], normalized: r.normalized, fromRange: false } : r;
}

export interface CidrListItemError {
  readonly index: number;
  readonly text: string;
  readonly reason: CidrErrorReason;
  readonly message: string;
}

export type CidrListParseResult =
  { readonly ok: true; readonly cidrs: Cidr[]; readonly normalizedIndexes: number[] } | { readonly ok: false; readonly errors: CidrListItemError[] };

/**
 * Validates a list of CIDRs (e.g. a device's `internalNetworks`), reporting every bad item by index so
 * the API can point at `input.internalNetworks[3]`. Duplicates (after normalisation) are dropped.
 */
export function parseCidrList(texts: readonly string[], limits?: CidrLimits): CidrListParseResult {
  const cidrs: Cidr[] = [];
  const normalizedIndexes: number[] = [];
  const errors: CidrListItemError[] = [];
  const seen = new Set<string>();
  texts.forEach((text, index) => {
    const r = parseCidr(text.trim(), limits);
    if (!r.ok) {
      errors.push({ index, text, reason: r.reason, message: r.message });
      return;
    }
    if (r.normalized) normalizedIndexes.push(index);
    if (seen.has(r.cidr.text)) return;
    seen.add(r.cidr.text);
    cidrs.push(r.cidr);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, cidrs, normalizedIndexes };
}
