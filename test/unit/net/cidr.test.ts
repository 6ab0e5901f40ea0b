import fc from 'fast-check';
import {
  IPV6_MASK_WORDS,
  ipv6Mask,
  Cidr,
  cidrBounds,
  cidrContains,
  cidrContainsCidr,
  CidrErrorReason,
  parseCidr,
  parseCidrList,
  parseCidrOrRange,
  parseRange,
  rangeToCidrs4,
} from '../../../src/common/net/cidr';
import { ipv6FromWords, parseIp, ParsedIp } from '../../../src/common/net/ip';

function ip(text: string): ParsedIp {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test setup: ${text}`);
  return parsed;
}

function cidr(text: string): Cidr {
  const r = parseCidr(text, { minPrefixV4: 0, minPrefixV6: 0 });
  if (!r.ok) throw new Error(`test setup: ${text}: ${r.message}`);
  return r.cidr;
}

describe('parseCidr', () => {
  test.each<[string, string, boolean]>([
    ['1.2.3.4', '1.2.3.4/32', false],
    ['1.2.3.4/32', '1.2.3.4/32', false],
    ['10.0.0.0/8', '10.0.0.0/8', false],
    ['10.1.2.3/8', '10.0.0.0/8', true],
    ['192.168.1.77/24', '192.168.1.0/24', true],
    ['146.190.240.163/31', '146.190.240.162/31', true],
    ['255.255.255.255/32', '255.255.255.255/32', false],
    ['2001:DB8::/32', '2001:db8::/32', false],
    ['2001:db8::1/32', '2001:db8::/32', true],
    ['2a12:2640::/29', '2a12:2640::/29', false],
    ['::1', '::1/128', false],
    ['2001:db8::1', '2001:db8::1/128', false],
    ['::ffff:1.2.3.4/120', '::ffff:1.2.3.0/120', true],
    ['ffff::/16', 'ffff::/16', false],
  ])('%s -> %s (normalized=%p)', (text, canonical, normalized) => {
    const r = parseCidr(text);
    expect(r).toMatchObject({ ok: true, normalized });
    if (r.ok) expect(r.cidr.text).toBe(canonical);
  });

  test.each<[string, CidrErrorReason]>([
    ['', 'invalidAddress'],
    ['/24', 'invalidAddress'],
    ['1.2.3', 'invalidAddress'],
    ['01.2.3.4/32', 'invalidAddress'],
    ['C91.196.152.28', 'invalidAddress'],
    ['/w00tw00t.at.ISC.SANS.DFind:)', 'invalidAddress'],
    [' 1.2.3.4', 'invalidAddress'],
    ['fe80::1%eth0/64', 'invalidAddress'],
    ['1.2.3.4/', 'invalidPrefix'],
    ['1.2.3.4/33', 'invalidPrefix'],
    ['1.2.3.4/08', 'invalidPrefix'],
    ['1.2.3.4/-1', 'invalidPrefix'],
    ['1.2.3.4/24 ', 'invalidPrefix'],
    ['1.2.3.4/24/1', 'invalidPrefix'],
    ['::/129', 'invalidPrefix'],
    ['224.0.0.0/3', 'tooBroad'],
    ['0.0.0.0/0', 'tooBroad'],
    ['10.0.0.0/7', 'tooBroad'],
    ['2000::/3', 'tooBroad'],
    ['2001::/15', 'tooBroad'],
    // IPv4-mapped networks are held to the IPv4 limit: they are the IPv4 hosts themselves.
    ['::ffff:0:0/96', 'tooBroad'],
    ['::ffff:10.0.0.0/100', 'tooBroad'],
    ['::ffff:0:0/95', 'tooBroad'],
    ['::/80', 'tooBroad'],
    ['::/16', 'tooBroad'],
  ])('%j is refused: %s', (text, reason) => {
    expect(parseCidr(text)).toMatchObject({ ok: false, reason });
  });

  test('the "too broad" limit is a parameter', () => {
    expect(parseCidr('10.0.0.0/8', { minPrefixV4: 16 })).toMatchObject({ ok: false, reason: 'tooBroad' });
    expect(parseCidr('224.0.0.0/3', { minPrefixV4: 0 })).toMatchObject({ ok: true, cidr: { text: '224.0.0.0/3' } });
    expect(parseCidr('fc00::/7', { minPrefixV6: 7 })).toMatchObject({ ok: true });
    expect(parseCidr('224.0.0.0/3')).toMatchObject({ message: expect.stringContaining('/8 or narrower') });
  });

  test('an IPv6 network is refused for the IPv4 it covers as mapped addresses, and only for that', () => {
    expect(parseCidr('::ffff:0:0/96')).toMatchObject({ message: expect.stringContaining('covers every IPv4 address') });
    expect(parseCidr('::ffff:10.0.0.0/100')).toMatchObject({ message: expect.stringContaining('covers an IPv4 /4') });
    expect(parseCidr('::ffff:10.0.0.0/104')).toMatchObject({ ok: true, cidr: { text: '::ffff:10.0.0.0/104' } });
    expect(parseCidr('::ffff:10.0.0.0/100', { minPrefixV4: 4 })).toMatchObject({ ok: true });
    expect(parseCidr('::ffff:0:0/96', { minPrefixV4: 0 })).toMatchObject({ ok: true });
    // Next to the mapped block, and IPv6 proper: the IPv6 limit only.
    for (const text of ['::fffe:0:0/96', '::1:0:0:0/80', '::1/128', '2001:db8::/32', '64:ff9b::/96']) expect(parseCidr(text)).toMatchObject({ ok: true });
    expect(parseRange('::ffff:0.0.0.0-::ffff:255.255.255.255')).toMatchObject({
      ok: false,
      reason: 'tooBroad',
      message: expect.stringContaining('it needs ::ffff:0.0.0.0/96'),
    });
    expect(parseRange('::ffff:1.2.3.0-::ffff:1.2.3.255')).toMatchObject({ ok: true, cidrs: [{ text: '::ffff:1.2.3.0/120' }] });
  });
});

describe('parseRange', () => {
  test.each<[string, string[]]>([
    ['1.2.3.4-1.2.3.4', ['1.2.3.4/32']],
    ['10.0.0.0-10.0.0.255', ['10.0.0.0/24']],
    ['10.0.0.1-10.0.0.6', ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']],
    ['192.168.0.0-192.168.3.255', ['192.168.0.0/22']],
    ['1.0.0.0-1.255.255.255', ['1.0.0.0/8']],
    ['0.0.0.0-0.255.255.255', ['0.0.0.0/8']],
    ['255.0.0.0-255.255.255.255', ['255.0.0.0/8']],
    ['255.255.255.254-255.255.255.255', ['255.255.255.254/31']],
    ['1.255.255.255-2.0.0.0', ['1.255.255.255/32', '2.0.0.0/32']],
    ['2001:db8::-2001:db8::ff', ['2001:db8::/120']],
    ['2001:db8::1-2001:db8::2', ['2001:db8::1/128', '2001:db8::2/128']],
    ['ffff::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', ['ffff::/16']],
  ])('%s -> %j', (text, expected) => {
    const r = parseRange(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.cidrs.map((c) => c.text)).toEqual(expected);
  });

  test.each<[string, CidrErrorReason]>([
    ['0.0.0.0-255.255.255.255', 'tooBroad'],
    ['2.0.0.0-3.255.255.255', 'tooBroad'], // is exactly 2.0.0.0/7
    ['0.0.0.0-1.255.255.255', 'tooBroad'],
    ['::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'tooBroad'],
    ['10.0.0.2-10.0.0.1', 'rangeReversed'],
    ['2001:db8::2-2001:db8::1', 'rangeReversed'],
    ['1.2.3.4-2001:db8::1', 'mixedFamilies'],
    ['1.2.3.4-', 'invalidRange'],
    ['-1.2.3.4', 'invalidRange'],
    ['1.2.3.4-5.6.7.8-9.9.9.9', 'invalidRange'],
    ['1.2.3.4 - 1.2.3.5', 'invalidRange'],
    ['a-b', 'invalidRange'],
  ])('%j is refused: %s', (text, reason) => {
    expect(parseRange(text)).toMatchObject({ ok: false, reason });
  });

  test('a range is refused only when a CIDR it needs is too broad', () => {
    const r = parseRange('1.0.0.0-2.255.255.255');
    expect(r.ok && r.cidrs.map((c) => c.text)).toEqual(['1.0.0.0/8', '2.0.0.0/8']);
    const wide = parseRange('2.0.0.0-3.255.255.255', { minPrefixV4: 7 });
    expect(wide.ok && wide.cidrs.map((c) => c.text)).toEqual(['2.0.0.0/7']);
    const whole = parseRange('0.0.0.0-255.255.255.255', { minPrefixV4: 0 });
    expect(whole.ok && whole.cidrs.map((c) => c.text)).toEqual(['0.0.0.0/0']);
  });

  test('property: IPv4 range -> minimal CIDRs covering exactly [start, end]', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const cidrs = rangeToCidrs4(start, end);
        let cur = start;
        for (const c of cidrs) {
          const { first, last } = cidrBounds(c);
          expect(first).toBe(cur);
          cur = last + 1;
        }
        expect(cur).toBe(end + 1);
        // Minimality: no two neighbours could merge into one aligned block.
        for (let i = 1; i < cidrs.length; i++) {
          const x = cidrs[i - 1];
          const y = cidrs[i];
          const mergeable = x.prefix === y.prefix && x.prefix > 0 && x.network % 2 ** (33 - x.prefix) === 0;
          expect(mergeable).toBe(false);
        }
        expect(cidrs.length).toBeLessThanOrEqual(62);
      }),
    );
  });
});

describe('parseCidrOrRange', () => {
  test.each<[string, string[]]>([
    ['1.2.3.4', ['1.2.3.4/32']],
    ['1.2.3.4/24', ['1.2.3.0/24']],
    ['1.2.3.0-1.2.3.127', ['1.2.3.0/25']],
  ])('%s -> %j', (text, expected) => {
    const r = parseCidrOrRange(text);
    expect(r.ok && r.cidrs.map((c) => c.text)).toEqual(expected);
  });
});

describe('cidrContains', () => {
  test.each<[string, string, boolean]>([
    ['10.0.0.0/8', '10.0.0.0', true],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '9.255.255.255', false],
    ['1.2.3.4/32', '1.2.3.4', true],
    ['1.2.3.4/32', '1.2.3.5', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['10.0.0.0/8', '::ffff:10.1.1.1', true], // mapped IPv6 is the IPv4 host
    ['10.0.0.0/8', '::10.1.1.1', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['2001:db8::/32', '10.0.0.1', false],
    ['::ffff:10.0.0.0/104', '10.9.9.9', true],
    ['::/0', '2001:db8::1', true],
  ])('%s contains %s: %p', (c, a, expected) => {
    expect(cidrContains(cidr(c), ip(a))).toBe(expected);
  });

  test('cidrContainsCidr', () => {
    expect(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('10.1.0.0/16'))).toBe(true);
    expect(cidrContainsCidr(cidr('10.1.0.0/16'), cidr('10.0.0.0/8'))).toBe(false);
    expect(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('11.0.0.0/16'))).toBe(false);
    expect(cidrContainsCidr(cidr('2001:db8::/32'), cidr('2001:db8:1::/48'))).toBe(true);
    expect(cidrContainsCidr(cidr('2001:db8::/32'), cidr('10.0.0.0/8'))).toBe(false);
  });
});

describe('parseCidrList', () => {
  test('valid list: normalised, deduplicated, normalised indexes reported', () => {
    const r = parseCidrList(['10.0.0.0/8', ' 192.168.1.5/24 ', '10.0.0.0/8', 'fd00::/48']);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.cidrs.map((c) => c.text)).toEqual(['10.0.0.0/8', '192.168.1.0/24', 'fd00::/48']);
      expect(r.normalizedIndexes).toEqual([1]);
    }
  });

  test('reports every bad item with its index', () => {
    expect(parseCidrList(['10.0.0.0/8', 'nope', '1.2.3.4/40', '0.0.0.0/0'])).toEqual({
      ok: false,
      errors: [
        expect.objectContaining({ index: 1, text: 'nope', reason: 'invalidAddress' }),
        expect.objectContaining({ index: 2, text: '1.2.3.4/40', reason: 'invalidPrefix' }),
        expect.objectContaining({ index: 3, text: '0.0.0.0/0', reason: 'tooBroad' }),
      ],
    });
  });

  test('limits pass through (fc00::/7 as an internal network)', () => {
    expect(parseCidrList(['fc00::/7'], { minPrefixV6: 7 }).ok).toBe(true);
    expect(parseCidrList([]).ok).toBe(true);
  });
});

describe('IPV6_MASK_WORDS', () => {
  test('holds ipv6Mask of every prefix as four words', () => {
    for (let prefix = 0; prefix <= 128; prefix++) {
      const w = IPV6_MASK_WORDS.subarray(prefix * 4, prefix * 4 + 4);
      expect([prefix, ipv6FromWords(w[0], w[1], w[2], w[3])]).toEqual([prefix, ipv6Mask(prefix)]);
    }
  });
});
