import { parseCidr, Cidr } from '../../../src/common/net/cidr';
import { FeedEntrySet } from '../../../src/modules/ioc/feed/feed-entry-set';
import { cidrRangeKeys } from '../../../src/modules/ioc/ioc-range';

const cidr = (text: string): Cidr => {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(text);
  return r.cidr;
};

async function sorted(items: Array<[string, string | null, number | null]>) {
  const set = new FeedEntrySet();
  for (const [text, comment, expiresAt] of items) set.add(cidr(text), comment, expiresAt);
  await set.sort();
  return { set, entries: [...set.ordered()] };
}

describe('FeedEntrySet', () => {
  it('yields distinct entries in (rangeStart ASC, rangeEnd DESC) order across both families, the first comment and expiry winning', async () => {
    const { set, entries } = await sorted([
      ['203.0.113.7', 'late', null],
      ['2a12:2640::/29', null, null],
      ['1.2.3.0/24', 'net', 5],
      ['1.2.3.0', 'host', null],
      ['::1', null, null],
      ['203.0.113.7', 'repeat', 9],
      ['1.2.3.0/24', 'repeat', null],
      ['255.255.255.255', null, null],
      ['2a12:2640::/32', null, null],
    ]);
    expect(set.offered).toBe(9);
    expect(set.distinct).toBe(7);
    expect(set.duplicates).toBe(2);
    expect(entries.map((e) => e.cidr)).toEqual([
      '::1/128',
      '1.2.3.0/24',
      '1.2.3.0/32',
      '203.0.113.7/32',
      '255.255.255.255/32',
      '2a12:2640::/29',
      '2a12:2640::/32',
    ]);
    expect(entries.find((e) => e.cidr === '203.0.113.7/32')).toMatchObject({ comment: 'late', expiresAt: null });
    expect(entries.find((e) => e.cidr === '1.2.3.0/24')).toMatchObject({ comment: 'net', expiresAt: 5, family: 4, prefix: 24 });
    for (const e of entries) expect({ start: e.start, end: e.end }).toEqual(cidrRangeKeys(cidr(e.cidr)));
    for (let i = 1; i < entries.length; i++) {
      const a = entries[i - 1];
      const b = entries[i];
      expect(a.start < b.start || (a.start === b.start && a.end > b.end)).toBe(true);
    }
  });

  it('sorts many IPv4 entries exactly (radix passes over every digit)', async () => {
    const values: string[] = [];
    let s = 12345;
    for (let i = 0; i < 20_000; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const prefix = 8 + (s % 25);
      values.push(`${(s >>> 24) | 1}.${(s >>> 16) & 255}.${(s >>> 8) & 255}.${s & 255}/${prefix}`);
    }
    const { set, entries } = await sorted(values.map((v) => [v, null, null]));
    const want = [...new Set(values.map((v) => cidr(v).text))]
      .map((t) => ({ t, ...cidrRangeKeys(cidr(t)) }))
      .sort((a, b) => (a.start !== b.start ? (a.start < b.start ? -1 : 1) : a.end > b.end ? -1 : 1));
    expect(set.distinct).toBe(want.length);
    expect(entries.map((e) => e.cidr)).toEqual(want.map((w) => w.t));
    expect(entries.map((e) => [e.start, e.end])).toEqual(want.map((w) => [w.start, w.end]));
  });

  it('its cursor gives the entries of ordered(), both families interleaved, with their keys, comments and expiries', async () => {
    const items: Array<[string, string | null, number | null]> = [];
    let s = 777;
    for (let i = 0; i < 5_000; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const text =
        i % 4 === 0
          ? // Low IPv6 (below the IPv4 keys), IPv4-mapped (among them: kept apart from the IPv4 form) and global ones.
            [
              `::${(s & 0xffff).toString(16)}/128`,
              `::ffff:${s >>> 24}.${(s >>> 16) & 255}.0.0/${112 + (s % 17)}`,
              `2001:db8:${(s & 0xffff).toString(16)}::/48`,
            ][s % 3]
          : `${(s >>> 24) | 1}.${(s >>> 16) & 255}.${(s >>> 8) & 255}.${s & 255}/${8 + (s % 25)}`;
      items.push([text, i % 3 === 0 ? `note ${i}` : null, i % 5 === 0 ? 1_900_000_000_000 + i : null]);
    }
    const { set, entries } = await sorted(items);
    const viaCursor = [];
    const c = set.cursor();
    while (c.next())
      viaCursor.push({ cidr: c.cidr, family: c.family, prefix: c.prefix, start: c.start, end: c.end, comment: c.comment, expiresAt: c.expiresAt });
    expect(viaCursor).toEqual(entries);
    // The first of each entry's repeats gives its comment and expiry; keys are cidrRangeKeys'.
    const first = new Map<string, [string | null, number | null]>();
    for (const [text, comment, expiresAt] of items) if (!first.has(cidr(text).text)) first.set(cidr(text).text, [comment, expiresAt]);
    expect(entries).toHaveLength(first.size);
    for (const e of entries) {
      const parsed = cidr(e.cidr);
      expect([e.cidr, e.family, e.prefix]).toEqual([parsed.text, parsed.family, parsed.prefix]);
      expect({ start: e.start, end: e.end }).toEqual(cidrRangeKeys(parsed));
      expect([e.comment, e.expiresAt]).toEqual(first.get(e.cidr));
    }
    for (let i = 1; i < entries.length; i++) {
      const [a, b] = [entries[i - 1], entries[i]];
      expect(a.start < b.start || (a.start === b.start && a.end > b.end)).toBe(true);
    }
  });
});
