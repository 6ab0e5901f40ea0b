/** Seeded IOC entry sets for the benchmarks, as columns, with "hot" addresses the traffic generator can aim at. */
import { ipv4Mask, ipv6Mask } from '../../src/common/net/cidr';
import { classifyIpv4, isScopeInternetRoutable, parseIpv4, parseIpv6 } from '../../src/common/net/ip';
import { PUBLIC_FIRST_OCTETS, PUBLIC_V6_PREFIXES, rng } from './tcpdump-text';

/** Entries as columns (1M objects would themselves be the memory figure). */
export interface IocSet {
  v4Net: Uint32Array;
  v4Prefix: Uint8Array;
  n4: number;
  v6Net: bigint[];
  v6Prefix: number[];
  /** External addresses the generated traffic talks to on purpose: each is inside one entry. */
  hotV4: string[];
  hotV6: string[];
  counts: { v4_32: number; v4_24: number; v6: number };
}

/**
 * `total` distinct public entries: ~92% IPv4 (70% /32, 30% /24), ~8% IPv6 (/128, /64, /48 in 2000::/3), plus
 * 400 IPv4 and 40 IPv6 "hot" addresses in the traffic generator's ranges, each covered by one entry.
 */
export function generateIocSet(total: number, seed: number): IocSet {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const u32 = () => Math.floor(r() * 4294967296) >>> 0;
  const v4Net = new Uint32Array(total);
  const v4Prefix = new Uint8Array(total);
  let n4 = 0;
  const v6Net: bigint[] = [];
  const v6Prefix: number[] = [];
  const seen4 = new Set<number>();
  const seen6 = new Set<string>();
  const counts = { v4_32: 0, v4_24: 0, v6: 0 };
  const add4 = (addr: number, prefix: number): boolean => {
    const net = (addr & ipv4Mask(prefix)) >>> 0;
    const key = net * 64 + prefix;
    if (seen4.has(key)) return false;
    seen4.add(key);
    v4Net[n4] = net;
    v4Prefix[n4++] = prefix;
    if (prefix === 32) counts.v4_32++;
    else counts.v4_24++;
    return true;
  };
  const add6 = (addr: bigint, prefix: number): boolean => {
    const net = addr & ipv6Mask(prefix);
    const key = `${net.toString(16)}/${prefix}`;
    if (seen6.has(key)) return false;
    seen6.add(key);
    v6Net.push(net);
    v6Prefix.push(prefix);
    counts.v6++;
    return true;
  };
  const routable4 = (a: number) => isScopeInternetRoutable(classifyIpv4(a));
  const hotV4: string[] = [];
  const hotV6: string[] = [];
  while (hotV4.length < 400) {
    const text = `${PUBLIC_FIRST_OCTETS[int(PUBLIC_FIRST_OCTETS.length)]}.${int(256)}.${int(256)}.${1 + int(254)}`;
    const a = parseIpv4(text) as number;
    if (!routable4(a)) continue;
    if (add4(a, r() < 0.5 ? 32 : 24)) hotV4.push(text);
  }
  while (hotV6.length < 40) {
    const text = `${PUBLIC_V6_PREFIXES[int(PUBLIC_V6_PREFIXES.length)]}:${int(65536).toString(16)}:${int(65536).toString(16)}::${(1 + int(65535)).toString(16)}`;
    const roll = r();
    if (add6(parseIpv6(text) as bigint, roll < 0.5 ? 128 : roll < 0.75 ? 64 : 48)) hotV6.push(text);
  }
  while (n4 + v6Net.length < total) {
    if (r() < 0.08) {
      const hi = ((0x20000000 | (u32() & 0x1fffffff)) >>> 0) as number; // 2000::/3
      const addr = (BigInt(hi) << 96n) | (BigInt(u32()) << 64n) | (BigInt(u32()) << 32n) | BigInt(u32());
      const roll = r();
      add6(addr, roll < 0.5 ? 128 : roll < 0.8 ? 64 : 48);
    } else {
      const a = u32();
      if (routable4(a)) add4(a, r() < 0.7 ? 32 : 24);
    }
  }
  return { v4Net: v4Net.subarray(0, n4), v4Prefix: v4Prefix.subarray(0, n4), n4, v6Net, v6Prefix, hotV4, hotV6, counts };
}
