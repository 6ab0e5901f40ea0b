import fc from 'fast-check';
import { parseIpv6Words } from '../../../src/common/net';
import { batchRows, ipv6Text, PacketRow, Protocol } from '../../../src/modules/log-upload/parsing/packet-batch';
import { parseLines, TcpdumpParser } from '../../../src/modules/log-upload/parsing/tcpdump-parser';

const printable = fc.string({ unit: fc.constantFrom(...' \t!"#$%&()*+,-./0123456789:;<=>?@ABCDIPXZ[]_abcdefx|~\n'.split('')), maxLength: 400 });

const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const port = fc.integer({ min: 0, max: 65535 });
const seconds = fc.integer({ min: 0, max: 4_294_967_295 });

/** Any valid spelling (`::0:0:0:0`, `0::0.0.0.0`, upper case...) in its canonical, tcpdump-printed form. */
function canonicalIpv6(text: string): string {
  const w = new Uint32Array(4);
  if (!parseIpv6Words(text, w)) throw new Error(`fast-check gave an invalid IPv6 address: ${text}`);
  return ipv6Text(w, 0);
}
const ipv6 = fc.ipV6().map(canonicalIpv6);
const usec = fc.integer({ min: 0, max: 999_999 });

interface Generated {
  line: string;
  want: Omit<PacketRow, 'lineNo' | 'tcpFlags'>;
}

/** A line as tcpdump -tt -n prints it, and the row it must give. */
const wellFormed: fc.Arbitrary<Generated> = fc
  .record({
    sec: seconds,
    usec,
    v6: fc.boolean(),
    a4: ipv4,
    b4: ipv4,
    a6: ipv6,
    b6: ipv6,
    ports: fc.option(fc.tuple(port, port), { nil: null }),
    tail: fc.constantFrom('tcp-syn', 'tcp-ack', 'udp', 'icmp', 'other'),
    link: fc.constantFrom('none', 'ether', 'vlan', 'sll-in', 'sll-out'),
    length: fc.integer({ min: 0, max: 65535 }),
  })
  .map((g) => {
    const ts = `${g.sec}.${String(g.usec).padStart(6, '0')}`;
    const [src, dst] = g.v6 ? [g.a6, g.b6] : [g.a4, g.b4];
    const [sp, dp] = g.ports ?? [null, null];
    const at = (ip: string, p: number | null) => (p === null ? ip : `${ip}.${p}`);
    let tail: string;
    let protocol: Protocol;
    switch (g.tail) {
      case 'tcp-syn':
        tail = `Flags [S], seq 1, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length ${g.length}`;
        protocol = Protocol.TCP;
        break;
      case 'tcp-ack':
        tail = `Flags [P.], seq 1:${g.length + 1}, ack 1, win 502, length ${g.length}`;
        protocol = Protocol.TCP;
        break;
      case 'udp':
        tail = `UDP, length ${g.length}`;
        protocol = Protocol.UDP;
        break;
      case 'icmp':
        tail = g.v6 ? `ICMP6, echo request, id 1, seq 2, length ${g.length}` : `ICMP echo request, id 1, seq 2, length ${g.length}`;
        protocol = g.v6 ? Protocol.ICMP6 : Protocol.ICMP;
        break;
      default:
        tail = `12345+ A? example.com. (29), length ${g.length}`;
        protocol = Protocol.UNKNOWN;
    }
    // Without -e the family keyword; with -e the link header instead (Ethernet, 802.1Q, Linux cooked).
    const ethertype = g.v6 ? 'IPv6 (0x86dd)' : 'IPv4 (0x0800)';
    const mac = 'f0:4d:a2:3d:5d:a3';
    const link = {
      none: `${g.v6 ? 'IP6' : 'IP'} `,
      ether: `${mac} > c0:d6:82:36:03:2b, ethertype ${ethertype}, length ${g.length + 54}: `,
      vlan: `${mac} > c0:d6:82:36:03:2b, ethertype 802.1Q (0x8100), length ${g.length + 58}: vlan 23, p 6, ethertype ${ethertype}, `,
      'sll-in': ` In ${mac} ethertype ${ethertype}, length ${g.length + 44}: `,
      'sll-out': `Out ${mac} ethertype ${ethertype}, length ${g.length + 44}: `,
    }[g.link];
    const line = `${ts} ${link}${at(src, sp)} > ${at(dst, dp)}: ${tail}`;
    return {
      line,
      want: {
        ts,
        tsMicros: g.sec * 1e6 + g.usec,
        family: g.v6 ? 'IP6' : 'IP',
        src,
        srcPort: sp,
        dst,
        dstPort: dp,
        protocol,
        syn: g.tail === 'tcp-syn',
        length: g.length,
      },
    } satisfies Generated;
  });

