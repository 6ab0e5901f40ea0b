import { parseCidr } from '../../../src/common/net/cidr';
import { parseIpv4 } from '../../../src/common/net/ip';
import { buildIocIndex, IocEntryInput, IocIndexBuilder, IocListInfo, NO_MATCH } from '../../../src/modules/ioc/matching/ioc-index';

const NOW = Date.UTC(2026, 0, 1);

const LISTS: IocListInfo[] = [
  { id: 1, kind: 'BLOCK', severity: 5, category: 'c2' },
  { id: 2, kind: 'BLOCK', severity: 2, category: 'scanner' },
  { id: 3, kind: 'ALLOW', severity: 0, category: 'partners' },
  { id: 4, kind: 'BLOCK', severity: 3, category: 'drop' },
];

type Row = [id: number, listId: number, cidr: string, expiresAt?: number | null];

function entries(rows: Row[]): IocEntryInput[] {
  return rows.map(([id, listId, text, expiresAt]) => {
    const r = parseCidr(text, { minPrefixV4: 0, minPrefixV6: 0 });
    if (!r.ok) throw new Error(`test setup: ${text}`);
    return { id, listId, family: r.cidr.family, network: r.cidr.network, prefix: r.cidr.prefix, expiresAt };
  });
}

function index(rows: Row[]) {
  return buildIocIndex(LISTS, entries(rows), { now: NOW });
}

/** "entryId@listId" for every containing entry, most specific first; "!" marks suppressed. */
function hits(idx: ReturnType<typeof index>, address: string, now?: number): string[] {
  return idx.lookup(address, now).map((m) => `${m.entryId}@${m.list.id}${m.suppressed ? '!' : ''}`);
}

function best(idx: ReturnType<typeof index>, address: string, now?: number): number | null {
  return idx.bestBlock(address, now)?.entryId ?? null;
}

