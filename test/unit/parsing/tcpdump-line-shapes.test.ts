import { PacketRow, Protocol, TcpFlag } from '../../../src/modules/log-upload/parsing/packet-batch';
import { missingEpochTimestamps, NoEpochTimestampsError, SkipReason } from '../../../src/modules/log-upload/parsing/parse-stats';
import { parseLines, TcpdumpParser } from '../../../src/modules/log-upload/parsing/tcpdump-parser';

type Want = Partial<PacketRow> | SkipReason;

const { TCP, UDP, ICMP, ICMP6, UNKNOWN } = Protocol;
const { NOT_PACKET, NO_TIMESTAMP, NOT_IP, MALFORMED_ADDRESS } = SkipReason;
const V6A = '6767:6767:6767:6767:6767:6767:6767:6767';
const V6B = '6767:6767:6767:6767:6767:6767:6767:6705';

// One case per line shape of corpus/tcpdump/CATALOG.md (and its -e / -q variants).
const cases: [string, string, Want][] = [
  // The product page's sample.
  [
    'product sample',
    '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0',
    {
      ts: '1517931955.781702',
      tsMicros: 1517931955781702,
      family: 'IP',
      src: '10.0.2.2',
      srcPort: 53231,
      dst: '192.1.2.3',
      dstPort: 80,
      protocol: TCP,
      tcpFlags: TcpFlag.ACK,
      syn: false,
      length: 0,
    },
  ],
  // IPv4 with ports
  [
    'TCP SYN',
    '1361796995.701161 IP 10.2.1.2.35961 > 10.1.1.2.22: Flags [S], seq 2912457561, win 14600, options [mss 1460,sackOK], length 0',
    { protocol: TCP, syn: true, tcpFlags: TcpFlag.SYN },
  ],
  [
    'TCP SYN-ACK is no SYN',
    '1361796995.701661 IP 10.1.1.2.22 > 10.2.1.2.35961: Flags [S.], seq 125971326, ack 2912457562, win 14280, length 0',
    { syn: false, tcpFlags: TcpFlag.SYN | TcpFlag.ACK },
  ],
  ['TCP ECN SYN', '1.000000 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [SEW], seq 1, win 1, length 0', { syn: true, tcpFlags: TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR }],
  [
    'TCP FIN PSH ACK, payload length',
    '1.000000 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [FP.], seq 1:20, ack 1, win 1, length 19: BGP',
    { tcpFlags: TcpFlag.FIN | TcpFlag.PSH | TcpFlag.ACK, length: 19 },
  ],
  ['UDP token', '1591780794.740079 IP 192.168.1.11.43966 > 209.87.249.18.53: UDP, length 56', { protocol: UDP, srcPort: 43966, dstPort: 53, length: 56 }],
  ['UDP-encap is UDP', '0.000000 IP 192.1.2.23.4500 > 192.1.2.45.4500: UDP-encap: ESP(spi=0x12345678,seq=0x1), length 116', { protocol: UDP, length: 116 }],
  [
    'DNS printer: UNKNOWN, a port is no proof',
    '1591780794.740079 IP 192.168.1.11.43966 > 209.87.249.18.53: 22836+ [1au] A? www.tcpdump.org. (56)',
    { protocol: UNKNOWN, srcPort: 43966, dstPort: 53, length: 0 },
  ],
  [
    'HSRP',
    '1213854736.041638 IP 192.168.0.30.1985 > 224.0.0.2.1985: HSRPv0-hello 20: state=active group=1 addr=192.168.0.1',
    { src: '192.168.0.30', srcPort: 1985, dst: '224.0.0.2', dstPort: 1985, protocol: UNKNOWN },
  ],
  ['-q TCP', '1361796995.701161 IP 10.2.1.2.35961 > 10.1.1.2.22: tcp 605', { protocol: TCP, length: 605, tcpFlags: 0 }],
  ['port 0 and 65535', '1.000000 IP 0.0.0.0.0 > 255.255.255.255.65535: UDP, length 1', { src: '0.0.0.0', srcPort: 0, dst: '255.255.255.255', dstPort: 65535 }],
  ['end of line right after the colon', '1.000000 IP 10.0.0.1.5 > 10.0.0.2.6:', { srcPort: 5, dstPort: 6, protocol: UNKNOWN, length: 0 }],
  // IPv4 without ports
  ['ICMP', '1.000000 IP 10.0.0.1 > 8.8.8.8: ICMP echo request, id 1, seq 2, length 64', { protocol: ICMP, srcPort: null, dstPort: null, length: 64 }],
  [
    'ESP',
    '0.000000 IP 192.1.2.23 > 192.1.2.45: ESP(spi=0x12345678,seq=0x1), length 116',
    { ts: '0.000000', srcPort: null, dstPort: null, protocol: UNKNOWN, length: 116 },
  ],
  ['non-first fragment, ip-proto-17', '942356851.873045 IP 131.151.1.146 > 131.151.32.21: ip-proto-17', { protocol: UDP, srcPort: null, dstPort: null }],
  ['ip-proto-63 after two spaces', '1.000000 IP 10.136.1.32 > 10.2.23.24:  ip-proto-63 62', { protocol: UNKNOWN, srcPort: null }],
  [
    'PGM: ports in the payload are not read',
    '167778563.132118 IP 89.121.89.107 > 89.89.89.89: 89.121.89.107.32322 > 89.89.89.89.500: PGM, length 24818',
    { srcPort: null, dstPort: null, length: 24818 },
  ],
  [
    'GRE tunnel: outer header only, last length',
    '1375870271.809492 IP 20.1.1.1 > 30.1.1.2: GREv0, length 72: IP 50.1.1.1 > 224.0.0.5: OSPFv2, Hello, length 48',
    { src: '20.1.1.1', dst: '30.1.1.2', srcPort: null, length: 48 },
  ],
  [
    'Geneve tunnel: outer header only',
    '1422828273.999279 IP 20.0.0.2.43443 > 20.0.0.1.6081: Geneve, Flags [none], vni 0xb: IP 30.0.0.2.51225 > 30.0.0.1.22: Flags [S], seq 397610159, win 14600, length 0',
    { src: '20.0.0.2', srcPort: 43443, dst: '20.0.0.1', dstPort: 6081, protocol: UNKNOWN, syn: false },
  ],
  [
    'truncated-ip prefix',
    '1448652145.721827 IP truncated-ip - 58880 bytes missing! 10.1.1.104.654 > 10.2.2.2.3328:  aodv rerr  [items 0] [19192]:',
    { src: '10.1.1.104', srcPort: 654, dst: '10.2.2.2', dstPort: 3328 },
  ],
  // IPv6
  [
    'IPv6 no ports',
    '1505239860.329296 IP6 fe80::ff:fe00:301 > ff02::a: EIGRP Hello, length: 40',
    { family: 'IP6', src: 'fe80::ff:fe00:301', dst: 'ff02::a', srcPort: null, length: 0 },
  ],
  [
    'IPv6 with ports',
    '1752040834.349949 IP6 2001:db8::1.12345 > 2620:fe::9.53: 4660+ A? example.com. (29)',
    { family: 'IP6', src: '2001:db8::1', srcPort: 12345, dst: '2620:fe::9', dstPort: 53 },
  ],
  ['ICMP6', '1334319972.631155 IP6 fe80::b299:28ff:fec8:d66c > ff02::1: ICMP6, router advertisement, length 176', { protocol: ICMP6, length: 176 }],
  [
    'HBH ICMP6',
    '1358571247.748985 IP6 fe80::215:17ff:fecc:e546 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s), length 28',
    { protocol: ICMP6, srcPort: null },
  ],
  [
    'HBH: bare ports after the extension header are not read',
    '1759760007.172200 IP6 2604:1380:4091:ce00::d > 2604:1380:4091:ce00::b: HBH 41851 > 43913: Flags [P.], seq 592820498:592900498, ack 2512896041, win 2128',
    { srcPort: null, dstPort: null, protocol: TCP, tcpFlags: TcpFlag.PSH | TcpFlag.ACK },
  ],
  [
    'RT6: bare ports not read',
    '1542909580.591932 IP6 12::1 > 2::f1:0: RT6 (len=6, type=4, segleft=2, last-entry=2, tag=0, [0]b2::2, [1]3::d6, [2]2::f1:0) 57745 > 5001: UDP, length 1024',
    { src: '12::1', dst: '2::f1:0', srcPort: null, length: 1024 },
  ],
  ['destination ending in ::', '1.000000 IP6 fe80::1 > ff02::: ICMP6, neighbor solicitation, length 32', { dst: 'ff02::', protocol: ICMP6 }],
  ['IPv4-mapped IPv6 without port', '1.000000 IP6 ::ffff:1.2.3.4 > ::1: ICMP6, echo request, length 8', { src: '::ffff:1.2.3.4', srcPort: null, dst: '::1' }],
  [
    'IPv4-mapped IPv6 with port',
    '1.000000 IP6 ::ffff:1.2.3.4.80 > ::ffff:5.6.7.8.443: Flags [S], seq 1, length 0',
    { src: '::ffff:1.2.3.4', srcPort: 80, dst: '::ffff:5.6.7.8', dstPort: 443, syn: true },
  ],
  [
    'IPv4-compatible IPv6 keeps its dotted tail, as tcpdump prints it',
    '1.000000 IP6 ::1.2.3.4.80 > ::1.2.3.5.81: UDP, length 1',
    { src: '::1.2.3.4', srcPort: 80, dst: '::1.2.3.5', dstPort: 81 },
  ],
  ['IP6 :: unspecified', '1.000000 IP6 :: > ff02::16: HBH ICMP6, multicast listener report v2, length 28', { src: '::', dst: 'ff02::16' }],
  [
    'truncated-ip6 prefix without space',
    `1041342931.300000 IP6 truncated-ip6 - 26325 bytes missing!${V6A} > ${V6B}: mobility: BU seq#=26471 HL lifetime=105884`,
    { src: V6A, dst: V6B, srcPort: null },
  ],
  // IP lines without parseable addresses
  ['IP bad-len', '1759500248.505389 IP bad-len 0', MALFORMED_ADDRESS],
  ['IP bad-hlen', '1692953864.621711 IP bad-hlen 16', MALFORMED_ADDRESS],
  ['IP [|ip]', '1.000000 IP  [|ip]', MALFORMED_ADDRESS],
  ['IP6 version error', '1383923701.279230 IP6 version error: 0 != 6', MALFORMED_ADDRESS],
  ['IPv4 octet with leading zero', '1.000000 IP 010.0.0.1.80 > 10.0.0.2.81: UDP, length 1', MALFORMED_ADDRESS],
  ['IPv4 octet 256', '1.000000 IP 10.0.0.256.80 > 10.0.0.2.81: UDP, length 1', MALFORMED_ADDRESS],
  ['port 65536', '1.000000 IP 10.0.0.1.65536 > 10.0.0.2.81: UDP, length 1', MALFORMED_ADDRESS],
  ['a port on one side only', '1.000000 IP 10.0.0.1.80 > 10.0.0.2: UDP, length 1', MALFORMED_ADDRESS],
  ['IPv6 after IP', '1.000000 IP fe80::1 > fe80::2: ICMP6', MALFORMED_ADDRESS],
  ['IPv6 with two ::', '1.000000 IP6 1::2::3 > fe80::2: ICMP6', MALFORMED_ADDRESS],
  [
    '-v header (addresses on the next line)',
    '1591780794.740079 IP (tos 0x0, ttl 64, id 22989, offset 0, flags [none], proto UDP (17), length 84)',
    MALFORMED_ADDRESS,
  ],
  // Not packets
  ['empty line', '', NOT_PACKET],
  ['1-3 space continuation', ' EID 10.30.1.100/32, 1 locator(s) LOC 20.20.8.253', NOT_PACKET],
  ['4+ space continuation', '    xTR-ID: 0x0000:  9787 ad75 3caf 58a7 13fa 6920 e6d2 7a8f', NOT_PACKET],
  ['hex dump', '\t0x0000:  aaaa 0300 000c 0003 0000 0000 0100 0ccc  ................', NOT_PACKET],
  ['tab continuation', '\t  0x0000:  4369 7363 6f20 494f 5320 536f 6674 7761', NOT_PACKET],
  // No timestamp
  ['[Error converting time]', '[Error converting time] IP 192.168.1.11.43966 > 209.87.249.18.53: 22836+ [1au] A? www.tcpdump.org. (56)', NO_TIMESTAMP],
  ['[Invalid header]', '[Invalid header: caplen==0, len==0]', NO_TIMESTAMP],
  ['VXLAN inner packet on its own line', 'IP 192.168.1.2.37099 > 192.168.1.1.41547: Flags [P.], seq 1925567864:1925574854, length 6990', NO_TIMESTAMP],
  ['inner ARP line', 'ARP, Request who-has 192.168.203.3 tell 192.168.203.5, length 28', NO_TIMESTAMP],
  ['usec with 10 digits', '1418145370.2147483648 IP 131.155.215.69.46656 > 137.116.81.94.80: Flags [.], ack 1, win 213, length 0', NO_TIMESTAMP],
  ['usec with 7 digits', '1418145370.1000000 IP 137.116.81.94.80 > 131.155.215.69.46656: Flags [S.], seq 1, length 0', NO_TIMESTAMP],
  ['usec with 5 digits', '1418145370.10000 IP 137.116.81.94.80 > 131.155.215.69.46656: Flags [S.], seq 1, length 0', NO_TIMESTAMP],
  // Timestamped, not IP
  ['ARP', '1575842394.599412 ARP, Request who-has 172.21.79.100 tell 172.21.79.97, length 42', NOT_IP],
  ['STP', '1213789445.787073 STP 802.1d, Config, Flags [none], bridge-id 8001.00:19:06:ea:b8:80.8005, length 35', NOT_IP],
  ['IP6, wrong link-layer', '808464432.999999 IP6, wrong link-layer encapsulation (invalid)', NOT_IP],
  ['IPX', '1214474789.360507 IPX a8f87967.00:00:00:00:00:01.0455 > 00000000.ff:ff:ff:ff:ff:ff.0455: ipx-netbios 50', NOT_IP],
  ['empty second token', '1268518547.244689  [|arp]', NOT_IP],
  ['DECnet 1.1 > 1.1', '1263065711.338778 1.1 > 1.1 34 conn-initiate 8195>0 ver 4.1 segsize 16403 ', NOT_IP],
  ['MS NLB "IP:" is no IP header', '1354618524.028046 MS NLB heartbeat, host priority: 2, cluster IP: 192.168.100.80, host IP: 192.168.100.82', NOT_IP],
  ['timestamp only', '1.000000', NOT_IP],
  // IP after a layer-2 tag (reference: ambiguous; ours: a row)
  [
    'MPLS',
    '1087208225.850284 MPLS (label 100656, tc 6, [S], ttl 64) IP 12.4.4.4.4100 > 12.8.8.8.179: Flags [P.], seq 1:20, ack 1, win 16384, length 19: BGP',
    { src: '12.4.4.4', srcPort: 4100, dst: '12.8.8.8', dstPort: 179, protocol: TCP, length: 19 },
  ],
  [
    'BRCM',
    '7820.634030 BRCM tag OP: IG, TC: 0, TE: None, TS: 0, DST map: 0x0080, IP 0.0.0.0.68 > 255.255.255.255.67: BOOTP/DHCP, Request from 00:10:18:de:38:1e, length 300',
    { ts: '7820.634030', src: '0.0.0.0', dstPort: 67, length: 300 },
  ],
  [
    'DSA',
    '402.569821 DSA Forward port 0.2, VLAN 1337u, IP 198.18.10.1 > 198.18.10.2: ICMP echo request, id 116, seq 1, length 64',
    { src: '198.18.10.1', protocol: ICMP },
  ],
  [
    'EDSA',
    '519.888043 EDSA 0xdada, Forward port 0.2, VLAN 1337u, IP 198.18.10.1 > 198.18.10.2: ICMP echo request, id 120, seq 1, length 64',
    { dst: '198.18.10.2', protocol: ICMP },
  ],
  [
    'NSH',
    '1491088420.394208 NSH, flags [none], service-path-id 0x000309, service-index 0x7: IP 10.0.8.3.52229 > 10.13.13.13.8000: UDP, length 6',
    { srcPort: 52229, protocol: UDP },
  ],
  [
    'unknown PPP with truncated-ip',
    '2142662398.999999 unknown PPP protocol (0x7e08): IP truncated-ip - 49093 bytes missing! 69.168.178.248.53 > 192.168.0.111.1024: 0 [0q] [65535au] (42)',
    { src: '69.168.178.248', srcPort: 53 },
  ],
  // -e (link-level header)
  [
    '-e Ethernet',
    '1553160644.514026 74:83:ef:07:d0:a9 > a6:82:4b:c9:a1:a7, ethertype IPv4 (0x0800), length 342: 10.30.1.1.67 > 10.40.2.3.67: BOOTP/DHCP, Request from 5a:4f:34:b1:af:66, length 300',
    { src: '10.30.1.1', srcPort: 67, dst: '10.40.2.3', length: 300 },
  ],
  [
    '-e frame length is not the packet length',
    '1591780794.740079 00:11:22:33:44:55 > 00:11:22:33:44:66, ethertype IPv4 (0x0800), length 98: 192.168.1.11.43966 > 209.87.249.18.53: 22836+ [1au] A? www.tcpdump.org. (56)',
    { srcPort: 43966, length: 0 },
  ],
  [
    '-e VLAN',
    '1565966010.055180 02:06:0a:0e:ff:f3 > 02:06:0a:0e:ff:f4, ethertype 802.1Q (0x8100), length 141: vlan 23, p 6, ethertype IPv4 (0x0800), 2.2.2.2.179 > 3.3.3.3.56988: Flags [P.], seq 1:76, ack 1, win 16384, length 75: BGP',
    { src: '2.2.2.2', dstPort: 56988, protocol: TCP, length: 75 },
  ],
  [
    '-e Linux cooked Out',
    '1305105166.942414 Out 00:0c:29:b2:a1:17 ethertype IPv4 (0x0800), length 84: 192.168.1.142.53333 > 192.168.1.143.6704: sctp[ForCES HP] (1) [INIT] [init tag: 2926667004]',
    { src: '192.168.1.142', srcPort: 53333, dstPort: 6704 },
  ],
  [
    '-e Linux cooked In (padded)',
    '1305105166.943161  In 00:0c:29:a5:2f:ab ethertype IPv4 (0x0800), length 308: 192.168.1.143.6704 > 192.168.1.142.53333: sctp[ForCES HP] (1) [INIT ACK]',
    { src: '192.168.1.143', srcPort: 6704 },
  ],
  [
    '-e IPv6',
    '1334319972.631155 b0:99:28:c8:d6:6c > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 230: fe80::b299:28ff:fec8:d66c > ff02::1: ICMP6, router advertisement, length 176',
    { family: 'IP6', dst: 'ff02::1', protocol: ICMP6, length: 176 },
  ],
  [
    '-e PPP',
    '1087208228.119504 IP (0x0021), length 64: 10.20.0.1.3503 > 12.4.4.4.4786: LSP-PINGv1, MPLS Echo Reply, seq 1, length: 32',
    { src: '10.20.0.1', srcPort: 3503, dstPort: 4786 },
  ],
  [
    '-e MPLS',
    '1087208225.850284 MPLS (0x0281), length 79: MPLS (label 100656, tc 6, [S], ttl 64) 12.4.4.4.4100 > 12.8.8.8.179: Flags [P.], seq 1:20, length 19: BGP',
    { src: '12.4.4.4', dst: '12.8.8.8', protocol: TCP, length: 19 },
  ],
  ['-e raw IP', '1751997557.215270 ip: 2001:db8::1.12345 > 2620:fe::9.53: 4660+ A? example.com. (29)', { family: 'IP6', srcPort: 12345 }],
  [
    '-e truncated-ip',
    '1692953864.621711 f0:4d:a2:3d:5d:a3 > c0:d6:82:36:03:2b, ethertype IPv4 (0x0800), length 98: truncated-ip - 1 bytes missing! 140.211.9.206.39095 > 45.33.127.156.53: 37546+ [1au] A? www.tcpdump.org. (56)',
    { src: '140.211.9.206', dstPort: 53 },
  ],
  [
    '-e truncated-ip6',
    '1692953954.753767 f0:4d:a2:3d:5d:a3 > c0:d6:82:36:03:2b, ethertype IPv6 (0x86dd), length 118: truncated-ip6 - 1 bytes missing!2605:bc80:3010:104::8cd3:9ce.45678 > 2600:3c00:e000:19::1.53: 34053+ [1au] A? www.tcpdump.org. (56)',
    { src: '2605:bc80:3010:104::8cd3:9ce', srcPort: 45678, dstPort: 53 },
  ],
  [
    '-e ARP',
    '1575842394.599412 00:20:d2:5a:fb:3f > ff:ff:ff:ff:ff:ff, ethertype 802.1Q-QinQ (0x88a8), length 64: vlan 200, p 0, ethertype ARP (0x0806), Request who-has 172.21.79.100 tell 172.21.79.97, length 46',
    NOT_IP,
  ],
  // Timestamps
  [
    '32-bit wrap prints 28315904.000000',
    '28315904.000000 IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 8',
    { ts: '28315904.000000', tsMicros: 28315904000000 },
  ],
  ['CRLF line ending', '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\r', { dstPort: 80, length: 0 }],
];

