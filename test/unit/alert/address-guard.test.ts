import { AddressGuard } from '../../../src/modules/alert/destinations/address-guard';

/**
 * IPv6 forms that carry an IPv4 address a translator or tunnel delivers to are judged as that IPv4 address
 * (NAT64, 6to4, Teredo, IPv4-compatible, IPv4-mapped and -translated): 169.254.169.254 behind any of them is
 * still the metadata service, and 8.8.8.8 behind them is still a public host.
 */
describe('address guard: IPv4 addresses inside IPv6 forms', () => {
  const guard = new AddressGuard([]);

  it.each([
    // NAT64, the well-known prefix 64:ff9b::/96 (RFC 6052)
    ['64:ff9b::a9fe:a9fe', /169\.254\.169\.254.*linkLocal/],
    ['64:ff9b::169.254.169.254', /linkLocal/],
    ['64:ff9b::7f00:1', /127\.0\.0\.1.*loopback/],
    ['64:ff9b::6464:64c8', /100\.100\.100\.200.*metadata/],
    // NAT64, the local-use prefix 64:ff9b:1::/48 (RFC 8215): its /96 layout, and any other layout (the IPv4 address
    // sits where the operator's prefix length puts it, which an address alone does not tell)
    ['64:ff9b:1::a9fe:a9fe', /169\.254\.169\.254.*linkLocal/],
    ['64:ff9b:1:a9fe:a9:fe00::', /cannot be told/],
    ['64:ff9b:1:1::808:808', /cannot be told/],
    // 6to4 2002:AABB:CCDD::/48 (RFC 3056)
    ['2002:a9fe:a9fe::1', /169\.254\.169\.254.*linkLocal/],
    ['2002:7f00:1::1', /127\.0\.0\.1.*loopback/],
    ['2002:6464:64c8:1::1', /metadata/],
    // Teredo 2001:0::/32 (RFC 4380): the client's address is the last 32 bits inverted
    ['2001:0:4136:e378:8000:63bf:5601:5601', /169\.254\.169\.254.*linkLocal/],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', /127\.0\.0\.1.*loopback/],
    // IPv4-compatible ::a.b.c.d (deprecated), IPv4-mapped ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d
    ['::a9fe:a9fe', /169\.254\.169\.254.*linkLocal/],
    ['::127.0.0.1', /loopback/],
    ['::ffff:169.254.169.254', /linkLocal/],
    ['::ffff:0:a9fe:a9fe', /169\.254\.169\.254.*linkLocal/],
  ])('refuses %s', (address, why) => {
    expect(guard.problem(address)).toMatch(why);
  });

  it.each([
    '64:ff9b::808:808',
    '64:ff9b::8.8.8.8',
    '64:ff9b:1::808:808',
    '2002:0808:0808::1',
    '2002:808:808:1:2:3:4:5',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
    '::8.8.8.8',
    '::ffff:8.8.8.8',
    // private IPv4 is allowed to alert destinations (relays live there), behind a 6to4 or NAT64 form too
    '2002:c0a8:101::1',
    '64:ff9b::a00:5',
    // plain global IPv6 outside those prefixes stays itself
    '2606:4700::1111',
    '2001:4860:4860::8888',
  ])('allows %s', (address) => {
    expect(guard.problem(address)).toBeNull();
  });

  it('the loopback and the unspecified address are themselves, not IPv4-compatible forms', () => {
    expect(guard.problem('::1')).toMatch(/loopback/);
    expect(guard.problem('::')).toMatch(/unspecified/);
  });

  it('ALERT_DESTINATION_ALLOW allows the IPv4 address behind a form, or the IPv6 form itself', () => {
    expect(new AddressGuard(['169.254.169.254/32']).problem('2002:a9fe:a9fe::1')).toBeNull();
    expect(new AddressGuard(['169.254.169.254/32']).problem('64:ff9b::a9fe:a9fe')).toBeNull();
    expect(new AddressGuard(['64:ff9b::/96']).problem('64:ff9b::a9fe:a9fe')).toBeNull();
    expect(new AddressGuard(['64:ff9b:1::/48']).problem('64:ff9b:1:a9fe:a9:fe00::')).toBeNull();
    expect(new AddressGuard(['10.0.0.0/8']).problem('2002:a9fe:a9fe::1')).toMatch(/linkLocal/);
  });

  it('resolving a name to such a form is refused like the IPv4 address', async () => {
    const named = new AddressGuard([], async () => ['2002:a9fe:a9fe::1']);
    await expect(named.address('sneaky.example')).rejects.toThrow(/refused: sneaky\.example resolves to 2002:a9fe:a9fe::1.*169\.254\.169\.254/);
  });
});