describe('IocIndex lookups (table-driven)', () => {
  const idx = index([
    [10, 1, '203.0.113.7'],
    [11, 2, '203.0.113.0/24'],
    [12, 4, '203.0.0.0/16'],
    [13, 2, '198.51.100.0/24'],
    [14, 4, '198.51.100.0/24'], // same CIDR in a second list
    [15, 2, '192.0.2.0/25'],
    [16, 3, '192.0.2.64/26'], // ALLOW inside a BLOCK
    [17, 2, '100.0.0.0/8'],
    [18, 3, '100.1.2.3'], // ALLOW /32 inside BLOCK /8
    [20, 1, '2001:db8:1::/48'],
    [21, 2, '2001:db8::/32'],
    [22, 2, '2001:db8:1::42'],
    [23, 3, '2001:db8:2::/48'],
    [24, 4, '2a12:2640::/29'],
    [30, 1, '255.255.255.255/32'],
    [31, 2, '0.0.0.0/8'],
  ]);

  test.each<[string, string[], number | null]>([
    ['203.0.113.7', ['10@1', '11@2', '12@4'], 10],
    ['203.0.113.0', ['11@2', '12@4'], 11], // first address of the /24
    ['203.0.113.255', ['11@2', '12@4'], 11], // last address of the /24
    ['203.0.114.0', ['12@4'], 12],
    ['203.0.255.255', ['12@4'], 12],
    ['203.1.0.0', [], null],
    ['202.255.255.255', [], null],
    ['198.51.100.9', ['14@4', '13@2'], 14], // both lists, higher severity first
    ['192.0.2.1', ['15@2'], 15],
    ['192.0.2.64', ['16@3', '15@2!'], null], // ALLOW suppresses the wider BLOCK
    ['192.0.2.127', ['16@3', '15@2!'], null],
    ['192.0.2.128', [], null],
    ['100.1.2.3', ['18@3', '17@2!'], null],
    ['100.1.2.4', ['17@2'], 17],
    ['100.255.255.255', ['17@2'], 17],
    ['255.255.255.255', ['30@1'], 30],
    ['0.0.0.0', ['31@2'], 31],
    ['::ffff:203.0.113.7', ['10@1', '11@2', '12@4'], 10], // IPv4-mapped IPv6 matches IPv4 entries
    ['::ffff:100.1.2.3', ['18@3', '17@2!'], null],
    ['::203.0.113.7', [], null], // IPv4-compatible is not mapped
    ['2001:db8:1::42', ['22@2', '20@1', '21@2'], 22],
    ['2001:db8:1::43', ['20@1', '21@2'], 20],
    ['2001:db8:1:ffff:ffff:ffff:ffff:ffff', ['20@1', '21@2'], 20],
    ['2001:db8:3::1', ['21@2'], 21],
    ['2001:db8:2::1', ['23@3', '21@2!'], null],
    ['2001:db9::', [], null],
    ['2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', [], null],
    ['2a12:2640::', ['24@4'], 24],
    ['2a12:2647:ffff:ffff:ffff:ffff:ffff:ffff', ['24@4'], 24],
    ['2a12:2648::', [], null],
  ])('%s -> %j (best %p)', (address, expected, bestId) => {
    expect(hits(idx, address)).toEqual(expected);
    expect(best(idx, address)).toBe(bestId);
    expect(idx.blockingMatches(address).map((m) => m.entryId)).toEqual(
      expected.filter((h) => !h.endsWith('!') && !h.endsWith('@3')).map((h) => Number(h.split('@')[0])),
    );
  });

  test('match details', () => {
    expect(idx.lookup('203.0.113.7')[1]).toEqual({
      entryId: 11,
      list: LISTS[1],
      family: 4,
      prefix: 24,
      cidr: '203.0.113.0/24',
      expiresAt: null,
      suppressed: false,
    });
    expect(idx.lookup('2001:db8:1::42')[0]).toMatchObject({ family: 6, prefix: 128, cidr: '2001:db8:1::42/128' });
  });

  test('hot path: row-level API', () => {
    const row = idx.bestBlockRowV4(parseIpv4('203.0.113.7')!);
    expect(idx.rowEntryId(row)).toBe(10);
    expect(idx.rowListId(row)).toBe(1);
    expect(idx.rowList(row).severity).toBe(5);
    expect(idx.bestBlockRowV4(parseIpv4('192.0.2.70')!)).toBe(NO_MATCH);
    expect(idx.bestBlockRowV4(parseIpv4('8.8.8.8')!)).toBe(NO_MATCH);
    expect(idx.bestBlockRowV6(0x20010db8, 0x00010000, 0, 0x42)).not.toBe(NO_MATCH);
    expect(idx.bestBlockRowV6(0, 0, 0xffff, parseIpv4('203.0.113.7')!)).toBe(row);
  });

  test('stats', () => {
    expect(idx.stats).toMatchObject({
      lists: 4,
      entries: 16,
      ipv4Entries: 11,
      ipv6Entries: 5,
      ipv4Networks: 10,
      ipv6Networks: 5,
      expiredAtBuild: 0,
    });
    expect(idx.stats.bytes).toBeGreaterThan(0);
  });

  test('text that is not an address throws', () => {
    expect(() => idx.lookup('not-an-ip')).toThrow(TypeError);
  });
});

describe('expiry', () => {
  const idx = index([
    [1, 1, '203.0.113.0/24', NOW + 1000],
    [2, 2, '203.0.0.0/16'],
    [3, 3, '203.0.113.5', NOW + 500],
    [4, 4, '198.51.100.1', NOW - 1], // expired before the build: never indexed
    [5, 1, '2001:db8::/32', NOW + 1000],
    [6, 2, '2001:db8::1'],
  ]);

  test('entries expired at build time are dropped and counted', () => {
    expect(idx.stats.expiredAtBuild).toBe(1);
    expect(idx.stats.entries).toBe(5);
    expect(hits(idx, '198.51.100.1')).toEqual([]);
    expect(idx.validUntil).toBe(NOW + 500);
  });

  test.each<[string, number | undefined, string[], number | null]>([
    ['203.0.113.9', undefined, ['1@1', '2@2'], 1],
    ['203.0.113.9', NOW + 999, ['1@1', '2@2'], 1],
    ['203.0.113.9', NOW + 1000, ['2@2'], 2], // expiresAt is exclusive
    ['203.0.113.5', undefined, ['3@3', '1@1!', '2@2!'], null],
    ['203.0.113.5', NOW + 499, ['3@3', '1@1!', '2@2!'], null],
    ['203.0.113.5', NOW + 500, ['1@1', '2@2'], 1], // the ALLOW expired
    ['203.0.113.5', NOW + 2000, ['2@2'], 2],
    ['2001:db8::1', NOW + 999, ['6@2', '5@1'], 6],
    ['2001:db8::2', NOW + 999, ['5@1'], 5],
    ['2001:db8::2', NOW + 1000, [], null],
    ['::ffff:203.0.113.9', NOW + 1000, ['2@2'], 2],
  ])('%s at %p -> %j', (address, now, expected, bestId) => {
    expect(hits(idx, address, now)).toEqual(expected);
    expect(best(idx, address, now)).toBe(bestId);
  });

  test('expiresAt is reported', () => {
    expect(idx.lookup('203.0.113.9')[0].expiresAt).toBe(NOW + 1000);
    expect(idx.lookup('203.0.113.9')[1].expiresAt).toBeNull();
  });
});

