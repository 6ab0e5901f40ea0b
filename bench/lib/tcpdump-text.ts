/**
 * Seeded generator of realistic `tcpdump -tt -n` text, shared by the benchmarks (moved out of parser.bench.ts;
 * the same seed and options give the same bytes as before).
 *
 * A LAN capture: mostly RFC 1918 hosts talking to public addresses, some inbound scans, some IPv6, a little ARP.
 * `hot` makes a share of new conversations talk to chosen external addresses (e.g. ones on an IOC list), so a
 * benchmark can count on hits; without it the random stream is exactly the original one.
 */

/** mulberry32: small, seeded, good enough for test data. Returns floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TcpdumpTextOptions {
  /** Generation stops at the first line that reaches this many bytes (the result is at most one line longer). */
  targetBytes: number;
  seed: number;
  /** Share of connections over IPv6 (default 0.08). */
  v6Share?: number;
  /** External addresses (tcpdump spelling) that a `share` of new conversations use instead of a random one. */
  hot?: { v4: readonly string[]; v6: readonly string[]; share: number };
}

/** First octets of the generated public IPv4 addresses. */
export const PUBLIC_FIRST_OCTETS = [8, 23, 31, 45, 52, 64, 93, 104, 142, 151, 185, 203];
/** /32 prefixes (first two groups) of the generated public IPv6 addresses. */
export const PUBLIC_V6_PREFIXES = ['2606:4700', '2a00:1450', '2620:fe'];

interface Conv {
  v6: boolean;
  a: string;
  b: string;
  ap: number;
  bp: number;
  kind: 'tcp' | 'dns' | 'udp' | 'icmp';
  seq: number;
}

export function generateTcpdumpText(options: TcpdumpTextOptions): Buffer {
  const { targetBytes, seed, hot } = options;
  const v6Share = options.v6Share ?? 0.08;
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)];
  const priv = () => pick([`192.168.${int(4)}.${1 + int(250)}`, `10.${int(3)}.${int(256)}.${1 + int(250)}`, `172.16.${int(16)}.${1 + int(250)}`]);
  const pub = () => `${pick(PUBLIC_FIRST_OCTETS)}.${int(256)}.${int(256)}.${1 + int(254)}`;
  const v6 = (prefix: string) => `${prefix}:${int(65536).toString(16)}:${int(65536).toString(16)}::${(1 + int(65535)).toString(16)}`;
  const convs: Conv[] = [];
  const newConv = (): Conv => {
    const k = r();
    const isV6 = r() < v6Share;
    const kind = k < 0.7 ? 'tcp' : k < 0.85 ? 'dns' : k < 0.93 ? 'udp' : 'icmp';
    const inbound = r() < 0.1;
    const inside = isV6 ? v6(pick(['fd00:1', '2001:db8'])) : priv();
    let outside = isV6 ? v6(pick(PUBLIC_V6_PREFIXES)) : pub();
    // Drawn only when asked for, so the stream without `hot` stays the original one.
    if (hot && r() < hot.share) {
      const pool = isV6 ? hot.v6 : hot.v4;
      if (pool.length > 0) outside = pick(pool);
    }
    const port = kind === 'dns' ? 53 : kind === 'tcp' ? pick([443, 443, 443, 80, 22, 8080]) : pick([123, 443, 5353, 1900]);
    return { v6: isV6, a: inbound ? outside : inside, b: inbound ? inside : outside, ap: 1024 + int(64000), bp: port, kind, seq: 0 };
  };
  let sec = 1700000000;
  let usec = 0;
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    usec += 1 + int(2000);
    if (usec >= 1e6) {
      sec += Math.floor(usec / 1e6);
      usec %= 1e6;
    }
    const ts = `${sec}.${String(usec).padStart(6, '0')}`;
    let line: string;
    if (r() < 0.015) {
      line = `${ts} ARP, Request who-has 192.168.0.${1 + int(254)} tell 192.168.0.1, length 28`;
    } else {
      if (convs.length < 50 || r() < 0.03) convs.push(newConv());
      const c = convs[convs.length - 1 - int(Math.min(convs.length, 400))];
      const fwd = c.seq === 0 || r() < 0.55;
      const ip = c.v6 ? 'IP6' : 'IP';
      const [s, sp, d, dp] = fwd ? [c.a, c.ap, c.b, c.bp] : [c.b, c.bp, c.a, c.ap];
      if (c.kind === 'icmp') {
        line = `${ts} ${ip} ${s} > ${d}: ${c.v6 ? 'ICMP6, echo request' : 'ICMP echo request'}, id ${c.ap}, seq ${c.seq}, length 64`;
      } else if (c.kind === 'dns') {
        const id = int(65536);
        line = fwd
          ? `${ts} ${ip} ${s}.${sp} > ${d}.${dp}: ${id}+ A? host${int(1000)}.example.com. (${30 + int(20)})`
          : `${ts} ${ip} ${s}.${sp} > ${d}.${dp}: ${id} 1/0/0 A ${pub()} (${60 + int(40)})`;
      } else if (c.kind === 'udp') {
        line = `${ts} ${ip} ${s}.${sp} > ${d}.${dp}: UDP, length ${20 + int(1200)}`;
      } else {
        const flags = c.seq === 0 ? 'S' : c.seq === 1 && !fwd ? 'S.' : pick(['.', 'P.', 'P.', '.']);
        const len = flags.startsWith('S') || flags === '.' ? 0 : 1 + int(1448);
        const seq = 1 + c.seq * 1000;
        const options = r() < 0.4 ? `options [nop,nop,TS val ${int(4e9)} ecr ${int(4e9)}], ` : '';
        line = `${ts} ${ip} ${s}.${sp} > ${d}.${dp}: Flags [${flags}], seq ${seq}:${seq + len}, ack ${int(1e9)}, win ${502 + int(60000)}, ${options}length ${len}`;
      }
      c.seq++;
    }
    parts.push(line);
    bytes += line.length + 1;
  }
  return Buffer.from(parts.join('\n') + '\n', 'latin1');
}
