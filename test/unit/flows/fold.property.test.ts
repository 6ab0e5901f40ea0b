import fc from 'fast-check';
import { createDirectionClassifier, Direction } from '../../../src/modules/log-upload/flows/direction';
import { ConnectionOpening } from '../../../src/modules/log-upload/flows/fold';
import { PacketRow, TcpFlag } from '../../../src/modules/log-upload/parsing/packet-batch';
import { parseLines } from '../../../src/modules/log-upload/parsing/tcpdump-parser';
import { ConnectionSummary, foldText, summarize } from './fold-helpers';

/**
 * The obvious implementation: string keys in a Map, packets counted per sending endpoint, and the
 * classifier's text functions. The typed-array folder must agree with it on any packet sequence.
 */
function referenceFold(rows: PacketRow[], internalNetworks: string[]): ConnectionSummary[] {
  const cls = createDirectionClassifier(internalNetworks);
  interface Ref {
    family: number;
    protocol: number;
    ini: [string, number | null];
    resp: [string, number | null];
    opened: ConnectionOpening;
    packets: Map<string, number>;
    bytes: Map<string, number>;
    first: number;
    last: number;
  }
  const conns = new Map<string, Ref>();
  const id = (ip: string, port: number | null) => `${ip}#${port}`;
  for (const r of rows) {
    const s = id(r.src, r.srcPort);
    const d = id(r.dst, r.dstPort);
    const key = `${r.protocol}|${[s, d].sort().join('|')}`;
    let c = conns.get(key);
    if (c === undefined) {
      c = {
        family: r.family === 'IP' ? 4 : 6,
        protocol: r.protocol,
        ini: [r.src, r.srcPort],
        resp: [r.dst, r.dstPort],
        opened: ConnectionOpening.FIRST_PACKET,
        packets: new Map(),
        bytes: new Map(),
        first: r.tsMicros,
        last: r.tsMicros,
      };
      conns.set(key, c);
    }
    c.packets.set(s, (c.packets.get(s) ?? 0) + 1);
    c.bytes.set(s, (c.bytes.get(s) ?? 0) + r.length);
    c.first = Math.min(c.first, r.tsMicros);
    c.last = Math.max(c.last, r.tsMicros);
    const synAck = (r.tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
    if (r.syn && c.opened !== ConnectionOpening.SYN) {
      c.ini = [r.src, r.srcPort];
      c.resp = [r.dst, r.dstPort];
      c.opened = ConnectionOpening.SYN;
    } else if (synAck && c.opened === ConnectionOpening.FIRST_PACKET) {
      c.ini = [r.dst, r.dstPort];
      c.resp = [r.src, r.srcPort];
      c.opened = ConnectionOpening.SYN_ACK;
    }
  }
  return [...conns.values()].map((c) => {
    const ep = ([ip, port]: [string, number | null]) => ({
      ip,
      port,
      internal: cls.isInternal(ip) === true,
      canCrossInternet: cls.canCrossInternet(ip) === true,
    });
    const initiator = ep(c.ini);
    const responder = ep(c.resp);
    const outbound = initiator.internal && !responder.internal;
    const text = (e: { ip: string; port: number | null }) => (e.port === null ? e.ip : `${e.ip}:${e.port}`);
    return {
      family: c.family,
      protocol: c.protocol,
      direction: outbound ? Direction.OUTBOUND : Direction.INBOUND,
      openedBy: c.opened,
      initiator,
      responder,
      internal: text(outbound ? initiator : responder),
      external: text(outbound ? responder : initiator),
      packetsForward: c.packets.get(id(...c.ini)) ?? 0,
      bytesForward: c.bytes.get(id(...c.ini)) ?? 0,
      packetsReverse: c.packets.get(id(...c.resp)) ?? 0,
      bytesReverse: c.bytes.get(id(...c.resp)) ?? 0,
      firstMicros: c.first,
      lastMicros: c.last,
    };
  });
}

// Small pools so that packets collide into shared connections in both directions.
const V4 = ['10.0.0.1', '10.0.0.2', '192.168.1.5', '172.16.0.9', '8.8.8.8', '1.1.1.1', '203.0.113.9', '127.0.0.1', '224.0.0.251'];
const V6 = ['fd00::1', 'fd00::2', '2606:4700::1111', '2001:db8::5', '2001:db8:1::7', 'fe80::1', '::1', '::ffff:10.0.0.1'];
const PORTS = [53, 80, 443, 5000, 5001, 65535];

const packet = fc
  .record({
    v6: fc.boolean(),
    a: fc.nat(),
    b: fc.nat(),
    ap: fc.constantFrom(...PORTS),
    bp: fc.constantFrom(...PORTS),
    kind: fc.constantFrom('syn', 'synack', 'ack', 'psh', 'udp', 'icmp', 'frag'),
    sec: fc.integer({ min: 1_600_000_000, max: 1_600_000_100 }),
    usec: fc.integer({ min: 0, max: 999_999 }),
    len: fc.integer({ min: 0, max: 1500 }),
  })
  .filter((p) => p.a % (p.v6 ? V6.length : V4.length) !== p.b % (p.v6 ? V6.length : V4.length))
  .map((p) => {
    const pool = p.v6 ? V6 : V4;
    const src = pool[p.a % pool.length];
    const dst = pool[p.b % pool.length];
    const ts = `${p.sec}.${String(p.usec).padStart(6, '0')}`;
    const head = `${ts} ${p.v6 ? 'IP6' : 'IP'}`;
    switch (p.kind) {
      case 'icmp':
        return `${head} ${src} > ${dst}: ${p.v6 ? 'ICMP6, echo request' : 'ICMP echo request'}, id 1, seq 1, length ${p.len}`;
      case 'frag':
        return `${head} ${src} > ${dst}: ip-proto-17`;
      case 'udp':
        return `${head} ${src}.${p.ap} > ${dst}.${p.bp}: UDP, length ${p.len}`;
      default: {
        const flags = { syn: 'S', synack: 'S.', ack: '.', psh: 'P.' }[p.kind];
        return `${head} ${src}.${p.ap} > ${dst}.${p.bp}: Flags [${flags}], seq 1, win 1, length ${p.len}`;
      }
    }
  });

describe('connection fold properties', () => {
  test('agrees with a naive Map-based fold, whatever the batch boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(packet, { maxLength: 120 }),
        fc.subarray(['203.0.113.0/24', '2001:db8::/32', '8.8.8.0/24', '::ffff:1.1.1.0/120']),
        fc.array(fc.nat(), { maxLength: 6 }),
        (lines, internal, cuts) => {
          const text = lines.join('\n');
          const { rows } = parseLines(text);
          expect(rows).toHaveLength(lines.length);
          expect(foldText(text, internal, cuts).map(summarize)).toEqual(referenceFold(rows, internal));
        },
      ),
      { numRuns: 600 },
    );
  });
});
