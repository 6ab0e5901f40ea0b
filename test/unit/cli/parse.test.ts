import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { runCli } from '../../../src/cli';
import { CliRun, runCaptured, sink } from '../../helpers/cli';
import { createDirectionClassifier } from '../../../src/modules/log-upload/flows/direction';
import { parseLines, Protocol } from '../../../src/modules/log-upload/parsing';

const ROOT = path.resolve(__dirname, '../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/tcpdump');
const ascii = (name: string) => path.join(FIXTURES, 'ascii', name);
const HEADER = 'ts\tsrc\tsport\tdst\tdport\tfamily\tproto\tlength\tdirection\n';
/** The sample line of the original product page. */
const SEED = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\n';

function parse(args: string[], options: { stdin?: string | Buffer; slow?: boolean } = {}): Promise<CliRun> {
  const stdin = new PassThrough();
  stdin.end(options.stdin ?? '');
  // A slow reader with a small buffer makes the command wait for 'drain'.
  return runCaptured(['parse', ...args], { stdin, stdout: sink({ slow: options.slow }) });
}

/** The rows the command must print, from the parser's plain rows (an independent formatting path). */
function expectedRows(text: string | Buffer, internal: string[] = []): string {
  const c = createDirectionClassifier(internal);
  return parseLines(text)
    .rows.map((r) =>
      [
        r.ts,
        r.src,
        r.srcPort ?? '',
        r.dst,
        r.dstPort ?? '',
        r.family,
        Protocol[r.protocol],
        r.length,
        c.isInternal(r.src) && !c.isInternal(r.dst) ? 'OUTBOUND' : 'INBOUND',
      ].join('\t'),
    )
    .map((line) => `${line}\n`)
    .join('');
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-cli-parse-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, content: string | Buffer) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
};

