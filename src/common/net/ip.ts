// IP address parsing, formatting and classification. Pure: no I/O, no framework imports.
//
// IPv4 is a uint32 held in a JS number (always >>> 0, never negative); IPv6 is a 128-bit bigint.
// Hot paths (log parsing, matching) use parseIpv4 / ipv6 words directly and skip the object.

export type IpFamily = 4 | 6;

export interface Ipv4Address {
  readonly family: 4;
  /** Canonical dotted quad. */
  readonly text: string;
  /** Unsigned 32-bit value. */
  readonly v4: number;
}

export interface Ipv6Address {
  readonly family: 6;
  /** RFC 5952: lowercase, zero-compressed; IPv4-mapped addresses keep their dotted tail (`::ffff:1.2.3.4`). */
  readonly text: string;
  /** Unsigned 128-bit value. */
  readonly v6: bigint;
}

export type ParsedIp = Ipv4Address | Ipv6Address;

/** ::ffff:0:0/96, the IPv4-mapped block (RFC 4291 2.5.5.2). */
export const IPV4_MAPPED_PREFIX = 0xffff00000000n;
const MAPPED_MASK = ~0xffffffffn & ((1n << 128n) - 1n);

const MAX_IPV4_TEXT = 15;
const MAX_IPV6_TEXT = 45;

/**
 * Strict dotted-quad parser: exactly four decimal octets, no leading zeros (`010` is octal to some
 * tools and decimal to others, so it is refused), no whitespace. Returns the uint32 or null.
 */
export function parseIpv4(text: string): number | null {
  return parseIpv4At(text, 0, text.length);
}

/** parseIpv4 over text[start, end) without slicing; used for the dotted tail of IPv6. */
function parseIpv4At(text: string, start: number, end: number): number | null {
  const len = end - start;
  if (len < 7 || len > MAX_IPV4_TEXT) return null;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return null; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return null;
    } else if (c === 46) {
      if (digits === 0 || parts === 3) return null;
      value = value * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  if (digits === 0 || parts !== 3) return null;
  return value * 256 + octet;
}

/** The value of a hex digit's character code, or -1. */
export function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses IPv6 text (RFC 4291 2.2 forms, incl. a dotted IPv4 tail) into four big-endian 32-bit words.
 * Zone ids (`%eth0`), brackets and whitespace are refused. Returns false when invalid; `out` is then garbage.
 */
export function parseIpv6Words(text: string, out: Uint32Array): boolean {
  const n = text.length;
  if (n < 2 || n > MAX_IPV6_TEXT) return false;
  const groups = SCRATCH_GROUPS;
  let count = 0;
  let gapAt = -1;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gapAt = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let value = 0;
    let digits = 0;
    while (i < n) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      if (++digits > 4) return false;
      value = value * 16 + h;
      i++;
    }
    if (i < n && text.charCodeAt(i) === 46) {
      // Dotted IPv4 tail: must be last and fill two groups.
      if (digits === 0 || count > 6) return false;
      const v4 = parseIpv4At(text, start, n);
      if (v4 === null) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = n;
      break;
    }
    if (digits === 0 || count === 8) return false;
    groups[count++] = value;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && text.charCodeAt(i) === 58) {
      if (gapAt >= 0) return false;
      gapAt = count;
      i++;
    } else if (i === n) {
      return false; // trailing single colon
    }
  }
  return ipv6GroupsToWords(groups, count, gapAt, out);
}

/**
 * The last step of reading IPv6 text: `count` 16-bit groups as written, with the "::" before group `gapAt` (-1: none)
 * standing for the zero groups that make eight, into four big-endian words. False when they are not eight groups, or
 * "::" stands for none. `groups` is overwritten.
 */
export function ipv6GroupsToWords(groups: Uint16Array, count: number, gapAt: number, out: Uint32Array): boolean {
  if (gapAt < 0) {
    if (count !== 8) return false;
  } else {
    if (count > 7) return false; // "::" stands for at least one group
    const tail = count - gapAt;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k];
    for (let k = gapAt; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let w = 0; w < 4; w++) out[w] = (groups[2 * w] * 0x10000 + groups[2 * w + 1]) >>> 0;
  return true;
}

const SCRATCH_GROUPS = new Uint16Array(8);
const SCRATCH_WORDS = new Uint32Array(4);

export function ipv6FromWords(w0: number, w1: number, w2: number, w3: number): bigint {
  return (BigInt(w0 >>> 0) << 96n) | (BigInt(w1 >>> 0) << 64n) | (BigInt(w2 >>> 0) << 32n) | BigInt(w3 >>> 0);
}

