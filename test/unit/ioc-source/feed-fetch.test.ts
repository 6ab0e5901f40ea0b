import { checkSourceUrl, refusedDestination } from '../../../src/modules/ioc-source/feed-fetch';
import { detectFormat } from '../../../src/modules/ioc-source/feed-format';
import { IocSourceFormat } from '../../../src/modules/ioc-source/ioc-source.enums';

describe('source destinations', () => {
  const strict = { allowLinkLocal: false, allowLoopback: false };
  it.each([
    ['169.254.169.254', /link-local or cloud-metadata/],
    ['169.254.1.1', /link-local/],
    ['fe80::1', /link-local/],
    ['fd00:ec2::254', /cloud-metadata/],
    ['100.100.100.200', /cloud-metadata/],
    ['::ffff:169.254.169.254', /link-local/],
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['0.0.0.0', /loopback/],
  ])('refuses %s by default', (address, why) => {
    expect(refusedDestination(address, strict)).toMatch(why);
  });

  it.each(['93.184.216.34', '10.1.2.3', '192.168.1.10', '2606:4700::1111', 'fd12::1'])('lets %s through', (address) => {
    expect(refusedDestination(address, strict)).toBeNull();
  });

  // IPv6 forms that carry an IPv4 address a translator or tunnel delivers to are judged as that address (the
  // alert destinations' guard shares the unwrapping: common/net unwrapIp).
  it.each([
    ['64:ff9b::a9fe:a9fe', /169\.254\.169\.254.*link-local/],
    ['64:ff9b:1::a9fe:a9fe', /169\.254\.169\.254.*link-local/],
    ['64:ff9b:1:a9fe:a9:fe00::', /cannot be told/],
    ['2002:a9fe:a9fe::1', /169\.254\.169\.254.*link-local/],
    ['2002:6464:64c8::1', /100\.100\.100\.200.*cloud-metadata/],
    ['2001:0:4136:e378:8000:63bf:5601:5601', /169\.254\.169\.254.*link-local/],
    ['::a9fe:a9fe', /169\.254\.169\.254.*link-local/],
    ['::ffff:0:a9fe:a9fe', /169\.254\.169\.254.*link-local/],
    ['64:ff9b::7f00:1', /127\.0\.0\.1.*loopback/],
    ['2002:7f00:1::1', /127\.0\.0\.1.*loopback/],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', /127\.0\.0\.1.*loopback/],
  ])('refuses %s, an IPv6 form of a refused IPv4 address', (address, why) => {
    expect(refusedDestination(address, strict)).toMatch(why);
  });

  it.each(['64:ff9b::808:808', '64:ff9b:1::808:808', '2002:0808:0808::1', '2001:0:4136:e378:8000:63bf:f7f7:f7f7', '::8.8.8.8', '2001:db8::1'])(
    'lets %s through, an IPv6 form of a public address',
    (address) => {
      expect(refusedDestination(address, strict)).toBeNull();
    },
  );

  it('the switches apply to the IPv4 address behind a form', () => {
    expect(refusedDestination('2002:7f00:1::1', { allowLinkLocal: false, allowLoopback: true })).toBeNull();
    expect(refusedDestination('2002:a9fe:a9fe::1', { allowLinkLocal: true, allowLoopback: false })).toBeNull();
  });

  it('each range has its own switch', () => {
    expect(refusedDestination('127.0.0.1', { allowLinkLocal: false, allowLoopback: true })).toBeNull();
    expect(refusedDestination('169.254.169.254', { allowLinkLocal: false, allowLoopback: true })).toMatch(/link-local/);
    expect(refusedDestination('169.254.169.254', { allowLinkLocal: true, allowLoopback: false })).toBeNull();
  });

  it('checks URLs before any request', () => {
    expect(checkSourceUrl('https://feeds.example/drop.txt')).toBeNull();
    expect(checkSourceUrl('ftp://feeds.example/drop.txt')).toMatch(/Only http and https/);
    expect(checkSourceUrl('https://user:pw@feeds.example/x')).toMatch(/Put credentials in a header/);
    expect(checkSourceUrl('not a url')).toBe('Not a URL.');
  });
});

describe('source format detection', () => {
  const d = (text: string, asked = IocSourceFormat.AUTO, type: string | null = null) => detectFormat(Buffer.from(text), asked, type);
  it('reads text, JSON and refuses HTML, markup and binary', () => {
    expect(d('# feed\n1.2.3.4\n')).toEqual({ ok: true, format: IocSourceFormat.TEXT });
    expect(d('\ufeff  {"type": "bundle"}')).toEqual({ ok: true, format: 'JSON' });
    expect(d('<!DOCTYPE html><html>', IocSourceFormat.TEXT)).toMatchObject({ ok: false, reason: expect.stringMatching(/HTML page/) });
    expect(d('<p>hi</p>', IocSourceFormat.TEXT, 'text/html; charset=utf-8')).toMatchObject({ ok: false });
    expect(d('<?xml version="1.0"?><a/>')).toMatchObject({ ok: false, reason: expect.stringMatching(/XML/) });
    expect(d('1.2.3.4\n\0\0')).toMatchObject({ ok: false, reason: expect.stringMatching(/binary/) });
    expect(d('{"x":1}', IocSourceFormat.STIX2)).toEqual({ ok: true, format: IocSourceFormat.STIX2 });
  });
});