describe('tcpdump line shapes', () => {
  test.each(cases)('%s', (_name, line, want) => {
    const { rows, stats } = parseLines(`${line}\n`);
    expect(stats.lines).toBe(1);
    if (typeof want === 'string') {
      expect(rows).toEqual([]);
      expect(stats.skipped[want]).toBe(1);
      expect(stats.samples).toEqual([{ lineNo: 1, reason: want, text: line.replace(/\r$/, '') }]);
    } else {
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ lineNo: 1, ...want });
      expect(stats.packets).toBe(1);
    }
  });
});

describe('wall-clock timestamps (no -tt)', () => {
  test.each([
    ['plain -n', '21:46:16.463334 IP 131.151.32.21.7001 > 131.151.1.59.7000: rx data seq 1 ser 1 (32)'],
    ['-tttt', '2019-05-29 21:46:16.463334 IP 131.151.32.21.7001 > 131.151.1.59.7000: rx data seq 1 ser 1 (32)'],
  ])('%s is NO_TIMESTAMP and counted as time of day', (_n, line) => {
    const { rows, stats } = parseLines(`${line}\n`);
    expect(rows).toEqual([]);
    expect(stats.skipped.NO_TIMESTAMP).toBe(1);
    expect(stats.timeOfDayLines).toBe(1);
  });

  test('a file of time-of-day lines fails asking for -tt; a stray one among epoch lines does not', () => {
    const tod = '21:46:16.463334 IP 131.151.32.21.7001 > 131.151.1.59.7000: UDP, length 1\n';
    const epoch = '1.000000 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 1\n';
    const refused = missingEpochTimestamps(parseLines(tod.repeat(3)).stats);
    expect(refused).toBeInstanceOf(NoEpochTimestampsError);
    expect(refused?.message).toContain('tcpdump -tt -n');
    expect(missingEpochTimestamps(parseLines(epoch.repeat(3) + tod).stats)).toBeNull();
    expect(missingEpochTimestamps(parseLines(epoch).stats)).toBeNull();
  });
});