/** Splits a 128-bit value into four big-endian uint32 words (the matcher's IPv6 representation). */
export function ipv6ToWords(value: bigint, out: Uint32Array): Uint32Array {
  out[0] = Number(value >> 96n);
  out[1] = Number((value >> 64n) & 0xffffffffn);
  out[2] = Number((value >> 32n) & 0xffffffffn);
  out[3] = Number(value & 0xffffffffn);
  return out;
}

/** Strict IPv6 parser (see parseIpv6Words); returns the 128-bit value or null. */
export function parseIpv6(text: string): bigint | null {
  const w = SCRATCH_WORDS;
  if (!parseIpv6Words(text, w)) return null;
  return ipv6FromWords(w[0], w[1], w[2], w[3]);
}

/** Decimal text of 0-255, with and without a dot after it. */
const OCTET = Array.from({ length: 256 }, (_, i) => String(i));
const OCTET_DOT = OCTET.map((d) => `${d}.`);

/** Dotted-quad text of a uint32, from tables of octet text (an import formats a million of them). */
export function formatIpv4(value: number): string {
  return OCTET_DOT[value >>> 24] + OCTET_DOT[(value >>> 16) & 255] + OCTET_DOT[(value >>> 8) & 255] + OCTET[value & 255];
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::". */
export function formatIpv6(value: bigint): string {
  const w = ipv6ToWords(value, SCRATCH_WORDS);
  return formatIpv6Words(w[0], w[1], w[2], w[3]);
}

/** formatIpv6 of the address given as four big-endian uint32 words (no BigInt: a bulk import formats a million). */
export function formatIpv6Words(w0: number, w1: number, w2: number, w3: number): string {
  if (w0 === 0 && w1 === 0 && w2 >>> 0 === 0xffff) return `::ffff:${formatIpv4(w3 >>> 0)}`;
  const g = SCRATCH_GROUPS;
  g[0] = w0 >>> 16;
  g[1] = w0 & 0xffff;
  g[2] = w1 >>> 16;
  g[3] = w1 & 0xffff;
  g[4] = w2 >>> 16;
  g[5] = w2 & 0xffff;
  g[6] = w3 >>> 16;
  g[7] = w3 & 0xffff;
  let bestAt = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let end = k;
    while (end < 8 && g[end] === 0) end++;
    if (end - k > bestLen) {
      bestAt = k;
      bestLen = end - k;
    }
    k = end;
  }
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestAt) {
      out += '::';
      k += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += g[k].toString(16);
  }
  return out;
}

export function ipv4(value: number): Ipv4Address {
  return { family: 4, text: formatIpv4(value >>> 0), v4: value >>> 0 };
}

export function ipv6(value: bigint): Ipv6Address {
  return { family: 6, text: formatIpv6(value), v6: value };
}

/** Parses an IPv4 or IPv6 address strictly (no spaces, no zone id, no leading zeros in IPv4). */
export function parseIp(text: string): ParsedIp | null {
  // Strictly parsed IPv4 text is already canonical, so keep the caller's string.
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 4, text, v4 };
  const v6 = parseIpv6(text);
  return v6 === null ? null : ipv6(v6);
}

/** The embedded IPv4 of an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`), else null. */
export function mappedIpv4(ip: ParsedIp): number | null {
  if (ip.family !== 6 || (ip.v6 & MAPPED_MASK) !== IPV4_MAPPED_PREFIX) return null;
  return Number(ip.v6 & 0xffffffffn);
}

/** An IPv4-mapped IPv6 address becomes its IPv4 address; anything else is returned unchanged. */
export function unmapIp(ip: ParsedIp): ParsedIp {
  const v4 = mappedIpv4(ip);
  return v4 === null ? ip : ipv4(v4);
}

/** IPv6 forms that carry an IPv4 address: packets to them are translated or tunnelled to that IPv4 address. */
export type Ipv4CarryingForm = 'IPv4-mapped' | 'IPv4-compatible' | 'IPv4-translated' | 'NAT64' | 'local-use NAT64' | '6to4' | 'Teredo';

/**
 * What an address guard (SSRF) judges for `ip`: the IPv4 address an IPv6 form carries, since a translator or tunnel
 * delivers to it, else `ip` itself. `name` names it in a refusal; `ok: false` when the form carries an IPv4 address
 * whose place the address alone does not tell.
 */
export type GuardTarget = { ok: true; ip: ParsedIp; name: string } | { ok: false; why: string };

const TEREDO_PREFIX = 0x20010000; // 2001::/32
const NAT64_PREFIX = 0x0064ff9b; // 64:ff9b::/96, and 64:ff9b:1::/48 (local use)