describe('IPv4-mapped IPv6 entries', () => {
  const idx = index([
    [1, 1, '::ffff:203.0.113.0/120'], // stored as IPv4 203.0.113.0/24
    [2, 2, '203.0.113.0/24'],
    [3, 4, '::/16'], // contains ::ffff:0:0/96, so every IPv4 host
    [4, 2, '::ffff:0:0/96'],
  ]);

  test.each<[string, string[]]>([
    ['203.0.113.1', ['1@1', '2@2', '3@4', '4@2']],
    ['::ffff:203.0.113.1', ['1@1', '2@2', '3@4', '4@2']],
    ['8.8.8.8', ['3@4', '4@2']],
    ['::1', ['3@4']],
    ['1::1', []],
  ])('%s -> %j', (address, expected) => {
    expect(hits(idx, address)).toEqual(expected);
  });

  test('such entries report their IPv6 CIDR', () => {
    expect(idx.lookup('203.0.113.1').map((m) => m.cidr)).toEqual(['::ffff:203.0.113.0/120', '203.0.113.0/24', '::/16', '::ffff:0.0.0.0/96']);
    expect(idx.lookup('203.0.113.1')[0]).toMatchObject({ family: 6, prefix: 120 });
    expect(idx.stats).toMatchObject({ entries: 4, ipv4Entries: 3, ipv6Entries: 1 });
  });
});

describe('builder', () => {
  test('streams plain numbers, clears host bits, grows past its capacity', () => {
    const b = new IocIndexBuilder(LISTS, { now: NOW, capacity: 1 });
    for (let i = 0; i < 100; i++) b.addV4(i, 2, (0xcb007100 + i) >>> 0, 32);
    b.addV4(1000, 4, 0x0a0a0a0a, 8, NOW + 5);
    b.addV6(1001, 1, 0x20010db8000000000000000000000001n, 32);
    expect(b.addV4(1002, 1, 0x01020304, 32, NOW)).toBe(false); // expired
    const idx = b.build();
    expect(idx.bestBlock('203.0.113.99')?.entryId).toBe(99);
    expect(idx.lookup('10.200.0.1').map((m) => m.cidr)).toEqual(['10.0.0.0/8']);
    expect(idx.lookup('2001:db8:ff::')[0].cidr).toBe('2001:db8::/32');
    expect(idx.stats.expiredAtBuild).toBe(1);
  });

  test('refuses unknown lists, duplicate list ids and bad prefixes', () => {
    const b = new IocIndexBuilder(LISTS);
    expect(() => b.addV4(1, 99, 0, 32)).toThrow(/unknown list 99/);
    expect(() => b.addV4(1, 1, 0, 33)).toThrow(RangeError);
    expect(() => b.addV6(1, 1, 0n, 129)).toThrow(RangeError);
    expect(() => new IocIndexBuilder([LISTS[0], LISTS[0]])).toThrow(/duplicate/);
  });

  test('an empty index answers nothing', () => {
    const idx = buildIocIndex([], []);
    expect(idx.lookup('1.2.3.4')).toEqual([]);
    expect(idx.lookup('2001:db8::1')).toEqual([]);
    expect(idx.bestBlockRowV4(0)).toBe(NO_MATCH);
    expect(idx.bestBlockRowV4(0xffffffff)).toBe(NO_MATCH);
    expect(idx.stats.entries).toBe(0);
  });

  test('a /0 and a /32 at the top of the space', () => {
    const idx = index([
      [1, 2, '0.0.0.0/0'],
      [2, 1, '255.255.255.255'],
      [3, 1, '0.0.0.0'],
    ]);
    expect(hits(idx, '255.255.255.255')).toEqual(['2@1', '1@2']);
    expect(hits(idx, '255.255.255.254')).toEqual(['1@2']);
    expect(hits(idx, '0.0.0.0')).toEqual(['3@1', '1@2']);
    expect(hits(idx, '0.0.0.1')).toEqual(['1@2']);
  });
});
