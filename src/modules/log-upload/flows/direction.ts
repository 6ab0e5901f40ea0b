/**
 * Which side of a packet is "ours", on the parser's integer form (IPv4 uint32, IPv6 four big-endian words).
 *
 * Internal ("inside") = RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 unique-local fc00::/7, the device's
 * own static address (a capture host on a public address), plus the device's internal networks (IPv4 or
 * IPv6; a device may call a public range its own). The product rule for one packet: OUTBOUND when the source
 * is internal and the destination is not, otherwise INBOUND (the original's default). A connection's sides
 * also weigh which end matched an IOC: flows/sides.ts.
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is its IPv4 host, here as in the IOC matcher.
 *
 * Can cross the internet = not internal and not local scope (loopback, link-local, multicast, broadcast,
 * unspecified, 0/8, 100.64/10, 240/4, ::, ::1, fe80::/10, ff00::/8 and the rest of common/net's
 * non-routable scopes). Only such addresses are matched against IOCs, so bogon lists stay quiet on LANs.
 *
 * Local scope = not internal, and loopback, link-local, multicast, broadcast, unspecified or 0/8: an address
 * that names no host of ours (common/net isLocalScope), never reported as an internal host.
 */
import {
  Cidr,
  Cidr6,
  classifyIpv4,
  classifyIpv6Words,
  ipv4Mask,
  ipv6Mask,
  ipv6ToWords,
  isLocalScope,
  isScopeInternetRoutable,
  parseCidr,
  parseIpv4,
  parseIpv6Words,
} from '../../../common/net';

export enum Direction {
  INBOUND = 'INBOUND',
  OUTBOUND = 'OUTBOUND',
}

export interface DirectionClassifier {
  readonly internalNetworks: readonly Cidr[];
  isInternalV4(addr: number): boolean;
  /** The address at words[offset .. offset+3]. */
  isInternalV6(words: ArrayLike<number>, offset: number): boolean;
  canCrossInternetV4(addr: number): boolean;
  canCrossInternetV6(words: ArrayLike<number>, offset: number): boolean;
  isLocalScopeV4(addr: number): boolean;
  isLocalScopeV6(words: ArrayLike<number>, offset: number): boolean;
  directionV4(src: number, dst: number): Direction;
  directionV6(words: ArrayLike<number>, srcOffset: number, dstOffset: number): Direction;
  /** Text forms, for the CLI and tests; null when the text is not an address. */
  isInternal(ip: string): boolean | null;
  canCrossInternet(ip: string): boolean | null;
}

/** Device networks are validated where they are stored; any CIDR width is taken here (even /0). */
const ANY_WIDTH = { minPrefixV4: 0, minPrefixV6: 0 };

/**
 * @param internalNetworks the device's CIDR texts (`10.20.0.0/16`, `2001:db8:1::/48`, single addresses).
 * @param ownAddress the device's static address (Device.ipAddress; null for DYNAMIC devices): inside too.
 * @throws Error naming the first text that is not a CIDR (callers pass stored, validated values).
 */
export function createDirectionClassifier(internalNetworks: readonly string[], ownAddress: string | null = null): DirectionClassifier {
  const cidrs: Cidr[] = [];
  for (const text of ownAddress ? [...internalNetworks, ownAddress] : internalNetworks) {
    const r = parseCidr(text.trim(), ANY_WIDTH);
    if (!r.ok) throw new Error(`Invalid internal network: ${r.message}`);
    cidrs.push(r.cidr);
  }
  const v4 = cidrs.filter((c) => c.family === 4);
  const v6 = cidrs.filter((c): c is Cidr6 => c.family === 6);
  // Flat typed arrays: a device has a handful of networks, a linear scan beats anything cleverer.
  const net4 = Uint32Array.from(v4, (c) => c.network);
  const mask4 = Uint32Array.from(v4, (c) => ipv4Mask(c.prefix));
  const net6 = new Uint32Array(v6.length * 4);
  const mask6 = new Uint32Array(v6.length * 4);
  v6.forEach((c, k) => {
    ipv6ToWords(c.network, net6.subarray(4 * k, 4 * k + 4));
    ipv6ToWords(ipv6Mask(c.prefix), mask6.subarray(4 * k, 4 * k + 4));
  });
  const n4 = net4.length;
  const n6 = v6.length;

  function isInternalV4(addr: number): boolean {
    const a = addr >>> 0;
    if (a >>> 24 === 10 || a >>> 20 === 0xac1 || a >>> 16 === 0xc0a8) return true;
    for (let k = 0; k < n4; k++) if ((a & mask4[k]) >>> 0 === net4[k]) return true;
    return false;
  }

  function isInternalV6(words: ArrayLike<number>, o: number): boolean {
    const w0 = words[o];
    if (w0 >>> 25 === 0x7e) return true; // fc00::/7
    if (w0 === 0 && words[o + 1] === 0 && words[o + 2] === 0xffff) return isInternalV4(words[o + 3]);
    for (let k = 0; k < n6; k++) {
      const b = 4 * k;
      if (
        (w0 & mask6[b]) >>> 0 === net6[b] &&
        (words[o + 1] & mask6[b + 1]) >>> 0 === net6[b + 1] &&
        (words[o + 2] & mask6[b + 2]) >>> 0 === net6[b + 2] &&
        (words[o + 3] & mask6[b + 3]) >>> 0 === net6[b + 3]
      ) {
        return true;
      }
    }
    return false;
  }

  function canCrossInternetV4(addr: number): boolean {
    return !isInternalV4(addr) && isScopeInternetRoutable(classifyIpv4(addr));
  }

  function canCrossInternetV6(words: ArrayLike<number>, o: number): boolean {
    return !isInternalV6(words, o) && isScopeInternetRoutable(classifyIpv6Words(words[o], words[o + 1], words[o + 2], words[o + 3]));
  }

  function isLocalScopeV4(addr: number): boolean {
    return !isInternalV4(addr) && isLocalScope(classifyIpv4(addr));
  }

  function isLocalScopeV6(words: ArrayLike<number>, o: number): boolean {
    return !isInternalV6(words, o) && isLocalScope(classifyIpv6Words(words[o], words[o + 1], words[o + 2], words[o + 3]));
  }

  const scratch = new Uint32Array(4);
  function textForm<T>(ip: string, onV4: (a: number) => T, onV6: (w: Uint32Array, o: number) => T): T | null {
    const a = parseIpv4(ip);
    if (a !== null) return onV4(a);
    return parseIpv6Words(ip, scratch) ? onV6(scratch, 0) : null;
  }

  return {
    internalNetworks: cidrs,
    isInternalV4,
    isInternalV6,
    canCrossInternetV4,
    canCrossInternetV6,
    isLocalScopeV4,
    isLocalScopeV6,
    directionV4: (src, dst) => (isInternalV4(src) && !isInternalV4(dst) ? Direction.OUTBOUND : Direction.INBOUND),
    directionV6: (words, s, d) => (isInternalV6(words, s) && !isInternalV6(words, d) ? Direction.OUTBOUND : Direction.INBOUND),
    isInternal: (ip) => textForm(ip, isInternalV4, isInternalV6),
    canCrossInternet: (ip) => textForm(ip, canCrossInternetV4, canCrossInternetV6),
  };
}
