import { Direction } from '../../../src/modules/log-upload/flows/direction';
import { ConnectionOpening } from '../../../src/modules/log-upload/flows/fold';
import { Protocol } from '../../../src/modules/log-upload/parsing/packet-batch';
import { at, foldText, summarize } from './fold-helpers';

const lines = (...ls: string[]) => ls.join('\n') + '\n';

describe('connection fold', () => {
  test('both directions of one address/port pair are one connection, counted each way', () => {
    const [c, ...rest] = foldText(
      lines(
        '100.000000 IP 10.0.0.1.50000 > 8.8.8.8.443: Flags [P.], seq 1:101, ack 1, win 502, length 100',
        '100.000100 IP 8.8.8.8.443 > 10.0.0.1.50000: Flags [P.], seq 1:1001, ack 101, win 502, length 1000',
        '100.000200 IP 8.8.8.8.443 > 10.0.0.1.50000: Flags [P.], seq 1001:1501, ack 101, win 502, length 500',
        '100.000300 IP 10.0.0.1.50000 > 8.8.8.8.443: Flags [.], ack 1501, win 502, length 0',
      ),
    );
    expect(rest).toEqual([]);
    expect(summarize(c)).toEqual({
      family: 4,
      protocol: Protocol.TCP,
      direction: Direction.OUTBOUND,
      openedBy: ConnectionOpening.FIRST_PACKET,
      initiator: { ip: '10.0.0.1', port: 50000, internal: true, canCrossInternet: false },
      responder: { ip: '8.8.8.8', port: 443, internal: false, canCrossInternet: true },
      internal: '10.0.0.1:50000',
      external: '8.8.8.8:443',
      packetsForward: 2,
      bytesForward: 100,
      packetsReverse: 2,
      bytesReverse: 1500,
      firstMicros: 100_000_000,
      lastMicros: 100_000_300,
    });
    expect(c.initiator.v4).toBe(0x0a000001);
    expect(c.initiator.v6).toBeNull();
  });

  test('a SYN decides the initiator: an inbound connection to an internal server', () => {
    const [c] = foldText(
      lines(
        '1.000000 IP 45.33.32.156.61000 > 192.168.1.10.22: Flags [S], seq 1, win 64240, length 0',
        '1.000100 IP 192.168.1.10.22 > 45.33.32.156.61000: Flags [S.], seq 9, ack 2, win 65160, length 0',
      ),
    );
    expect(c.openedBy).toBe(ConnectionOpening.SYN);
    expect(c.direction).toBe(Direction.INBOUND);
    expect(at(c.initiator)).toBe('45.33.32.156:61000');
    expect(at(c.internal)).toBe('192.168.1.10:22');
    expect(at(c.external)).toBe('45.33.32.156:61000');
    expect([c.packetsForward, c.packetsReverse]).toEqual([1, 1]);
  });

  test('a SYN seen after the first packet re-orients the connection, counters included', () => {
    const [c] = foldText(
      lines(
        '1.000000 IP 8.8.8.8.443 > 10.0.0.1.50000: Flags [.], ack 1, win 502, length 0',
        '1.000001 IP 8.8.8.8.443 > 10.0.0.1.50000: Flags [P.], seq 1:11, ack 1, win 502, length 10',
        '1.000002 IP 10.0.0.1.50000 > 8.8.8.8.443: Flags [S], seq 1, win 64240, length 0',
      ),
    );
    expect(c.openedBy).toBe(ConnectionOpening.SYN);
    expect(c.direction).toBe(Direction.OUTBOUND);
    expect(at(c.initiator)).toBe('10.0.0.1:50000');
    expect([c.packetsForward, c.bytesForward, c.packetsReverse, c.bytesReverse]).toEqual([1, 0, 2, 10]);
  });

  test('only a SYN-ACK seen: its destination initiated; a later SYN still wins', () => {
    const [c] = foldText(lines('1.000000 IP 8.8.8.8.443 > 10.0.0.1.50000: Flags [S.], seq 1, ack 1, win 502, length 0'));
    expect(c.openedBy).toBe(ConnectionOpening.SYN_ACK);
    expect(at(c.initiator)).toBe('10.0.0.1:50000');
    expect(c.direction).toBe(Direction.OUTBOUND);

    const [d] = foldText(
      lines(
        '1.000000 IP 10.0.0.1.50000 > 8.8.8.8.443: Flags [S.], seq 1, ack 1, win 502, length 0',
        '1.000001 IP 10.0.0.1.50000 > 8.8.8.8.443: Flags [S], seq 1, win 502, length 0',
      ),
    );
    expect(d.openedBy).toBe(ConnectionOpening.SYN);
    expect(at(d.initiator)).toBe('10.0.0.1:50000');
  });

  test('ICMP has no ports: request and reply of one address pair fold together', () => {
    const cs = foldText(
      lines(
        '1.000000 IP 192.168.1.5 > 1.1.1.1: ICMP echo request, id 7, seq 1, length 64',
        '1.000500 IP 1.1.1.1 > 192.168.1.5: ICMP echo reply, id 7, seq 1, length 64',
        '2.000000 IP 192.168.1.5 > 1.1.1.1: ICMP echo request, id 7, seq 2, length 64',
      ),
    );
    expect(cs.map(summarize)).toMatchObject([
      {
        protocol: Protocol.ICMP,
        direction: Direction.OUTBOUND,
        initiator: { ip: '192.168.1.5', port: null },
        responder: { ip: '1.1.1.1', port: null },
        packetsForward: 2,
        bytesForward: 128,
        packetsReverse: 1,
        bytesReverse: 64,
        firstMicros: 1_000_000,
        lastMicros: 2_000_000,
      },
    ]);
  });

  test('protocol and ports are part of the key', () => {
    const cs = foldText(
      lines(
        '1.000000 IP 10.0.0.1.5000 > 8.8.8.8.53: UDP, length 40',
        '1.000001 IP 10.0.0.1.5000 > 8.8.8.8.53: Flags [S], seq 1, win 1, length 0',
        '1.000002 IP 10.0.0.1.5001 > 8.8.8.8.53: UDP, length 40',
        '1.000003 IP 8.8.8.8.53 > 10.0.0.1.5000: UDP, length 90',
      ),
    );
    expect(cs.map((c) => [c.protocol, at(c.initiator), c.packetsForward, c.packetsReverse])).toEqual([
      [Protocol.UDP, '10.0.0.1:5000', 1, 1],
      [Protocol.TCP, '10.0.0.1:5000', 1, 0],
      [Protocol.UDP, '10.0.0.1:5001', 1, 0],
    ]);
  });

  test('port 65535 and "no port" are different keys (IPv4 and IPv6)', () => {
    const cs = foldText(
      lines(
        '1.000000 IP 10.0.0.1.65535 > 8.8.8.8.65535: UDP, length 8',
        '1.000001 IP 10.0.0.1 > 8.8.8.8: ip-proto-17',
        '1.000002 IP6 fd00::1.65535 > 2606:4700::1111.65535: UDP, length 8',
        '1.000003 IP6 fd00::1 > 2606:4700::1111: ip-proto-17',
      ),
    );
    expect(cs.map((c) => [c.protocol, at(c.initiator), at(c.responder)])).toEqual([
      [Protocol.UDP, '10.0.0.1:65535', '8.8.8.8:65535'],
      [Protocol.UDP, '10.0.0.1', '8.8.8.8'],
      [Protocol.UDP, 'fd00::1:65535', '2606:4700::1111:65535'],
      [Protocol.UDP, 'fd00::1', '2606:4700::1111'],
    ]);
  });

  test('IPv6: unique-local is internal, text as printed, words exposed', () => {
    const [c] = foldText(
      lines(
        '5.000000 IP6 fd00::2.40000 > 2606:4700::1111.443: Flags [S], seq 1, win 1, length 0',
        '5.000010 IP6 2606:4700::1111.443 > fd00::2.40000: Flags [S.], seq 1, ack 2, win 1, length 0',
        '5.000020 IP6 fd00::2.40000 > 2606:4700::1111.443: Flags [P.], seq 2:302, ack 1, win 1, length 300',
      ),
    );
    expect(summarize(c)).toMatchObject({
      family: 6,
      direction: Direction.OUTBOUND,
      openedBy: ConnectionOpening.SYN,
      initiator: { ip: 'fd00::2', port: 40000, internal: true, canCrossInternet: false },
      responder: { ip: '2606:4700::1111', port: 443, internal: false, canCrossInternet: true },
      packetsForward: 2,
      bytesForward: 300,
      packetsReverse: 1,
    });
    expect(Array.from(c.responder.v6 ?? [])).toEqual([0x26064700, 0, 0, 0x1111]);
    expect(c.responder.v4).toBe(0);
  });

  test("the device's internal networks decide the internal side", () => {
    const text = lines('1.000000 IP 203.0.113.5.40000 > 8.8.8.8.443: Flags [S], seq 1, win 1, length 0');
    const [without] = foldText(text);
    expect([without.direction, at(without.internal)]).toEqual([Direction.INBOUND, '8.8.8.8:443']);
    const [withNet] = foldText(text, ['203.0.113.0/24']);
    expect([withNet.direction, at(withNet.internal), at(withNet.external)]).toEqual([Direction.OUTBOUND, '203.0.113.5:40000', '8.8.8.8:443']);
    expect(withNet.internal.canCrossInternet).toBe(false);
  });

  test('both or neither side internal: INBOUND, and the contacted side (responder) is "internal"', () => {
    const [lan, wan] = foldText(lines('1.000000 IP 10.0.0.1.5353 > 192.168.1.1.53: UDP, length 30', '1.000001 IP 1.1.1.1.5000 > 8.8.8.8.53: UDP, length 30'));
    expect([lan.direction, at(lan.internal), at(lan.external)]).toEqual([Direction.INBOUND, '192.168.1.1:53', '10.0.0.1:5353']);
    expect([wan.direction, at(wan.internal), at(wan.external)]).toEqual([Direction.INBOUND, '8.8.8.8:53', '1.1.1.1:5000']);
  });

  test('first/last are the earliest and latest capture times, even out of order', () => {
    const [c] = foldText(
      lines(
        '10.000000 IP 10.0.0.1.1 > 8.8.8.8.2: UDP, length 1',
        '9.500000 IP 8.8.8.8.2 > 10.0.0.1.1: UDP, length 1',
        '12.250000 IP 10.0.0.1.1 > 8.8.8.8.2: UDP, length 1',
        '11.000000 IP 10.0.0.1.1 > 8.8.8.8.2: UDP, length 1',
      ),
    );
    expect([c.firstMicros, c.lastMicros]).toEqual([9_500_000, 12_250_000]);
  });

  test('incremental: batches of any size give the same connections, in order of first appearance', () => {
    const text = Array.from({ length: 300 }, (_, i) => {
      const client = `10.0.${i % 7}.${1 + (i % 13)}.${40000 + (i % 11)}`;
      const server = `${20 + (i % 5)}.1.2.3.${i % 2 === 0 ? 443 : 80}`;
      return i % 3 === 0
        ? `${1000 + i}.000000 IP ${server} > ${client}: Flags [.], ack 1, win 1, length ${i}`
        : `${1000 + i}.000000 IP ${client} > ${server}: Flags [P.], seq 1:2, ack 1, win 1, length ${i}`;
    }).join('\n');
    const once = foldText(text).map(summarize);
    expect(once.length).toBeGreaterThan(50);
    expect(foldText(text, [], [1, 97, 500, 501, 4096, 9000, 9001, 15000]).map(summarize)).toEqual(once);
    expect(once.reduce((n, c) => n + c.packetsForward + c.packetsReverse, 0)).toBe(300);
  });

  test('many connections: the hash grows without losing any', () => {
    const text = Array.from({ length: 5000 }, (_, i) => `1.000000 IP 10.${i >> 8}.${i & 255}.1.${1024 + i} > 8.8.8.8.53: UDP, length 1`).join('\n');
    const cs = foldText(text + '\n' + text);
    expect(cs).toHaveLength(5000);
    expect(cs.every((c) => c.packetsForward === 2 && c.packetsReverse === 0)).toBe(true);
  });
});
