import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CliRun, runCaptured, sink } from '../../helpers/cli';

const DNS = path.resolve(__dirname, '../../fixtures/dns');
const HEADER = 'ts\tsrc\tsport\tdst\tdport\tfamily\tid\tkind\tqtype\tqname\tanswers\tvia\trcode\tcounts\ttrunc';

function parse(args: string[]): Promise<CliRun> {
  const stdin = new PassThrough();
  stdin.end('');
  return runCaptured(['parse', ...args], { stdin, stdout: sink() });
}

describe('pcap-defense parse --dns', () => {
  test.each(['synthetic-dns', 'dns_tcp.pcap', 'dns_udp_2.pcap', 'ipv6_invalid_length_2.pcap'])(
    '%s: the header, then exactly the reference rows',
    async (name) => {
      const r = await parse(['--dns', path.join(DNS, 'ascii', `${name}.txt`)]);
      expect(r.code).toBe(0);
      const want = fs.readFileSync(path.join(DNS, 'expected', `${name}.tsv`), 'utf8');
      expect(r.stdout).toBe(`${HEADER}\n${want}`);
      for (const line of r.stdout.split('\n').filter(Boolean)) expect(line.split('\t')).toHaveLength(15);
    },
  );

  test('--json adds the DNS counts to the summary', async () => {
    const r = await parse(['--dns', '--json', path.join(DNS, 'ascii', 'synthetic-dns.txt')]);
    const summary = JSON.parse(r.stderr.trim().split('\n').pop() as string);
    expect(summary.dns).toEqual({
      lines: 23,
      queries: 8,
      responses: 9,
      skippedByReason: { NOT_DNS_TEXT: 1, NO_COMPLETE_QUESTION: 5, QNAME_MALFORMED: 4, QNAME_NON_ASCII: 1 },
    });
  });

  test('without --dns the packet rows are printed as before', async () => {
    const r = await parse([path.join(DNS, 'ascii', 'dns_tcp.pcap.txt')]);
    expect(r.stdout.split('\n')[0]).toBe('ts\tsrc\tsport\tdst\tdport\tfamily\tproto\tlength\tdirection');
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(12);
  });
});