/** Parses in chunks cut at the given offsets. */
function parseChunked(bytes: Buffer, cuts: number[]): { rows: PacketRow[]; stats: TcpdumpParser['stats'] } {
  const parser = new TcpdumpParser({ maxLineBytes: 200 });
  const rows: PacketRow[] = [];
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    rows.push(...batchRows(parser.push(bytes.subarray(from, cut))));
    from = cut;
  }
  rows.push(...batchRows(parser.push(bytes.subarray(from))));
  rows.push(...batchRows(parser.end()));
  return { rows, stats: parser.stats };
}

describe('tcpdump parser properties', () => {
  test('printable garbage never throws, and every line is a packet or a counted skip', () => {
    fc.assert(
      fc.property(printable, (text) => {
        const { rows, stats } = parseLines(text);
        const skipped = Object.values(stats.skipped).reduce((a, b) => a + b, 0);
        expect(stats.packets).toBe(rows.length);
        expect(stats.packets + skipped).toBe(stats.lines);
      }),
      { numRuns: 2000 },
    );
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        parseLines(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  test('a well-formed line round-trips', () => {
    fc.assert(
      fc.property(wellFormed, ({ line, want }) => {
        const { rows } = parseLines(`${line}\n`);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ lineNo: 1, ...want });
      }),
      { numRuns: 3000 },
    );
  });

  test('any valid IPv6 spelling is read, and shown the way tcpdump prints it', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.ipV6(), port, port, (a, b, p, q) => {
        const { rows } = parseLines(`1.000000 IP6 ${a}.${p} > ${b}.${q}: UDP, length 1\n2.000000 IP6 ${a} > ${b}: ICMP6, echo request, length 8\n`);
        expect(rows.map((r) => [r.src, r.srcPort, r.dst, r.dstPort])).toEqual([
          [canonicalIpv6(a), p, canonicalIpv6(b), q],
          [canonicalIpv6(a), null, canonicalIpv6(b), null],
        ]);
      }),
      { numRuns: 2000 },
    );
  });

  test('random chunk boundaries give the same rows and stats as one chunk', () => {
    const line = fc.oneof(
      wellFormed.map((g) => g.line),
      printable,
      fc.constantFrom(
        '',
        '\t0x0000:  4500 0054',
        '21:46:16.463334 IP 1.2.3.4 > 5.6.7.8: ICMP echo request, length 8',
        'x'.repeat(250),
        'y'.repeat(200),
        'z'.repeat(201),
      ),
      // -v: header line, address line on the next
      fc.constantFrom('1.000000 IP (tos 0x0, ttl 64, proto UDP (17), length 84)', '    10.0.0.1.53 > 10.0.0.2.5353: 1 A? x. (20)'),
    );
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 25 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        (lines, eol, finalEol, cuts) => {
          const bytes = Buffer.from(lines.join(eol) + (finalEol ? eol : ''), 'latin1');
          const once = parseChunked(bytes, []);
          const chunked = parseChunked(bytes, cuts);
          expect(chunked.rows).toEqual(once.rows);
          expect(chunked.stats).toEqual(once.stats);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
