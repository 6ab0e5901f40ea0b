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
