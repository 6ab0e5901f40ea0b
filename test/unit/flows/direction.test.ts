import { parseIpv4, parseIpv6Words } from '../../../src/common/net';
import { createDirectionClassifier, Direction } from '../../../src/modules/log-upload/flows/direction';

const plain = createDirectionClassifier([]);
const device = createDirectionClassifier(['203.0.113.0/24', ' 2001:db8:1::/48 ', '198.51.100.7']);

function v4(text: string): number {
  const a = parseIpv4(text);
  if (a === null) throw new Error(text);
  return a;
}

function v6(...texts: string[]): Uint32Array {
  const out = new Uint32Array(4 * texts.length);
  texts.forEach((t, k) => {
    if (!parseIpv6Words(t, out.subarray(4 * k, 4 * k + 4))) throw new Error(t);
  });
  return out;
}

describe('direction classifier', () => {
  test.each([
    // RFC 1918 edges
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['9.255.255.255', false],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['192.168.0.1', true],
    ['192.169.0.1', false],
    ['8.8.8.8', false],
    // local scope is not "internal": it is simply never matched
    ['127.0.0.1', false],
    ['169.254.1.1', false],
    // IPv6
    ['fc00::1', true],
    ['fdff:ffff::1', true],
    ['fe80::1', false],
    ['2606:4700::1111', false],
    ['::ffff:192.168.1.1', true],
    ['::ffff:8.8.8.8', false],
  ])('without device networks, %s internal = %s', (ip, internal) => {
    expect(plain.isInternal(ip)).toBe(internal);
  });

  test.each([
    ['203.0.113.5', true],
    ['203.0.114.5', false],
    ['198.51.100.7', true],
    ['198.51.100.8', false],
    ['2001:db8:1:ffff::1', true],
    ['2001:db8:2::1', false],
    ['::ffff:203.0.113.200', true],
    ['10.1.1.1', true],
  ])('with device networks, %s internal = %s', (ip, internal) => {
    expect(device.isInternal(ip)).toBe(internal);
  });

  test('integer forms agree with the text forms', () => {
    expect(device.isInternalV4(v4('203.0.113.5'))).toBe(true);
    expect(device.isInternalV4(v4('203.0.112.255'))).toBe(false);
    expect(device.isInternalV6(v6('2001:db8:1::9'), 0)).toBe(true);
    expect(device.isInternalV6(v6('::1', '2001:db8:1::9'), 4)).toBe(true);
  });

  test.each([
    ['10.0.0.1', '8.8.8.8', Direction.OUTBOUND],
    ['8.8.8.8', '10.0.0.1', Direction.INBOUND],
    ['10.0.0.1', '192.168.1.1', Direction.INBOUND], // LAN chatter: the default
    ['8.8.8.8', '1.1.1.1', Direction.INBOUND], // neither side ours: the default
    ['10.0.0.1', '224.0.0.251', Direction.OUTBOUND], // not internal, even if never matched
  ])('IPv4 %s > %s is %s', (src, dst, want) => {
    expect(plain.directionV4(v4(src), v4(dst))).toBe(want);
  });

  test.each([
    ['fd00::1', '2606:4700::1111', Direction.OUTBOUND],
    ['2606:4700::1111', 'fd00::1', Direction.INBOUND],
    ['fd00::1', 'fd00::2', Direction.INBOUND],
  ])('IPv6 %s > %s is %s', (src, dst, want) => {
    expect(plain.directionV6(v6(src, dst), 0, 4)).toBe(want);
  });

  test('device networks make their hosts OUTBOUND', () => {
    expect(device.directionV4(v4('203.0.113.5'), v4('8.8.8.8'))).toBe(Direction.OUTBOUND);
    expect(plain.directionV4(v4('203.0.113.5'), v4('8.8.8.8'))).toBe(Direction.INBOUND);
    expect(device.directionV6(v6('2001:db8:1::5', '2606:4700::1111'), 0, 4)).toBe(Direction.OUTBOUND);
  });

  test.each([
    ['8.8.8.8', true],
    ['203.0.113.5', true], // documentation range: not local scope, stands in for public hosts
    ['10.0.0.1', false],
    ['127.0.0.1', false],
    ['169.254.10.1', false],
    ['224.0.0.1', false],
    ['239.255.255.250', false],
    ['255.255.255.255', false],
    ['0.0.0.0', false],
    ['0.1.2.3', false],
    ['100.64.0.1', false],
    ['100.127.255.255', false],
    ['100.128.0.1', true],
    ['240.0.0.1', false],
    ['::', false],
    ['::1', false],
    ['fe80::1', false],
    ['febf::1', false],
    ['ff02::1', false],
    ['fd00::1', false],
    ['2606:4700::1111', true],
    ['::ffff:8.8.8.8', true],
    ['::ffff:10.0.0.1', false],
  ])('%s can cross the internet = %s', (ip, want) => {
    expect(plain.canCrossInternet(ip)).toBe(want);
  });

  test("the device's own networks are never matched", () => {
    expect(device.canCrossInternet('203.0.113.5')).toBe(false);
    expect(device.canCrossInternetV4(v4('198.51.100.7'))).toBe(false);
    expect(device.canCrossInternetV6(v6('2001:db8:1::1'), 0)).toBe(false);
  });

  test('text forms answer null for non-addresses; bad networks are refused', () => {
    expect(plain.isInternal('not an ip')).toBeNull();
    expect(plain.canCrossInternet('10.0.0')).toBeNull();
    expect(() => createDirectionClassifier(['10.0.0.0/33'])).toThrow(/Invalid internal network/);
    expect(() => createDirectionClassifier(['banana'])).toThrow(/banana/);
    expect(device.internalNetworks.map((c) => c.text)).toEqual(['203.0.113.0/24', '2001:db8:1::/48', '198.51.100.7/32']);
  });
});
