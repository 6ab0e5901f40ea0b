import { FeedLineResult, FeedSkipCode, parseFeedLine } from '../../../src/modules/ioc/feed/feed-line';

/** Compact view of a result: "entry 1.2.3.4/32 | comment", "skip TOO_BROAD", "blank", "comment". */
function show(r: FeedLineResult): string {
  switch (r.type) {
    case 'entry':
      return `entry ${r.cidrs.map((c) => c.text).join(',')}${r.normalized ? ' (normalized)' : ''}${r.comment ? ` | ${r.comment}` : ''}`;
    case 'skip':
      return `skip ${r.code}`;
    default:
      return r.type;
  }
}

describe('parseFeedLine', () => {
  test.each<[string, string, string]>([
    // format, line, expected
    ['empty', '', 'blank'],
    ['spaces only (maltrail)', '    ', 'blank'],
    ['tab only', '\t', 'blank'],
    ['firehol header', '# ipv4 hash:net ipset', 'comment'],
    ['firehol bare comment', '#', 'comment'],
    ['spamhaus header', '; Spamhaus DROP List 2023/02/20 - (c) 2023 The Spamhaus Project', 'comment'],
    ['indented comment', '   # note', 'comment'],
    ['firehol IP', '1.10.16.0', 'entry 1.10.16.0/32'],
    ['firehol CIDR', '1.19.0.0/16', 'entry 1.19.0.0/16'],
    ['firehol bogon /8', '0.0.0.0/8', 'entry 0.0.0.0/8'],
    ['firehol too broad', '224.0.0.0/3', 'skip TOO_BROAD'],
    ['spamhaus DROP', '1.10.16.0/20 ; SBL256894', 'entry 1.10.16.0/20 | SBL256894'],
    ['spamhaus DROPv6 trailing space', '2a12:2640::/29 ', 'entry 2a12:2640::/29'],
    ['ipsum', '185.224.128.17\t10', 'entry 185.224.128.17/32 | count 10'],
    ['maltrail', '129.82.138.12 # pinger1a.netsec.colostate.edu', 'entry 129.82.138.12/32 | pinger1a.netsec.colostate.edu'],
    ['maltrail many spaces', '129.82.138.12     # host', 'entry 129.82.138.12/32 | host'],
    ['maltrail tab + stray tab', '80.82.78.27\t# scanner.openportstats.com\t', 'entry 80.82.78.27/32 | scanner.openportstats.com'],
    ['maltrail IPv6', '2400:6180:0:d0::1008:2001 # binaryedge.ninja', 'entry 2400:6180:0:d0::1008:2001/128 | binaryedge.ninja'],
    ['maltrail cidr', '104.131.64.0/18 # binaryedge.ninja', 'entry 104.131.64.0/18 | binaryedge.ninja'],
    ['maltrail typo', 'C91.196.152.28 # probe.onyphe.net', 'skip NOT_AN_ADDRESS'],
    ['maltrail non-IP trail', '/w00tw00t.at.ISC.SANS.DFind:)', 'skip NOT_AN_ADDRESS'],
    ['maltrail non-IP trail 2', '/w00tw00t.at.blackhats.romanian.anti-sec:)', 'skip NOT_AN_ADDRESS'],
    ['non-canonical CIDR', '10.1.2.3/8', 'entry 10.0.0.0/8 (normalized)'],
    ['uppercase IPv6', '2001:DB8::/32', 'entry 2001:db8::/32'],
    ['IPv6 too broad', '2000::/3', 'skip TOO_BROAD'],
    ['range', '10.0.0.0-10.0.0.255 # office', 'entry 10.0.0.0/24 | office'],
    ['range split', '10.0.0.1-10.0.0.2', 'entry 10.0.0.1/32,10.0.0.2/32'],
    ['range too broad', '0.0.0.0-255.255.255.255', 'skip TOO_BROAD'],
    ['range reversed', '10.0.0.9-10.0.0.1', 'skip INVALID_RANGE'],
    ['bad prefix', '1.2.3.4/33', 'skip INVALID_PREFIX'],
    ['leading-zero octet', '010.1.2.3', 'skip NOT_AN_ADDRESS'],
    ['hostname', 'evil.example.com', 'skip NOT_AN_ADDRESS'],
    ['leading whitespace', '  \t1.2.3.4', 'entry 1.2.3.4/32'],
    ['CR left over', '1.2.3.4\r', 'entry 1.2.3.4/32'],
    ['extra words kept', '1.2.3.4 seen twice # x', 'entry 1.2.3.4/32 | seen twice x'],
    ['first of # and ;', '1.2.3.4 ; a # b', 'entry 1.2.3.4/32 | a # b'],
    ['empty comment', '1.2.3.4 #', 'entry 1.2.3.4/32'],
    ['comment glued', '1.2.3.4#x', 'entry 1.2.3.4/32 | x'],
    // Hosts files name their indicators: the sink address is no entry (an IP list skips the line).
    ['hosts block line', '0.0.0.0 ads.example.com', 'skip HOSTS_ENTRY'],
    ['hosts loopback, tab', '127.0.0.1\tlocalhost', 'skip HOSTS_ENTRY'],
    ['hosts IPv6 loopback', '::1 ip6-localhost ip6-loopback', 'skip HOSTS_ENTRY'],
    ['hosts line with a comment', '0.0.0.0 tracker.example # ad', 'skip HOSTS_ENTRY'],
    ['a sink alone stays an entry', '0.0.0.0', 'entry 0.0.0.0/32'],
    ['a sink with only a comment', '127.0.0.1 # loopback', 'entry 127.0.0.1/32 | loopback'],
    ['a sink with a count (ipsum)', '0.0.0.0\t3', 'entry 0.0.0.0/32 | count 3'],
    ['another address with a name stays an entry', '1.2.3.4 evil.example', 'entry 1.2.3.4/32 | evil.example'],
  ])('%s: %j -> %s', (_format, line, expected) => {
    expect(show(parseFeedLine(line))).toBe(expected);
  });

  test('skip reasons name the token', () => {
    const r = parseFeedLine('C91.196.152.28 # probe.onyphe.net');
    expect(r).toEqual({ type: 'skip', code: FeedSkipCode.NOT_AN_ADDRESS, reason: "'C91.196.152.28' is not an IP address or CIDR" });
    expect(parseFeedLine('224.0.0.0/3')).toMatchObject({ reason: expect.stringMatching(/too broad/) });
    expect(parseFeedLine('0.0.0.0 ads.example.com')).toEqual({
      type: 'skip',
      code: FeedSkipCode.HOSTS_ENTRY,
      reason: "a hosts-file line: the name 'ads.example.com' is the indicator, 0.0.0.0 only where it is sent (import the file into a DOMAIN list)",
    });
  });

  test('limits are options', () => {
    expect(show(parseFeedLine('224.0.0.0/3', { minPrefixV4: 0 }))).toBe('entry 224.0.0.0/3');
    const code = FeedSkipCode.TOO_BROAD;
    expect(parseFeedLine('10.0.0.0/12', { minPrefixV4: 16 })).toMatchObject({ type: 'skip', code });
  });
});
