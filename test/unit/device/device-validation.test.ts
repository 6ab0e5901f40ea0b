import { normalizeFqdn } from '../../../src/common/net/fqdn';
import { canonicalIp, normalizeInternalNetworks, publicAddressProblem } from '../../../src/common/net/device-address';

describe('FQDN validation', () => {
  it.each([
    ['gw.example.com', 'gw.example.com'],
    ['GW.Example.COM.', 'gw.example.com'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ])('accepts %s as %s', (input, name) => {
    expect(normalizeFqdn(input)).toEqual({ ok: true, name });
  });

  it.each([
    ['', 'is empty'],
    ['localhost', 'must have at least two labels, e.g. "gw.example.com"'],
    ['a..b.com', 'has an empty label'],
    ['-a.com', 'has an invalid label "-a" (letters, digits and inner hyphens only)'],
    ['a_b.com', 'has an invalid label "a_b" (letters, digits and inner hyphens only)'],
    ['10.0.0.1', 'ends in a numeric label (an IP address is not a DNS name)'],
    [`${'a'.repeat(64)}.com`, 'has a label longer than 63 characters ("aaaaaaaaaaaaaaaaaaaa…")'],
    [`${'a.'.repeat(127)}com`, 'is longer than 253 characters'],
  ])('refuses %j: %s', (input, reason) => {
    expect(normalizeFqdn(input)).toEqual({ ok: false, reason });
  });
});

describe('device addresses', () => {
  it('canonicalises IPv4, IPv6 and IPv4-mapped IPv6', () => {
    expect(canonicalIp(' 8.8.8.8 ')).toBe('8.8.8.8');
    expect(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonicalIp('::ffff:8.8.8.8')).toBe('8.8.8.8');
    expect(canonicalIp('08.8.8.8')).toBeNull();
    expect(canonicalIp('fe80::1%eth0')).toBeNull();
  });

  it('says why an address is not public', () => {
    expect(publicAddressProblem('8.8.8.8')).toBeNull();
    expect(publicAddressProblem('2606:4700::1111')).toBeNull();
    expect(publicAddressProblem('172.16.5.4')).toBe('a private (RFC 1918) address');
    expect(publicAddressProblem('172.32.0.1')).toBeNull();
    expect(publicAddressProblem('198.18.0.1')).toBe('a benchmarking address');
    expect(publicAddressProblem('255.255.255.255')).toBe('the limited broadcast address');
    expect(publicAddressProblem('0.0.0.0')).toBe('the unspecified address');
    expect(publicAddressProblem('ff02::1')).toBe('a multicast address');
    expect(publicAddressProblem('::ffff:192.168.1.1')).toBe('a private (RFC 1918) address');
  });

  it('normalises internal networks and reports each bad one by index', () => {
    expect(normalizeInternalNetworks(['10.1.2.3/8', '2001:DB8::1/32', '10.0.0.0/8', '5.6.7.8'])).toEqual({
      cidrs: ['10.0.0.0/8', '2001:db8::/32', '5.6.7.8/32'],
      errors: [],
    });
    // IOC entries hold IPv6 to the IPv4 limit for the IPv4-mapped part it covers; internal networks do not.
    expect(normalizeInternalNetworks(['::/64', '::ffff:0:0/96'])).toEqual({ cidrs: ['::/64', '::ffff:0.0.0.0/96'], errors: [] });
    const bad = normalizeInternalNetworks(['ok', '1.2.3.0/24', '1.2.3.4/40']);
    expect(bad.cidrs).toEqual([]);
    expect(bad.errors.map((e) => [e.index, e.code])).toEqual([
      [0, 'INVALID'],
      [2, 'INVALID'],
    ]);
  });
});