/**
 * The forms: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (deprecated; :: and ::1 are themselves),
 * IPv4-translated ::ffff:0:0:0/96 (SIIT), NAT64 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056: bits 16-47) and
 * Teredo 2001::/32 (RFC 4380: the client, the last 32 bits inverted). In the local-use NAT64 prefix 64:ff9b:1::/48
 * (RFC 8215) the IPv4 address sits where the operator's prefix length (/48 to /96) puts it: only 64:ff9b:1::a.b.c.d
 * is told (every other layout reads it as 0.0.0.0/8, which reaches no host); any other address there is not.
 */
export function guardTarget(ip: ParsedIp): GuardTarget {
  if (ip.family === 4) return { ok: true, ip, name: ip.text };
  const [w0, w1, w2, w3] = ipv6ToWords(ip.v6, SCRATCH_WORDS);
  let form: Ipv4CarryingForm | null = null;
  let v4 = w3;
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) form = 'IPv4-mapped';
  else if (w0 === 0 && w1 === 0 && w2 === 0 && w3 > 1) form = 'IPv4-compatible';
  else if (w0 === 0 && w1 === 0 && w2 === 0xffff0000) form = 'IPv4-translated';
  else if (w0 === NAT64_PREFIX && w1 === 0 && w2 === 0) form = 'NAT64';
  else if (w0 === NAT64_PREFIX && w1 >>> 16 === 1) {
    if ((w1 & 0xffff) !== 0 || w2 !== 0)
      return { ok: false, why: `${ip.text} is a local-use NAT64 (64:ff9b:1::/48) address whose IPv4 address cannot be told` };
    form = 'local-use NAT64';
  } else if (w0 >>> 16 === 0x2002) {
    form = '6to4';
    v4 = ((w0 & 0xffff) * 0x10000 + (w1 >>> 16)) >>> 0;
  } else if (w0 === TEREDO_PREFIX) {
    form = 'Teredo';
    v4 = ~w3 >>> 0;
  }
  if (form === null) return { ok: true, ip, name: ip.text };
  const carried = ipv4(v4);
  return { ok: true, ip: carried, name: `${ip.text} (${form} of ${carried.text})` };
}

export function sameIp(a: ParsedIp, b: ParsedIp): boolean {
  return a.family === 4 ? b.family === 4 && a.v4 === b.v4 : b.family === 6 && a.v6 === b.v6;
}

// ---------------------------------------------------------------------------------------------
// Classification (IANA special-purpose registries, RFC 6890 and successors).

export type IpScope =
  | 'public'
  | 'private'
  | 'uniqueLocal'
  | 'loopback'
  | 'linkLocal'
  | 'multicast'
  | 'broadcast'
  | 'unspecified'
  | 'thisNetwork'
  | 'carrierGradeNat'
  | 'ietfProtocol'
  | 'documentation'
  | 'benchmarking'
  | 'discard'
  | 'nat64'
  | 'reserved';

export const IP_SCOPES: readonly IpScope[] = [
  'public',
  'private',
  'uniqueLocal',
  'loopback',
  'linkLocal',
  'multicast',
  'broadcast',
  'unspecified',
  'thisNetwork',
  'carrierGradeNat',
  'ietfProtocol',
  'documentation',
  'benchmarking',
  'discard',
  'nat64',
  'reserved',
];

export function classifyIpv4(value: number): IpScope {
  const ip = value >>> 0;
  const a = ip >>> 24;
  if (a === 0) return ip === 0 ? 'unspecified' : 'thisNetwork';
  if (a === 10) return 'private';
  if (a === 127) return 'loopback';
  if (a >= 224) {
    if (ip === 0xffffffff) return 'broadcast';
    return a < 240 ? 'multicast' : 'reserved';
  }
  const ab = ip >>> 16;
  if (ip >>> 22 === 0x191) return 'carrierGradeNat'; // 100.64.0.0/10
  if (ab === 0xa9fe) return 'linkLocal'; // 169.254.0.0/16
  if (ip >>> 20 === 0xac1) return 'private'; // 172.16.0.0/12
  if (ab === 0xc0a8) return 'private'; // 192.168.0.0/16
  const abc = ip >>> 8;
  if (abc === 0xc00000) return 'ietfProtocol'; // 192.0.0.0/24
  if (abc === 0xc00002 || abc === 0xc63364 || abc === 0xcb0071) return 'documentation'; // TEST-NET-1/2/3
  if (ip >>> 17 === 0x6309) return 'benchmarking'; // 198.18.0.0/15
  return 'public';
}

