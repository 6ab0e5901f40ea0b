import fc from 'fast-check';
import { ipKey, ipv4Key, ipv6Key, ipv6WordsKey } from '../../../src/modules/ioc/ioc-range';
import { formatIpv4, formatIpv6, formatIpv6Words, ipv6FromWords, parseIp } from '../../../src/common/net/ip';

/** The key as ioc.entity.ts defines it: the address in ::ffff:0:0/96, 32 hex digits. */
const reference = (v4: number) => ((0xffffn << 32n) | BigInt(v4)).toString(16).padStart(32, '0');

describe('IPv4 range keys', () => {
  it('are the 32-digit hex of the IPv4-mapped address, at the edges of each 16-bit half', () => {
    for (const v of [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffff0000, 0xffffffff]) {
      expect(ipv4Key(v)).toBe(reference(v));
      expect(ipv4Key(v)).toHaveLength(32);
    }
  });

  it('agree with the reference on any address, and with the key of the parsed address text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        expect(ipv4Key(v)).toBe(reference(v));
        const parsed = parseIp(formatIpv4(v));
        if (!parsed) throw new Error('unparsed');
        expect(ipKey(parsed)).toBe(reference(v));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('IPv6 range keys and text from words', () => {
  const word = fc.oneof(fc.constantFrom(0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffff0000, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
  const words = fc.tuple(word, word, word, word);

  it('key and format the words as the BigInt value does (the 32 hex digits; RFC 5952 text, IPv4-mapped with its dotted tail)', () => {
    fc.assert(
      fc.property(words, ([a, b, c, d]) => {
        const value = ipv6FromWords(a, b, c, d);
        expect(ipv6Key(a, b, c, d)).toBe(value.toString(16).padStart(32, '0'));
        expect(ipv6WordsKey([a, b, c, d])).toBe(ipv6Key(a, b, c, d));
        expect(formatIpv6Words(a, b, c, d)).toBe(formatIpv6(value));
        const parsed = parseIp(formatIpv6Words(a, b, c, d));
        if (!parsed) throw new Error('unparsed');
        expect(ipKey(parsed)).toBe(ipv6Key(a, b, c, d));
      }),
      { numRuns: 3000 },
    );
  });

  it('give the zero-compressed forms RFC 5952 names', () => {
    expect(formatIpv6Words(0, 0, 0, 0)).toBe('::');
    expect(formatIpv6Words(0, 0, 0, 1)).toBe('::1');
    expect(formatIpv6Words(0x20010db8, 0, 0, 1)).toBe('2001:db8::1');
    expect(formatIpv6Words(0x20010db8, 0, 1, 0)).toBe('2001:db8::1:0:0');
    expect(formatIpv6Words(0x20010db8, 0x10000, 0, 0x10000)).toBe('2001:db8:1::1:0');
    expect(formatIpv6Words(0x20010000, 0x10000, 0, 1)).toBe('2001:0:1::1');
    expect(formatIpv6Words(0, 0, 0xffff, 0xcb007107)).toBe('::ffff:203.0.113.7');
    expect(formatIpv6Words(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  });
});