describe('pcap-defense parse', () => {
  it('prints the product page sample line as one row', async () => {
    const r = await parse([file('seed.txt', SEED)]);
    expect(r).toEqual({
      code: 0,
      stdout: `${HEADER}1517931955.781702\t10.0.2.2\t53231\t192.1.2.3\t80\tIP\tTCP\t0\tOUTBOUND\n`,
      stderr: `${path.join(tmp, 'seed.txt')}: 1 lines, 1 packets, 0 skipped\n`,
    });
  });

  it('prints exact rows for a fixture, direction by RFC 1918 and --internal', async () => {
    const f = ascii('dns_udp.pcap.txt');
    const r = await parse([f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      HEADER +
        '1591780794.740079\t192.168.1.11\t43966\t209.87.249.18\t53\tIP\tUNKNOWN\t0\tOUTBOUND\n' +
        '1591780794.870361\t209.87.249.18\t53\t192.168.1.11\t43966\tIP\tUNKNOWN\t0\tINBOUND\n',
    );
    expect(r.stderr).toBe(`${f}: 2 lines, 2 packets, 0 skipped\n`);
    // Both ends internal: INBOUND (the product's default).
    const both = await parse([f, '--internal', '209.87.0.0/16']);
    expect(
      both.stdout
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split('\t')[8]),
    ).toEqual(['INBOUND', 'INBOUND']);
  });

  it('prints IPv6 rows with empty ports, and takes several --internal lists', async () => {
    const f = ascii('icmpv6.pcap.txt');
    const r = await parse([f, '--internal', '192.0.2.0/24,fe80::/10', '--internal', '2001:db8::/32']);
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n');
    expect(rows[0]).toBe(HEADER.trimEnd());
    expect(rows[1]).toBe('1334319972.631155\tfe80::b299:28ff:fec8:d66c\t\tff02::1\t\tIP6\tICMP6\t176\tOUTBOUND');
    expect(rows[2]).toBe('1358571247.748985\tfe80::215:17ff:fecc:e546\t\tff02::16\t\tIP6\tICMP6\t28\tOUTBOUND');
    expect(rows).toHaveLength(7); // header, 5 rows, final newline
    expect((await parse([f])).stdout.split('\n')[1].endsWith('\tINBOUND')).toBe(true);
  });

  it('summarises skipped lines by reason on stderr, with the first samples', async () => {
    const f = ascii('ipv6-bad-version.pcap.txt');
    const r = await parse([f]);
    expect(r.stdout).toBe(
      HEADER +
        '1383923701.278565\t::\t\tff02::1:ff76:6c14\t\tIP6\tICMP6\t24\tINBOUND\n' +
        '1383923702.391170\t::\t\tff02::1:ff76:6c14\t\tIP6\tICMP6\t24\tINBOUND\n',
    );
    expect(r.stderr).toBe(
      `${f}: 4 lines, 2 packets, 2 skipped (MALFORMED_ADDRESS 2)\n` +
        '  line 2: MALFORMED_ADDRESS: 1383923701.279230 IP6 version error: 0 != 6\n' +
        '  line 4: MALFORMED_ADDRESS: 1383923702.391739 IP6 version error: 0 != 6\n',
    );
  });

  it('gunzips a gzip file transparently (by its magic, not its name) and reads stdin with -', async () => {
    const text = fs.readFileSync(ascii('timestamp_invalid_micro.pcap.txt'));
    const plain = await parse([ascii('timestamp_invalid_micro.pcap.txt')]);
    const gz = file('capture.dat', zlib.gzipSync(text));
    const r = await parse([gz]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(plain.stdout);
    expect(r.stdout).toBe(`${HEADER}1418145369.999999\t131.155.215.69\t46656\t137.116.81.94\t80\tIP\tTCP\t0\tINBOUND\n`);
    expect(r.stderr.split('\n')[0]).toBe(`${gz}: 3 lines, 1 packets, 2 skipped (NO_TIMESTAMP 2)`);
    expect(r.stderr).toContain('  line 3: NO_TIMESTAMP: 1418145370.2147483648 IP 131.155.215.69.46656');
    const piped = await parse(['-'], { stdin: zlib.gzipSync(text) });
    expect(piped.stdout).toBe(plain.stdout);
    expect(piped.stderr.split('\n')[0]).toBe('stdin: 3 lines, 1 packets, 2 skipped (NO_TIMESTAMP 2)');
  });

  it('prints the same rows as the parser for every fixture and -e/-q/-v variant', async () => {
    const files = [
      ...fs.readdirSync(path.join(FIXTURES, 'ascii')).map((n) => path.join(FIXTURES, 'ascii', n)),
      ...fs
        .readdirSync(path.join(FIXTURES, 'variants'))
        .filter((n) => !n.includes('n_UTC'))
        .map((n) => path.join(FIXTURES, 'variants', n)),
    ];
    expect(files.length).toBeGreaterThan(40);
    for (const f of files) {
      const r = await parse([f, '--internal', '198.18.0.0/15']);
      expect({ f, code: r.code, stdout: r.stdout }).toEqual({ f, code: 0, stdout: HEADER + expectedRows(fs.readFileSync(f), ['198.18.0.0/15']) });
    }
  });

  it('streams a file larger than its read chunks, lines straddling them, through a slow reader', async () => {
    const lines = [SEED, fs.readFileSync(ascii('icmpv6.pcap.txt'), 'utf8'), fs.readFileSync(ascii('ipv6-bad-version.pcap.txt'), 'utf8'), 'not a packet\n'];
    let text = '';
    for (let i = 0; text.length < 3_500_000; i++) text += lines[i % lines.length];
    text += SEED.trimEnd(); // a last line without newline
    const r = await parse([file('big.txt', text)], { slow: true });
    expect(r.code).toBe(0);
    const expected = HEADER + expectedRows(text);
    expect(r.stdout.length).toBe(expected.length);
    expect(r.stdout === expected).toBe(true);
    const stats = parseLines(text).stats;
    expect(r.stderr.split('\n')[0]).toBe(
      `${path.join(tmp, 'big.txt')}: ${stats.lines} lines, ${stats.packets} packets, ${stats.lines - stats.packets} skipped ` +
        `(NO_TIMESTAMP ${stats.skipped.NO_TIMESTAMP}, MALFORMED_ADDRESS ${stats.skipped.MALFORMED_ADDRESS})`,
    );
  });

  it('exits 1 with the -tt message and prints no rows for a capture without -tt', async () => {
    const f = path.join(FIXTURES, 'variants/dns_udp.pcap.n_UTC.txt');
    const r = await parse([f]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `pcap-defense parse: ${f}: The file has 2 packet line(s) with a time of day but no date. ` +
        'Print epoch timestamps: run tcpdump with -tt -n (e.g. `tcpdump -tt -n -r capture.pcap > capture.txt`).\n',
    });
    // A large one is refused after its first lines, a few stray epoch lines among them printing nothing either.
    const noTt = fs.readFileSync(f, 'utf8');
    const big = file('no-tt.txt', `${SEED}${noTt.repeat(30_000)}`);
    const r2 = await parse([big]);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toBe('');
    // One under a chunk (1 MB) is read whole: its counts are all of it.
    const short = await parse([file('no-tt-short.txt', `${SEED}${noTt.repeat(1_000)}`)]);
    expect(short.code).toBe(1);
    expect(short.stdout).toBe('');
    expect(short.stderr).toMatch(/^pcap-defense parse: .*no-tt-short\.txt: The file has \d+ packet line\(s\) with a time of day but no date\. /);
    // Its counts are of the lines read, and the message says so.
    expect(r2.stderr).toMatch(
      /^pcap-defense parse: .*no-tt\.txt: The file's first \d+ lines have \d+ packet line\(s\) with a time of day but no date \(it was read no further\)/,
    );
  });

  it('exits 1 for a binary pcap (with the conversion), binary data and a broken gzip', async () => {
    const pcap = await parse([file('x.pcap', Buffer.from('d4c3b2a102000400000000000000000000000400010000000000000000000000', 'hex'))]);
    expect(pcap.code).toBe(1);
    expect(pcap.stdout).toBe('');
    expect(pcap.stderr).toContain('is a binary pcap capture, not tcpdump text; convert it first: tcpdump -tt -n -r FILE > FILE.txt');
    const binary = await parse([file('x.bin', Buffer.from([0x31, 0x00, 0xff, 0x10]))]);
    expect(binary.code).toBe(1);
    expect(binary.stderr).toContain('is not text');
    const broken = await parse([file('x.gz', zlib.gzipSync(SEED.repeat(1000)).subarray(0, 40))]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('starts like gzip but does not decompress');
  });

  it('prints only the header for an empty file', async () => {
    const f = file('empty.txt', '');
    expect(await parse([f])).toEqual({ code: 0, stdout: HEADER, stderr: `${f}: 0 lines, 0 packets, 0 skipped\n` });
  });

  it.each([
    [[], 'give exactly one FILE'],
    [['a', 'b'], 'give exactly one FILE'],
    [['/does/not/exist'], 'cannot read /does/not/exist'],
    [[ROOT], 'is a directory'],
    [['-', '--internal', '10.0.0.0/33'], '--internal: Invalid internal network'],
    [['-', '--nope'], "Unknown option '--nope'"],
  ])('exits 2 on wrong usage: %j', async (args, message) => {
    const r = await parse(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('Usage: pcap-defense parse FILE|- [--internal CIDR,...]');
  });

  it('stops quietly when the reader goes away (EPIPE)', async () => {
    let writes = 0;
    const stdout = new Writable({
      write(_chunk, _enc, done) {
        writes++;
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const stderr = sink();
    const code = await runCli(['parse', file('epipe.txt', SEED.repeat(100_000))], { stdout, stderr, env: {} });
    expect(code).toBe(0);
    expect(writes).toBe(1);
    expect(stderr.text).toBe('');
  });

  it('works at the end of a real pipe: `pcap-defense parse FILE | head -2`', async () => {
    const big = file('pipe.txt', SEED.repeat(200_000));
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        'bash',
        ['-c', 'set -o pipefail; node -r @swc-node/register src/cli/index.ts parse "$1" | head -2', 'sh', big],
        { cwd: ROOT },
        (error, stdout, stderr) => (error ? reject(Object.assign(error, { stderr })) : resolve({ stdout, stderr })),
      ),
    );
    expect(r.stdout).toBe(`${HEADER}1517931955.781702\t10.0.2.2\t53231\t192.1.2.3\t80\tIP\tTCP\t0\tOUTBOUND\n`);
    expect(r.stderr).toBe('');
  });
});