describe('-v output', () => {
  test('IPv4: the header line gives time and protocol, the indented next line the addresses', () => {
    const { rows, stats } = parseLines(
      [
        '1591780794.740079 IP (tos 0x0, ttl 64, id 22989, offset 0, flags [none], proto UDP (17), length 84)',
        '    192.168.1.11.43966 > 209.87.249.18.53: 22836+ [1au] A? www.tcpdump.org. (56)',
        '1361796995.701161 IP (tos 0x0, ttl 64, id 13033, offset 0, flags [DF], proto TCP (6), length 72)',
        '    10.2.1.2.35961 > 10.1.1.2.22: Flags [S], cksum 0xda99 (correct), seq 2912457561, win 14600, length 0',
        '1692953864.621711 IP truncated-ip - 1 bytes missing! (tos 0x0, ttl 64, id 61862, offset 0, flags [none], proto UDP (17), length 85)',
        '    140.211.9.206.39095 > 45.33.127.156.53: 37546+ [1au] A? www.tcpdump.org. (56)',
        '1562346644.789433 IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto PIM (103), length 34)',
        '    10.0.0.2 > 224.0.0.13: PIMv2, length 14',
        '\tBootstrap, cksum 0xcaa5 (correct) tag=17c hashmlen=4 BSRprio=93 BSR=10.0.0.1',
      ].join('\n'),
    );
    expect(rows.map((r) => [r.lineNo, r.ts, r.src, r.srcPort, r.dstPort, r.protocol, r.syn, r.length])).toEqual([
      [1, '1591780794.740079', '192.168.1.11', 43966, 53, UDP, false, 0],
      [3, '1361796995.701161', '10.2.1.2', 35961, 22, TCP, true, 0],
      [5, '1692953864.621711', '140.211.9.206', 39095, 53, UDP, false, 0],
      [7, '1562346644.789433', '10.0.0.2', null, null, UNKNOWN, false, 14],
    ]);
    expect(stats.skipped).toMatchObject({ NOT_PACKET: 5, MALFORMED_ADDRESS: 0 });
  });

  test('IPv6: fields in parentheses, addresses on the same line', () => {
    const { rows } = parseLines(
      '1751997557.215270 IP6 (hlim 64, next-header UDP (17) payload length: 37) 2001:db8::1.12345 > 2620:fe::9.53: [udp sum ok] 4660+ A? example.com. (29)\n',
    );
    expect(rows).toMatchObject([{ src: '2001:db8::1', srcPort: 12345, dst: '2620:fe::9', dstPort: 53, protocol: UDP }]);
  });

  test('a header without its address line is MALFORMED_ADDRESS; the next line is read on its own', () => {
    const { rows, stats } = parseLines(
      [
        '1.000000 IP (tos 0x0, ttl 64, proto UDP (17), length 84)',
        '2.000000 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 1',
        '3.000000 IP (tos 0x0, ttl 64, proto UDP (17), length 84)',
      ].join('\n'),
    );
    expect(rows.map((r) => r.lineNo)).toEqual([2]);
    expect(stats.skipped.MALFORMED_ADDRESS).toBe(2);
    expect(stats.samples.map((s) => [s.lineNo, s.reason])).toEqual([
      [1, MALFORMED_ADDRESS],
      [3, MALFORMED_ADDRESS],
    ]);
  });
});

