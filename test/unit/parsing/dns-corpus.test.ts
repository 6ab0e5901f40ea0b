// DNS extraction against the independent reference (../shared/corpus/dns, RULES.md): every capture of the tcpdump
// corpus gives exactly dns/expected/NAME.tsv (no rows when there is none); a slice copied to test/fixtures/dns always runs.
import fs from 'node:fs';
import path from 'node:path';
import { batchRows, PacketBatch } from '../../../src/modules/log-upload/parsing/packet-batch';
import { TcpdumpParser } from '../../../src/modules/log-upload/parsing/tcpdump-parser';
import { DnsSkipReason } from '../../../src/modules/log-upload/parsing/dns-text';

const SHARED = path.resolve(__dirname, '../../../..', 'shared/corpus');
const FIXTURES = path.resolve(__dirname, '../../fixtures/dns');

/** The reference's 15 columns for the DNS rows of one capture's text, fed in chunks of `chunk` bytes. */
export function dnsRowsOf(text: Buffer, chunk = 1 << 16): string[] {
  const parser = new TcpdumpParser({ dns: true });
  const out: string[] = [];
  const take = (batch: PacketBatch) => {
    const rows = batchRows(batch);
    for (const d of parser.takeDnsRows()) {
      const r = rows[d.packet];
      const answers = d.kind === 'response' ? JSON.stringify(d.answers) : '';
      out.push(
        [
          r.ts,
          r.src,
          r.srcPort ?? '',
          r.dst,
          r.dstPort ?? '',
          r.family,
          d.id,
          d.kind,
          d.qtype,
          d.qname,
          answers,
          d.via,
          d.rcode,
          d.counts,
          d.truncated ? 'yes' : 'no',
        ].join('\t'),
      );
    }
  };
  for (let i = 0; i < text.length; i += chunk) take(parser.push(text.subarray(i, i + chunk)));
  take(parser.end());
  return out;
}

