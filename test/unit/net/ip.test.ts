import {
  classifyIp,
  describeScope,
  formatIpv6,
  IpScope,
  isInternetRoutable,
  isPrivateIp,
  isPublicIp,
  mappedIpv4,
  parseIp,
  parseIpv4,
  parseIpv6,
  ParsedIp,
  unmapIp,
} from '../../../src/common/net/ip';

function ip(text: string): ParsedIp {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test setup: ${text} does not parse`);
  return parsed;
}

describe('parseIpv4', () => {
  test.each<[string, number | null]>([
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
    ['1.2.3.4', 0x01020304],
    ['192.168.1.10', 0xc0a8010a],
    ['10.0.0.1', 0x0a000001],
    ['01.2.3.4', null], // leading zero
    ['1.2.3.04', null],
    ['1.2.3.00', null],
    ['256.1.1.1', null],
    ['1.2.3', null],
    ['1.2.3.4.5', null],
    ['1..3.4', null],
    ['.1.2.3', null],
    ['1.2.3.', null],
    [' 1.2.3.4', null],
    ['1.2.3.4 ', null],
    ['1.2.3.4/32', null],
    ['1.2.3.a', null],
    ['1234.1.1.1', null],
    ['', null],
  ])('%j -> %p', (text, expected) => {
    expect(parseIpv4(text)).toBe(expected);
  });
});

describe('parseIp (IPv6)', () => {
  test.each<[string, string | null]>([
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs is compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fe80::1', 'fe80::1'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::FFFF:0102:0304', '::ffff:1.2.3.4'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['fe80::1%eth0', null], // zone ids refused
    ['[::1]', null],
    [':::', null],
    ['1:::2', null],
    ['1::2::3', null],
    [':1::2', null],
    ['1::2:', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['1:2:3:4:5:6:7', null],
    ['1:2:3:4:5:6:7:8::', null],
    ['12345::', null],
    ['::ffff:01.2.3.4', null],
    ['::1.2.3', null],
    ['::1.2.3.4:5', null],
    ['g::1', null],
    [' ::1', null],
  ])('%j -> %p', (text, expected) => {
    const parsed = parseIp(text);
    expect(parsed === null ? null : parsed.text).toBe(expected);
    if (parsed) expect(parsed.family).toBe(6);
  });

  test('values round-trip through the canonical text', () => {
    for (const text of ['2001:db8::1', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1:0:0:1::']) {
      const v = parseIpv6(text)!;
      expect(parseIpv6(formatIpv6(v))).toBe(v);
    }
  });

  test('IPv4 text keeps family 4 and its uint32', () => {
    expect(parseIp('203.0.113.7')).toEqual({ family: 4, text: '203.0.113.7', v4: 0xcb007107 });
  });
});

describe('IPv4-mapped IPv6', () => {
  test('mappedIpv4 / unmapIp', () => {
    expect(mappedIpv4(ip('::ffff:10.1.2.3'))).toBe(0x0a010203);
    expect(unmapIp(ip('::ffff:10.1.2.3'))).toEqual({ family: 4, text: '10.1.2.3', v4: 0x0a010203 });
    expect(mappedIpv4(ip('::10.1.2.3'))).toBeNull(); // IPv4-compatible is not mapped
    expect(mappedIpv4(ip('1.2.3.4'))).toBeNull();
    expect(unmapIp(ip('2001:db8::1')).text).toBe('2001:db8::1');
  });
});

describe('classifyIp', () => {
  test.each<[string, IpScope]>([
    // IPv4, with range boundaries
    ['0.0.0.0', 'unspecified'],
    ['0.0.0.1', 'thisNetwork'],
    ['0.255.255.255', 'thisNetwork'],
    ['1.0.0.0', 'public'],
    ['9.255.255.255', 'public'],
    ['10.0.0.0', 'private'],
    ['10.255.255.255', 'private'],
    ['11.0.0.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.64.0.0', 'carrierGradeNat'],
    ['100.127.255.255', 'carrierGradeNat'],
    ['100.128.0.0', 'public'],
    ['126.255.255.255', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.255', 'loopback'],
    ['169.253.255.255', 'public'],
    ['169.254.0.0', 'linkLocal'],
    ['169.254.255.255', 'linkLocal'],
    ['169.255.0.0', 'public'],
    ['172.15.255.255', 'public'],
    ['172.16.0.0', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['192.0.0.0', 'ietfProtocol'],
    ['192.0.0.255', 'ietfProtocol'],
    ['192.0.1.0', 'public'],
    ['192.0.2.0', 'documentation'],
    ['192.0.2.255', 'documentation'],
    ['192.0.3.0', 'public'],
    ['192.167.255.255', 'public'],
    ['192.168.0.0', 'private'],
    ['192.168.255.255', 'private'],
    ['192.169.0.0', 'public'],
    ['198.17.255.255', 'public'],
    ['198.18.0.0', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.20.0.0', 'public'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.255', 'documentation'],
    ['203.0.114.0', 'public'],
    ['223.255.255.255', 'public'],
    ['224.0.0.0', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['240.0.0.0', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', 'public'],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::2', 'reserved'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:255.255.255.255', 'broadcast'],
    ['64:ff9b::8.8.8.8', 'nat64'],
    ['100::', 'discard'],
    ['100::ffff:ffff:ffff:ffff', 'discard'],
    ['100:0:0:1::', 'reserved'],
    ['2001:db8::', 'documentation'],
    ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation'],
    ['2001:db9::', 'public'],
    ['3fff::1', 'documentation'],
    ['3fff:fff::1', 'documentation'],
    ['3fff:1000::', 'public'],
    ['2001:2::1', 'benchmarking'],
    ['2001:2:1::1', 'public'],
    ['2000::', 'public'],
    ['2a00:1450:4001::1', 'public'],
    ['3ffe:ffff::1', 'public'],
    ['4000::', 'reserved'],
    ['1fff:ffff::', 'reserved'],
    ['fbff:ffff::', 'reserved'],
    ['fc00::', 'uniqueLocal'],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'uniqueLocal'],
    ['fe00::', 'reserved'],
    ['fe80::', 'linkLocal'],
    ['febf:ffff::', 'linkLocal'],
    ['fec0::', 'reserved'], // deprecated site-local
    ['ff00::', 'multicast'],
    ['ff02::1', 'multicast'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'multicast'],
  ])('%s is %s', (text, scope) => {
    expect(classifyIp(ip(text))).toBe(scope);
  });
});

describe('routability and descriptions', () => {
  test.each<[string, boolean, boolean]>([
    // address, isInternetRoutable, isPublicIp
    ['8.8.8.8', true, true],
    ['10.1.2.3', false, false],
    ['172.20.0.1', false, false],
    ['192.168.0.1', false, false],
    ['127.0.0.1', false, false],
    ['169.254.1.1', false, false],
    ['224.0.0.251', false, false],
    ['255.255.255.255', false, false],
    ['0.0.0.0', false, false],
    ['0.1.2.3', false, false],
    ['100.64.1.1', false, false],
    ['240.1.1.1', false, false],
    ['203.0.113.5', true, false], // documentation: stand-in for public hosts in examples
    ['198.18.0.1', true, false],
    ['2a00:1450::1', true, true],
    ['fd00::1', false, false],
    ['fe80::1', false, false],
    ['ff02::fb', false, false],
    ['::1', false, false],
    ['::', false, false],
    ['100::1', false, false],
    ['::ffff:10.0.0.1', false, false],
    ['::ffff:8.8.4.4', true, true],
  ])('%s routable=%p public=%p', (text, routable, pub) => {
    expect(isInternetRoutable(ip(text))).toBe(routable);
    expect(isPublicIp(ip(text))).toBe(pub);
  });

  test('isPrivateIp covers RFC 1918 and unique-local only', () => {
    expect(['10.0.0.1', '172.16.0.1', '192.168.1.1', 'fd12::1', '::ffff:192.168.1.1'].map((t) => isPrivateIp(ip(t)))).toEqual([true, true, true, true, true]);
    expect(['127.0.0.1', '100.64.0.1', 'fe80::1', '8.8.8.8'].map((t) => isPrivateIp(ip(t)))).toEqual([false, false, false, false]);
  });

  test('describeScope gives a short reason for messages', () => {
    expect(describeScope('private')).toBe('a private (RFC 1918) address');
    expect(describeScope(classifyIp(ip('fd00::1')))).toMatch(/unique-local/);
    expect(describeScope('loopback')).toBe('a loopback address');
  });
});