export function classifyIpv6Words(w0: number, w1: number, w2: number, w3: number): IpScope {
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0) {
      if (w3 === 0) return 'unspecified';
      if (w3 === 1) return 'loopback';
      return 'reserved'; // deprecated IPv4-compatible ::a.b.c.d
    }
    if (w2 === 0xffff) return classifyIpv4(w3); // the address is really the embedded IPv4
    return 'reserved';
  }
  if (w0 === 0x0064ff9b && w1 === 0 && w2 === 0) return 'nat64'; // 64:ff9b::/96
  if (w0 === 0x01000000 && w1 === 0) return 'discard'; // 100::/64
  if (w0 === 0x20010db8 || w0 >>> 12 === 0x3fff0) return 'documentation'; // 2001:db8::/32, 3fff::/20
  if (w0 === 0x20010002 && w1 >>> 16 === 0) return 'benchmarking'; // 2001:2::/48
  if (w0 >>> 25 === 0x7e) return 'uniqueLocal'; // fc00::/7
  if (w0 >>> 22 === 0x3fa) return 'linkLocal'; // fe80::/10
  if (w0 >>> 24 === 0xff) return 'multicast'; // ff00::/8
  if (w0 >>> 29 === 1) return 'public'; // 2000::/3 global unicast
  return 'reserved'; // unassigned by IANA (incl. deprecated site-local fec0::/10)
}

export function classifyIpv6(value: bigint): IpScope {
  const w = ipv6ToWords(value, SCRATCH_WORDS);
  return classifyIpv6Words(w[0], w[1], w[2], w[3]);
}

/** IPv4-mapped IPv6 addresses are classified as their embedded IPv4 address. */
export function classifyIp(ip: ParsedIp): IpScope {
  return ip.family === 4 ? classifyIpv4(ip.v4) : classifyIpv6(ip.v6);
}

const SCOPE_DESCRIPTIONS: Record<IpScope, string> = {
  public: 'a public address',
  private: 'a private (RFC 1918) address',
  uniqueLocal: 'a unique-local IPv6 (fc00::/7) address',
  loopback: 'a loopback address',
  linkLocal: 'a link-local address',
  multicast: 'a multicast address',
  broadcast: 'the limited broadcast address',
  unspecified: 'the unspecified address',
  thisNetwork: 'a "this network" (0.0.0.0/8) address',
  carrierGradeNat: 'a carrier-grade NAT (100.64.0.0/10) address',
  ietfProtocol: 'an IETF protocol assignment (192.0.0.0/24) address',
  documentation: 'a documentation (example) address',
  benchmarking: 'a benchmarking address',
  discard: 'a discard-only IPv6 (100::/64) address',
  nat64: 'a NAT64 (64:ff9b::/96) address',
  reserved: 'a reserved address',
};

/** Short human reason for error messages: "10.0.0.1 is a private (RFC 1918) address". */
export function describeScope(scope: IpScope): string {
  return SCOPE_DESCRIPTIONS[scope];
}

// Internal and local-scope addresses cannot cross the internet, so IOC matching skips them (DESIGN:
// bogon lists must not flag LAN chatter). Documentation and benchmarking ranges stay matchable: they
// are not local scope, and examples and test captures use them as stand-ins for public hosts.
const NOT_ROUTABLE: ReadonlySet<IpScope> = new Set<IpScope>([
  'private',
  'uniqueLocal',
  'loopback',
  'linkLocal',
  'multicast',
  'broadcast',
  'unspecified',
  'thisNetwork',
  'carrierGradeNat',
  'discard',
  'reserved',
]);

export function isScopeInternetRoutable(scope: IpScope): boolean {
  return !NOT_ROUTABLE.has(scope);
}

// Addresses that name no host of ours: a group (multicast, broadcast), an address valid only on one link, this
// host, or none. Carrier-grade NAT and reserved space stay hosts: capture hosts sit behind 100.64/10.
const NOT_A_HOST: ReadonlySet<IpScope> = new Set<IpScope>(['loopback', 'linkLocal', 'multicast', 'broadcast', 'unspecified', 'thisNetwork']);

/** Local scope: never reported as one of our hosts (flows/sides.ts). */
export function isLocalScope(scope: IpScope): boolean {
  return NOT_A_HOST.has(scope);
}

export function isInternetRoutable(ip: ParsedIp): boolean {
  return !NOT_ROUTABLE.has(classifyIp(ip));
}

export function isPublicIp(ip: ParsedIp): boolean {
  return classifyIp(ip) === 'public';
}

/** RFC 1918 or IPv6 unique-local: the "private" side of the direction rule (before device networks). */
export function isPrivateIp(ip: ParsedIp): boolean {
  const scope = classifyIp(ip);
  return scope === 'private' || scope === 'uniqueLocal';
}
