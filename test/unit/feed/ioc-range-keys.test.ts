import fc from 'fast-check';
import { ipKey, ipv4Key } from '../../../src/modules/ioc/ioc-range';
import { formatIpv4, parseIp } from '../../../src/common/net/ip';

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
