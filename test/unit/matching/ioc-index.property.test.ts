import fc from 'fast-check';
import { ipv4Mask, ipv6Mask } from '../../../src/common/net/cidr';
import { formatIpv4, formatIpv6, IPV4_MAPPED_PREFIX, ParsedIp, parseIp, unmapIp } from '../../../src/common/net/ip';
import { buildIocIndex, IocEntryInput, IocListInfo, IocListKind } from '../../../src/modules/ioc/matching/ioc-index';

// Brute-force reference: scan every entry. IPv4-mapped IPv6 is the IPv4 host; an IPv6 entry matches an
// IPv4 host when it contains its ::ffff:a.b.c.d form. Order: most specific first (IPv6 prefixes count
// 96 less for IPv4 hosts), then ALLOW first, severity descending, list id, entry id.

const BUILD_NOW = 1_000_000;

const MASKS6 = Array.from({ length: 129 }, (_, p) => ipv6Mask(p));

function contains(e: IocEntryInput, ip: ParsedIp, mapped: bigint): boolean {
  if (e.family === 4) return ip.family === 4 && (ip.v4 & ipv4Mask(e.prefix)) >>> 0 === e.network;
  return ((ip.family === 6 ? ip.v6 : mapped) & MASKS6[e.prefix]) === e.network;
}

function reference(lists: IocListInfo[], entries: IocEntryInput[], address: ParsedIp, now: number | undefined): string[] {
  const ip = unmapIp(address);
  const mapped = ip.family === 4 ? IPV4_MAPPED_PREFIX | BigInt(ip.v4) : 0n;
  const listOf = new Map(lists.map((l) => [l.id, l]));
  const at = now ?? BUILD_NOW;
  const live = entries.filter((e) => (e.expiresAt == null || (e.expiresAt > BUILD_NOW && e.expiresAt > at)) && contains(e, ip, mapped));
  const specificity = (e: IocEntryInput) => (ip.family === 4 && e.family === 6 ? Math.max(e.prefix - 96, 0) : e.prefix);
  live.sort((a, b) => {
    const la = listOf.get(a.listId)!;
    const lb = listOf.get(b.listId)!;
    return (
      specificity(b) - specificity(a) || Number(lb.kind === 'ALLOW') - Number(la.kind === 'ALLOW') || lb.severity - la.severity || la.id - lb.id || a.id - b.id
    );
  });
  const suppressed = live.some((e) => listOf.get(e.listId)!.kind === 'ALLOW');
  return live.map((e) => `${e.id}@${e.listId}${suppressed && listOf.get(e.listId)!.kind === 'BLOCK' ? '!' : ''}`);
}

// Small address universes so that generated CIDRs nest and collide often.
const V4_BASES = [0x00000000, 0x0a000000, 0xc0000200, 0xcb007100, 0xfffffff0];
const V6_BASES = [0n, 0x20010db8n << 96n, IPV4_MAPPED_PREFIX, (0x20010db8n << 96n) | 0xffffn];

const v4Address = fc
  .tuple(fc.constantFrom(...V4_BASES), fc.nat({ max: 0xffff }), fc.boolean())
  .map(([base, low, far]) => (far ? (base ^ (low << 16)) >>> 0 : (base + low) % 0x1_0000_0000));
const v6Address = fc
  .tuple(fc.constantFrom(...V6_BASES), fc.bigInt({ min: 0n, max: 0xffffn }), fc.nat({ max: 127 }))
  .map(([base, low, shift]) => (base ^ (low << BigInt(shift % 3 === 0 ? shift : 0))) & ((1n << 128n) - 1n));
const v4Prefix = fc.oneof(fc.constantFrom(0, 8, 16, 24, 31, 32), fc.integer({ min: 0, max: 32 }));
const v6Prefix = fc.oneof(fc.constantFrom(0, 16, 32, 48, 64, 96, 112, 120, 127, 128), fc.integer({ min: 0, max: 128 }));
const expiry = fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: BUILD_NOW - 10, max: BUILD_NOW + 100 }) });

const entryArb = fc.oneof(
  fc.record({ family: fc.constant(4 as const), address: v4Address, prefix: v4Prefix, listNo: fc.nat(3), expiresAt: expiry }),
  fc.record({ family: fc.constant(6 as const), address: v6Address, prefix: v6Prefix, listNo: fc.nat(3), expiresAt: expiry }),
);

const listsArb = fc
  .array(fc.record({ allow: fc.integer({ min: 0, max: 4 }), severity: fc.integer({ min: 0, max: 5 }) }), {
    minLength: 1,
    maxLength: 4,
  })
  .map((ls) =>
    ls.map((l, i): IocListInfo => ({
      id: 100 + i * 7,
      kind: (l.allow === 0 ? 'ALLOW' : 'BLOCK') as IocListKind,
      severity: l.severity,
      category: `list${i}`,
    })),
  );

interface RawEntry {
  family: 4 | 6;
  address: number | bigint;
  prefix: number;
  listNo: number;
  expiresAt: number | null;
}