describe('stats', () => {
  test('every line is a packet or counted under one reason; samples are the first few per reason, truncated', () => {
    const text = [
      '1.000000 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 1',
      ...Array.from({ length: 7 }, (_, i) => `1.00000${i} ARP, Request who-has 10.0.0.${i} tell 10.0.0.254, length 28 ${'x'.repeat(300)}`),
      '\t0x0000:  4500',
      '',
      'garbage',
    ].join('\n');
    const { rows, stats } = parseLines(text, { samplesPerReason: 2, sampleChars: 40 });
    expect(rows).toHaveLength(1);
    expect(stats.lines).toBe(11);
    expect(stats.skipped).toEqual({ NOT_PACKET: 2, NO_TIMESTAMP: 1, NOT_IP: 7, MALFORMED_ADDRESS: 0, TOO_LONG: 0 });
    expect(stats.packets + Object.values(stats.skipped).reduce((a, b) => a + b, 0)).toBe(stats.lines);
    expect(stats.samples.map((s) => [s.lineNo, s.reason])).toEqual([
      [2, NOT_IP],
      [3, NOT_IP],
      [9, NOT_PACKET],
      [10, NOT_PACKET],
      [11, NO_TIMESTAMP],
    ]);
    expect(stats.samples[0].text).toHaveLength(40);
    expect(stats.bytes).toBe(Buffer.byteLength(text));
  });

  test('a line over the cap is TOO_LONG, within one chunk or across many, and the next line is read', () => {
    const long = `1.000000 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 1 ${'y'.repeat(5000)}`;
    const next = '2.000000 IP 10.0.0.3.3 > 10.0.0.4.4: UDP, length 2';
    const whole = parseLines(`${long}\n${next}\n`, { maxLineBytes: 1024 });
    expect(whole.stats.skipped.TOO_LONG).toBe(1);
    expect(whole.rows.map((r) => [r.lineNo, r.src])).toEqual([[2, '10.0.0.3']]);

    const parser = new TcpdumpParser({ maxLineBytes: 1024 });
    const bytes = Buffer.from(`${long}\n${next}\n`);
    const counts: number[] = [];
    for (let i = 0; i < bytes.length; i += 300) counts.push(parser.push(bytes.subarray(i, i + 300)).count);
    counts.push(parser.end().count);
    expect(parser.stats.skipped.TOO_LONG).toBe(1);
    expect(parser.stats.lines).toBe(2);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
  });

  test('a final line without newline is read at end(); a UTF-8 BOM is ignored', () => {
    const { rows, stats } = parseLines(
      '\ufeff1.000000 IP 10.0.0.1 > 10.0.0.2: ICMP echo request, length 8\n2.000000 IP 10.0.0.1 > 10.0.0.2: ICMP echo reply, length 8',
    );
    expect(rows.map((r) => r.ts)).toEqual(['1.000000', '2.000000']);
    expect(stats.lines).toBe(2);
  });
});
