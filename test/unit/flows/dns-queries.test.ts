import zlib from 'node:zlib';
import { parseStoredFile, StoredFile } from '../../../src/modules/log-upload/parse-thread/parse-stored-file';
import { MAX_ANSWERS } from '../../../src/modules/log-upload/flows/dns-queries';

/** A synthetic capture (tcpdump 4.99.3, -tt -n) with the shapes DNS hits are made from. */
const CAPTURE = [
  // An inside host asks twice for the same name and type (two ids): one group, count 2, both answers kept.
  '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 4242+ A? WWW.Evil.Example. (34)',
  '1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 4242 2/0/0 CNAME cdn.evil-cdn.net., A 198.51.100.7 (80)',
  '1709287260.000000 IP 10.0.0.5.40001 > 8.8.8.8.53: 4243+ A? www.evil.example. (34)',
  '1709287260.010000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 2/0/0 A 198.51.100.7, A 198.51.100.8 (66)',
  // Two questions in one query: the response's answers go to both groups; MX is not kept.
  '1709287300.000000 IP 10.0.0.5.40002 > 8.8.8.8.53: 4244+ [2q] A? a.example. AAAA? b.example. (50)',
  '1709287300.001000 IP 8.8.8.8.53 > 10.0.0.5.40002: 4244 2/0/0 AAAA 2001:db8::1, MX mail.example. 10 (90)',
  // A response whose id or hosts match no query answers nothing.
  '1709287300.002000 IP 8.8.8.8.53 > 10.0.0.6.40002: 4244 1/0/0 A 192.0.2.99 (50)',
  '1709287300.003000 IP 8.8.4.4.53 > 10.0.0.5.40002: 4244 1/0/0 A 192.0.2.98 (50)',
  // An outside host asks our server: INBOUND; IPv6 client.
  '1709287400.000000 IP 203.0.113.9.5000 > 10.0.0.53.53: 7+ A? evil.example. (30)',
  '1709287500.000000 IP6 2001:db8::5.5000 > 2001:db8::53.53: 8+ AAAA? evil.example. (30)',
  // TCP ack without DNS text: no row.
  '1709287600.000000 IP 10.0.0.5.40010 > 8.8.8.8.53: Flags [.], ack 1, win 502, length 0',
].join('\n');

function file(text: string, dns: boolean): StoredFile {
  return { encoding: 'gzip', blobs: [zlib.gzipSync(Buffer.from(`${text}\n`))], internalNetworks: [], ownAddress: null, dns };
}

async function groups(text: string, dns = true) {
  const out = await parseStoredFile(file(text, dns), () => true);
  if (out.kind !== 'parsed') throw new Error(out.kind);
  return out;
}

describe('DNS question groups of a stored upload', () => {
  it('groups questions by querying host, name and type, with count, first/last seen, direction and the answers to their ids', async () => {
    const out = await groups(CAPTURE);
    expect(out.dnsQueries).toEqual([
      {
        clientIp: '10.0.0.5',
        direction: 'OUTBOUND',
        qname: 'www.evil.example',
        qtype: 'A',
        count: 2,
        firstMicros: 1709287200000000,
        lastMicros: 1709287260000000,
        answers: ['CNAME cdn.evil-cdn.net', 'A 198.51.100.7', 'A 198.51.100.8'],
      },
      {
        clientIp: '10.0.0.5',
        direction: 'OUTBOUND',
        qname: 'a.example',
        qtype: 'A',
        count: 1,
        firstMicros: 1709287300000000,
        lastMicros: 1709287300000000,
        answers: ['AAAA 2001:db8::1'],
      },
      {
        clientIp: '10.0.0.5',
        direction: 'OUTBOUND',
        qname: 'b.example',
        qtype: 'AAAA',
        count: 1,
        firstMicros: 1709287300000000,
        lastMicros: 1709287300000000,
        answers: ['AAAA 2001:db8::1'],
      },
      {
        clientIp: '203.0.113.9',
        direction: 'INBOUND',
        qname: 'evil.example',
        qtype: 'A',
        count: 1,
        firstMicros: 1709287400000000,
        lastMicros: 1709287400000000,
        answers: [],
      },
      {
        clientIp: '2001:db8::5',
        direction: 'INBOUND',
        qname: 'evil.example',
        qtype: 'AAAA',
        count: 1,
        firstMicros: 1709287500000000,
        lastMicros: 1709287500000000,
        answers: [],
      },
    ]);
    // The connections are folded as without DNS.
    const without = await groups(CAPTURE, false);
    expect(without.dnsQueries).toEqual([]);
    expect(out.connections.length).toBe(without.connections.length);
  });

  it('keeps at most MAX_ANSWERS distinct answers per group', async () => {
    const many = Array.from({ length: MAX_ANSWERS + 4 }, (_, i) => `A 192.0.2.${i}`).join(', ');
    const out = await groups(
      [
        '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ A? cdn.example. (30)',
        `1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 1 ${MAX_ANSWERS + 4}/0/0 ${many} (400)`,
      ].join('\n'),
    );
    expect(out.dnsQueries[0].answers).toEqual(Array.from({ length: MAX_ANSWERS }, (_, i) => `A 192.0.2.${i}`));
  });

  it('keeps no A or AAAA record whose data is no address', async () => {
    const out = await groups(
      [
        '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ A? cdn.example. (30)',
        `1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 1 4/0/0 A ${'x'.repeat(5000)}, AAAA evil, A 192.0.2.1, AAAA 2001:db8::1 (400)`,
      ].join('\n'),
    );
    expect(out.dnsQueries[0].answers).toEqual(['A 192.0.2.1', 'AAAA 2001:db8::1']);
  });

  it('gives each question of a query the first MAX_ANSWERS distinct answers of its responses, in order, whatever their number', async () => {
    // Thousands of questions answered by thousands of records, some repeated: each group as if answered one by one.
    const names = Array.from({ length: 2000 }, (_, i) => `A? n${i % 50}.example.`).join(' ');
    const answers = Array.from({ length: 3000 }, (_, i) => `A 192.0.2.${(i * 7) % 40}`).join(', ');
    const out = await groups(
      [
        '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ A? n0.example. (30)',
        '1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 1 2/0/0 A 192.0.2.21, A 198.51.100.1 (400)',
        `1709287201.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ ${names} (30)`,
        `1709287201.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 1 3000/0/0 ${answers} (400)`,
      ].join('\n'),
    );
    const distinct = [...new Set(Array.from({ length: 3000 }, (_, i) => `A 192.0.2.${(i * 7) % 40}`))];
    expect(out.dnsQueries).toHaveLength(50);
    expect(out.dnsQueries[0]).toMatchObject({ qname: 'n0.example', count: 41 });
    expect(out.dnsQueries[0].answers).toEqual(['A 192.0.2.21', 'A 198.51.100.1', ...distinct.filter((a) => a !== 'A 192.0.2.21').slice(0, MAX_ANSWERS - 2)]);
    expect(out.dnsQueries[1].answers).toEqual(distinct.slice(0, MAX_ANSWERS));
  });
});
