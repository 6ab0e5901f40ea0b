import { createDirectionClassifier, Direction } from '../../../src/modules/log-upload/flows/direction';
import { hasHostOfOurs, internalSide, Side, withMatchedSides } from '../../../src/modules/log-upload/flows/sides';
import { at, foldText } from './fold-helpers';

const { INITIATOR, RESPONDER } = Side;
const end = (inside: boolean, matched: boolean) => ({ inside, matched });

describe('which end of a connection is ours', () => {
  // [initiator inside, initiator matched, responder inside, responder matched, ours]
  test.each([
    // One end inside: that end, whatever matched.
    [true, false, false, false, INITIATOR],
    [true, false, false, true, INITIATOR],
    [false, false, true, false, RESPONDER],
    [false, true, true, false, RESPONDER],
    // Neither inside, one matched: the end that did not match.
    [false, false, false, true, INITIATOR],
    [false, true, false, false, RESPONDER],
    // Neither inside and both or neither matched, or both inside: the responder (the initiator decides).
    [false, true, false, true, RESPONDER],
    [false, false, false, false, RESPONDER],
    [true, false, true, false, RESPONDER],
  ])('initiator inside %s matched %s, responder inside %s matched %s: %s', (ii, im, ri, rm, ours) => {
    expect(internalSide(end(ii, im), end(ri, rm))).toBe(ours);
  });

  test.each([
    // [line, internal networks, own address, initiator matched, responder matched, direction, internal, external]
    ['93.184.216.34.50000 > 198.51.100.7.443', [], '93.184.216.34', false, true, Direction.OUTBOUND, '93.184.216.34:50000', '198.51.100.7:443'],
    ['198.51.100.7.443 > 93.184.216.34.50000', [], '93.184.216.34', true, false, Direction.INBOUND, '93.184.216.34:50000', '198.51.100.7:443'],
    ['203.0.113.9.40000 > 198.51.100.7.443', [], null, false, true, Direction.OUTBOUND, '203.0.113.9:40000', '198.51.100.7:443'],
    ['198.51.100.7.6000 > 192.0.2.50.22', [], null, true, false, Direction.INBOUND, '192.0.2.50:22', '198.51.100.7:6000'],
    ['198.51.100.7.6000 > 198.51.100.8.22', [], null, true, true, Direction.INBOUND, '198.51.100.8:22', '198.51.100.7:6000'],
    ['100.64.1.5.40000 > 198.51.100.7.443', ['100.64.0.0/16'], null, false, true, Direction.OUTBOUND, '100.64.1.5:40000', '198.51.100.7:443'],
    ['10.0.0.1.40000 > 198.51.100.7.443', [], null, false, true, Direction.OUTBOUND, '10.0.0.1:40000', '198.51.100.7:443'],
  ] as const)('%s (networks %j, own %s; matched %s/%s): %s, ours %s', (line, nets, own, im, rm, direction, internal, external) => {
    const [folded] = foldWith(`1.000000 IP ${line}: Flags [S], seq 1, win 1, length 0\n`, [...nets], own);
    const c = withMatchedSides(folded, im, rm);
    expect([c.direction, at(c.internal), at(c.external)]).toEqual([direction, internal, external]);
  });

  test("the fold, with nothing matched yet, takes the device's own static address as inside", () => {
    const [c] = foldWith('1.000000 IP 93.184.216.34.50000 > 198.51.100.7.443: Flags [S], seq 1, win 1, length 0\n', [], '93.184.216.34');
    expect([c.direction, at(c.internal)]).toEqual([Direction.OUTBOUND, '93.184.216.34:50000']);
    expect(c.initiator.canCrossInternet).toBe(false);
    const [without] = foldWith('1.000000 IP 93.184.216.34.50000 > 198.51.100.7.443: Flags [S], seq 1, win 1, length 0\n', [], null);
    expect([without.direction, at(without.internal)]).toEqual([Direction.INBOUND, '198.51.100.7:443']);
  });

  test.each([
    ['IP6 2001:db8:bad::5 > ff02::1:ff00:11: ICMP6, neighbor solicitation, who has 2001:db8:bad::11, length 32', false],
    ['IP 198.51.100.7.68 > 255.255.255.255.67: UDP, length 300', false],
    ['IP 198.51.100.7.5353 > 224.0.0.251.5353: UDP, length 40', false],
    ['IP6 2001:db8:bad::5.1000 > fe80::1.22: UDP, length 4', false],
    ['IP 169.254.3.3.1000 > 198.51.100.7.443: UDP, length 4', false],
    ['IP 198.51.100.7.6000 > 192.0.2.50.22: UDP, length 4', true],
    ['IP 100.64.1.5.40000 > 198.51.100.7.443: UDP, length 4', true],
  ])('a local-scope end is no host of ours: %s -> %s', (line, host) => {
    const [folded] = foldWith(`1.000000 ${line}\n`, [], null);
    const matched = (e: { canCrossInternet: boolean }) => e.canCrossInternet;
    expect(hasHostOfOurs(withMatchedSides(folded, matched(folded.initiator), matched(folded.responder)))).toBe(host);
  });
});

function foldWith(text: string, internalNetworks: string[], own: string | null) {
  return foldText(text, internalNetworks, [], createDirectionClassifier(internalNetworks, own));
}