function toEntries(lists: IocListInfo[], raw: RawEntry[]): IocEntryInput[] {
  return raw.map((r, i) => ({
    id: i + 1,
    listId: lists[r.listNo % lists.length].id,
    family: r.family,
    network: r.family === 4 ? (Number(r.address) & ipv4Mask(r.prefix)) >>> 0 : BigInt(r.address) & ipv6Mask(r.prefix),
    prefix: r.prefix,
    expiresAt: r.expiresAt,
  }));
}

function addressesFor(entries: IocEntryInput[], extra: string[]): string[] {
  const out = [...extra];
  for (const e of entries) {
    if (e.family === 4) {
      const n = e.network as number;
      const last = n + 2 ** (32 - e.prefix) - 1;
      out.push(formatIpv4(n), formatIpv4(last), formatIpv4(Math.max(n - 1, 0)), formatIpv4(Math.min(last + 1, 0xffffffff)));
      out.push(`::ffff:${formatIpv4(n)}`);
    } else {
      const n = e.network as bigint;
      const last = n | (~ipv6Mask(e.prefix) & ((1n << 128n) - 1n));
      out.push(formatIpv6(n), formatIpv6(last));
      if (n > 0n) out.push(formatIpv6(n - 1n));
      if (last < (1n << 128n) - 1n) out.push(formatIpv6(last + 1n));
    }
  }
  return out;
}

describe('IocIndex agrees with a brute-force scan', () => {
  test('random CIDR sets, both families, nested and overlapping, with expiry', () => {
    fc.assert(
      fc.property(
        listsArb,
        fc.array(entryArb, { maxLength: 40 }),
        fc.array(fc.oneof(v4Address.map(formatIpv4), v6Address.map(formatIpv6)), { maxLength: 10 }),
        fc.option(fc.integer({ min: BUILD_NOW - 5, max: BUILD_NOW + 120 }), { nil: undefined }),
        (lists, raw, extra, now) => {
          const entries = toEntries(lists, raw);
          const idx = buildIocIndex(lists, entries, { now: BUILD_NOW });
          for (const text of addressesFor(entries, extra)) {
            const ip = parseIp(text)!;
            const expected = reference(lists, entries, ip, now);
            const actual = idx.lookup(ip, now).map((m) => `${m.entryId}@${m.list.id}${m.suppressed ? '!' : ''}`);
            expect({ text, now, actual }).toEqual({ text, now, actual: expected });
            const bestExpected = expected.find((h) => !h.endsWith('!') && lists.find((l) => `${l.id}` === h.split('@')[1])!.kind === 'BLOCK');
            const bestActual = idx.bestBlock(ip, now);
            expect({ text, best: bestActual ? `${bestActual.entryId}@${bestActual.list.id}` : undefined }).toEqual({
              text,
              best: bestExpected,
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a large seeded set exercises the bucket index and the IPv6 length filter', () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const lists: IocListInfo[] = [
      { id: 1, kind: 'BLOCK', severity: 4, category: 'a' },
      { id: 2, kind: 'BLOCK', severity: 2, category: 'b' },
      { id: 3, kind: 'ALLOW', severity: 0, category: 'c' },
    ];
    const entries: IocEntryInput[] = [];
    for (let i = 0; i < 9000; i++) {
      const listId = rand() < 0.05 ? 3 : rand() < 0.5 ? 1 : 2;
      if (rand() < 0.45) {
        const prefix = rand() < 0.003 ? 8 : [32, 32, 24, 16, 20, 28][Math.floor(rand() * 6)];
        const addr = (0x0a000000 + Math.floor(rand() * 0x00ffffff)) >>> 0; // 10/8 keeps them overlapping
        entries.push({ id: i + 1, listId, family: 4, network: (addr & ipv4Mask(prefix)) >>> 0, prefix });
      } else {
        const prefix = rand() < 0.003 ? 12 : [48, 56, 64, 128, 32][Math.floor(rand() * 5)];
        const addr = (0x2001n << 112n) | (BigInt(Math.floor(rand() * 0xffff)) << 96n) | BigInt(Math.floor(rand() * 2 ** 40));
        entries.push({ id: i + 1, listId, family: 6, network: addr & ipv6Mask(prefix), prefix });
      }
    }
    const idx = buildIocIndex(lists, entries, { now: BUILD_NOW });
    expect(idx.stats.ipv6Networks).toBeGreaterThan(4096); // the /16 length filter kicks in
    const queries = addressesFor(entries.slice(0, 300), []);
    for (let i = 0; i < 300; i++) queries.push(formatIpv4((0x0a000000 + Math.floor(rand() * 0x00ffffff)) >>> 0));
    for (const text of queries) {
      const ip = parseIp(text)!;
      const actual = idx.lookup(ip).map((m) => `${m.entryId}@${m.list.id}${m.suppressed ? '!' : ''}`);
      expect({ text, actual }).toEqual({ text, actual: reference(lists, entries, ip, undefined) });
    }
  });
});