function expectedOf(dir: string, name: string): string[] {
  const file = path.join(dir, `${name}.tsv`);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

function describeCorpus(label: string, asciiDir: string, expectedDir: string, minRows: number): void {
  describe(label, () => {
    const names = fs
      .readdirSync(asciiDir)
      .filter((f) => f.endsWith('.txt'))
      .map((f) => f.slice(0, -4))
      .sort();
    test('every capture gives exactly its expected/ rows (none when it has no file)', () => {
      let rows = 0;
      const problems: string[] = [];
      for (const name of names) {
        const text = fs.readFileSync(path.join(asciiDir, `${name}.txt`));
        const want = expectedOf(expectedDir, name);
        const got = dnsRowsOf(text);
        rows += want.length;
        if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${name}:\n  got  ${got.join('\n       ')}\n  want ${want.join('\n       ')}`);
      }
      console.log(`${label}: ${names.length} captures, ${rows} reference DNS rows, ${names.length - problems.length} captures reproduce expected/`);
      expect(problems.slice(0, 5)).toEqual([]);
      expect(rows).toBeGreaterThanOrEqual(minRows);
    });

    test('the rows do not depend on where the chunks split the lines', () => {
      for (const name of names.filter((n) => expectedOf(expectedDir, n).length > 0)) {
        const text = fs.readFileSync(path.join(asciiDir, `${name}.txt`));
        expect(dnsRowsOf(text, 7)).toEqual(expectedOf(expectedDir, name));
      }
    });
  });
}

describeCorpus('fixtures (test/fixtures/dns)', path.join(FIXTURES, 'ascii'), path.join(FIXTURES, 'expected'), 35);

if (fs.existsSync(path.join(SHARED, 'dns', 'RULES.md'))) {
  describeCorpus('shared corpus (../shared/corpus/dns)', path.join(SHARED, 'tcpdump', 'ascii'), path.join(SHARED, 'dns', 'expected'), 31);
} else if (process.env.CI === 'true') {
  test('the shared corpus is present under CI', () => {
    throw new Error(`CI=true but ${SHARED}/dns/RULES.md is missing: the DNS corpus test must run in CI`);
  });
} else {
  test.skip(`shared DNS corpus not found at ${SHARED}`, () => undefined);
  console.log(`DNS corpus test SKIPPED: ${SHARED}/dns is absent (CI=true fails instead)`);
}

/** `-e` and `-v` prints of a capture (NAME.pcap.tt_n_e.txt ...) beside its -tt -n print, for the captures with DNS rows. */
function describeVariants(label: string, variantsDir: string, expectedDir: string): void {
  const files = fs.existsSync(variantsDir) ? fs.readdirSync(variantsDir).filter((f) => /\.tt_n_[ev]\.txt$/.test(f)) : [];
  const withRows = files.filter((f) => expectedOf(expectedDir, f.replace(/\.tt_n_[ev]\.txt$/, '')).length > 0);
  if (withRows.length === 0) return;
  test.each(withRows)(`${label}: %s gives the -tt -n print's DNS rows`, (f) => {
    const got = dnsRowsOf(fs.readFileSync(path.join(variantsDir, f)));
    const want = expectedOf(expectedDir, f.replace(/\.tt_n_[ev]\.txt$/, ''));
    expect(got).toEqual(want);
  });
}

describeVariants('fixtures', path.join(FIXTURES, 'variants'), path.join(FIXTURES, 'expected'));
if (fs.existsSync(path.join(SHARED, 'dns', 'RULES.md')))
  describeVariants('shared corpus', path.join(SHARED, 'tcpdump', 'variants'), path.join(SHARED, 'dns', 'expected'));

describe('DNS extraction', () => {
  const row = (line: string) => dnsRowsOf(Buffer.from(`${line}\n`));

  test('off by default: the parser reads no DNS and the packet rows are the same', () => {
    const text = fs.readFileSync(path.join(FIXTURES, 'ascii', 'synthetic-dns.txt'));
    const off = new TcpdumpParser();
    const on = new TcpdumpParser({ dns: true });
    const a = off.push(text);
    const b = on.push(text);
    expect(off.takeDnsRows()).toEqual([]);
    expect(off.dnsStats.lines).toBe(0);
    expect(on.takeDnsRows().length).toBeGreaterThan(0);
    expect(batchRows(a)).toEqual(batchRows(b));
    expect(off.stats).toEqual(on.stats);
  });

  test.each([
    ['LLMNR (5355) is not DNS for tcpdump', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.5355: 1+ A? x.example. (30)'],
    ['DNS on another port is not DNS', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.8053: 1+ A? x.example. (30)'],
    ['mDNS over TCP is not DNS', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.5353: Flags [P.], seq 1:30, ack 1, win 5, length 29 1+ A? x.example. (27)'],
    ['a TCP segment without payload', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: Flags [.], ack 1, win 5, length 0'],
    [
      'a bad TCP length prefix',
      '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: Flags [P.], seq 1:30, ack 1, win 5, length 29 [prefix length(12) != length(27)] (invalid)',
    ],
    ['no end marker', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 1+ A? x.example.'],
    ['a query id over 16 bits', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 70000+ A? x.example. (30)'],
    ['text after the id that is no header', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 1 hello world (30)'],
    ['a name without its trailing dot', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 1+ A? x.example (30)'],
    ['an empty label', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 1+ A? x..example. (30)'],
    ['a TypeN beyond 16 bits', '1.000000 IP 10.0.0.5.40005 > 10.0.0.1.53: 1+ Type1234567890123456? x.example. (30)'],
  ])('%s: no row, never a throw', (_label, line) => {
    expect(row(line)).toEqual([]);
  });

  test('-v over IPv6: the UDP checksum note before the DNS text is skipped', () => {
    const head = '1.000000 IP6 (hlim 64, next-header UDP (17) payload length: 37) 2001:db8::1.12345 > 2620:fe::9.53: ';
    expect(row(`${head}[udp sum ok] 4660+ A? example.com. (29)`)[0].split('\t').slice(6, 10)).toEqual(['4660', 'query', 'A', 'example.com']);
    expect(row(`${head}[bad udp cksum 0x1234 -> 0x5678!] 4661+ A? example.com. (29)`)).toHaveLength(1);
  });

  test('-v answers carry their owner names: dropped, the records split as at -v0', () => {
    const [r] = row('1.000000 IP 10.0.0.1.53 > 10.0.0.5.1: 7*- 2/0/0 www.example.com. CNAME Cdn.Example.NET., cdn.example.net. A 192.0.2.1 (90)');
    expect(JSON.parse(r.split('\t')[10])).toEqual(['CNAME cdn.example.net', 'A 192.0.2.1']);
  });

  test('skipped DNS text is counted by reason', () => {
    const parser = new TcpdumpParser({ dns: true });
    const lines = [
      '1.000000 IP 10.0.0.5.1 > 10.0.0.1.53: domain [length 0 < 12] (invalid)',
      '1.000000 IP 10.0.0.5.1 > 10.0.0.1.53: 1+ A? ' + 'a'.repeat(64) + '.example. (30)',
      '1.000000 IP 10.0.0.5.1 > 10.0.0.1.53: 1+ A? ' + Array(5).fill('a'.repeat(60)).join('.') + '. (30)',
      '1.000000 IP 10.0.0.5.1 > 10.0.0.1.53: 1+ A? caf\u00e9.example. (30)',
      '1.000000 IP 10.0.0.5.1 > 10.0.0.1.53: 1+ A? ok.example. (30)',
    ];
    parser.push(Buffer.from(lines.join('\n') + '\n', 'utf8'));
    parser.end();
    expect(parser.takeDnsRows().map((d) => d.qname)).toEqual(['ok.example']);
    expect(parser.dnsStats.lines).toBe(5);
    expect(parser.dnsStats.queries).toBe(1);
    expect(parser.dnsStats.skipped[DnsSkipReason.NOT_DNS_TEXT]).toBe(1);
    expect(parser.dnsStats.skipped[DnsSkipReason.QNAME_MALFORMED]).toBe(2);
    expect(parser.dnsStats.skipped[DnsSkipReason.QNAME_NON_ASCII]).toBe(1);
    expect(parser.dnsStats.skipped[DnsSkipReason.NO_COMPLETE_QUESTION]).toBe(3);
  });

  test('an answer name beyond DNS limits gives its type alone, as a cut one', () => {
    const [r] = row(`1.000000 IP 10.0.0.1.53 > 10.0.0.5.1: 7 3/0/0 CNAME ${'a'.repeat(64)}.example., PTR ${'a.'.repeat(127)}example., CNAME ok.example. (90)`);
    expect(JSON.parse(r.split('\t')[10])).toEqual(['CNAME', 'PTR', 'CNAME ok.example']);
  });

  test('answer records: class words and the mDNS cache-flush marker are dropped, names normalised, other data verbatim', () => {
    const [r] = row(
      '1.000000 IP 10.0.0.1.53 > 10.0.0.5.1: 7 5/0/0 CHAOS TXT "a,b" "c", (Cache flush) PTR Host.Local., DNAME X.Example., URI 10 5 http://www.dns.test:8000, RRSIG (99)',
    );
    expect(JSON.parse(r.split('\t')[10])).toEqual(['TXT "a,b" "c"', 'PTR host.local', 'DNAME x.example', 'URI 10 5 http://www.dns.test:8000', 'RRSIG']);
  });
});
