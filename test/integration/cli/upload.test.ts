import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { CliRun as Run, runCaptured } from '../../helpers/cli';
import { loadConfig } from '../../../src/config/config';
import { startServer, RunningServer } from '../../../src/app/server';
import { silentLogger } from '../../../src/app/logger';
import { Role } from '../../../src/modules/account/account.enums';
import { IpType } from '../../../src/modules/device/device.enums';
import { IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';
import { LogUpload } from '../../../src/modules/log-upload/log-upload.entity';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';

const ROOT = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(ROOT, 'scripts/tsupload.sh');
const SEED = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\n';
const DNS = fs.readFileSync(path.join(ROOT, 'test/fixtures/tcpdump/ascii/dns_udp.pcap.txt'), 'utf8');
const ARP = '1517931956.000001 ARP, Request who-has 10.0.2.1 tell 10.0.2.2, length 28\n';
/** 4 lines: the seed (OUTBOUND to a listed address), two DNS packets (one connection, unlisted), ARP. */
const CAPTURE = SEED + DNS + ARP;
const MAX_UPLOAD = 64_000;

const cli = (argv: string[], env: Record<string, string> = {}): Promise<Run> => runCaptured(argv, { env });

describe('pcap-defense upload and scripts/tsupload.sh against a running server', () => {
  let server: RunningServer;
  let dir: string;
  let uploader: string;
  let accountId: number;
  let deviceId: number;

  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const uploadRow = (globalId: string) => server.dataSource.getRepository(LogUpload).findOneByOrFail({ id: idOfType(globalId, 'LogUpload')! });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-cli-upload-'));
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', WORKER_POLL_MS: '20', MAX_UPLOAD_BYTES: String(MAX_UPLOAD) });
    server = await startServer(config, silentLogger());
    const s = server.services;
    const account = await s.accounts.findAccountByName('default');
    accountId = account!.id;
    const policy = await s.policies.create(accountId, { name: 'Sensors' });
    if (!policy.ok) throw new Error('policy');
    const list = await s.iocLists.create(accountId, { name: 'C2', kind: IocListKind.BLOCK, severity: 5, category: IocCategory.C2_BOTNET });
    if (!list.ok) throw new Error('list');
    expect((await s.iocs.add(accountId, list.value.id, [{ value: '192.1.2.0/24' }])).ok).toBe(true);
    expect((await s.policies.attachIocLists(accountId, policy.value.id, [list.value.id])).ok).toBe(true);
    const device = await s.devices.create(accountId, { nickname: 'HQ sensor', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id });
    if (!device.ok) throw new Error(JSON.stringify(device.errors));
    deviceId = device.value.id;
    const key = await s.accounts.createApiKey(accountId, { name: 'capture host', role: Role.UPLOADER });
    if (!key.ok) throw new Error('key');
    uploader = key.value.secret;
  });

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('pcap-defense upload', () => {
    it('uploads with md5 and size, waits for COMPLETED and prints the payload as JSON', async () => {
      const capture = file('capture.txt', CAPTURE);
      const r = await cli(['upload', capture, '--nickname', 'hq sensor', '--url', server.url, '--key', uploader, '--wait', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const payload = JSON.parse(r.stdout);
      expect(payload).toMatchObject({
        duplicate: false,
        userErrors: [],
        logUpload: {
          status: 'COMPLETED',
          error: null,
          fileName: 'capture.txt',
          size: CAPTURE.length,
          md5: crypto.createHash('md5').update(CAPTURE).digest('hex'),
          device: { nickname: 'HQ sensor' },
          lineCount: 4,
          packetLines: 3,
          skippedLines: 1,
          connections: 2,
          inboundConnections: 0,
          outboundConnections: 2,
          hits: 1,
        },
      });
      expect((await uploadRow(payload.logUpload.id)).status).toBe('COMPLETED');
    });

    it('answers the same file from the same device with the earlier upload: duplicate: true', async () => {
      const capture = file('again.txt', CAPTURE);
      const r = await cli(['upload', capture, '--nickname', 'HQ sensor'], { PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: uploader });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^id: \S+\nstatus: COMPLETED\nduplicate: true\n$/);
    });

    it('sends gzip as it is (the server gunzips), names the device by ID, and prints the counts when waiting', async () => {
      const text = `${SEED.replace('.781702', '.781703')}${DNS}`;
      const gz = file('capture.txt.gz', zlib.gzipSync(text));
      const r = await cli(['upload', gz, '--device', toGlobalId('Device', deviceId), '--wait'], { PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: uploader });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        /^id: \S+\nduplicate: false\nstatus: COMPLETED\nlines: 3 \(packets 3, skipped 0\)\nconnections: 2 \(inbound 0, outbound 2\)\nhits: 1\n$/,
      );
      const row = await uploadRow(/^id: (\S+)/.exec(r.stdout)![1]);
      expect(row).toMatchObject({ size: fs.statSync(gz).size, textBytes: text.length });
    });

    it('exits 1 when processing FAILED (a capture without -tt), with the reason', async () => {
      const noTt = file('no-tt.txt', '21:46:16.463334 IP 131.151.32.21.7001 > 131.151.1.59.7000: UDP, length 40\n'.repeat(3));
      const r = await cli(['upload', noTt, '--ip', '93.184.216.34', '--url', server.url, '--key', uploader, '--wait']);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('status: FAILED');
      expect(r.stderr).toMatch(/processing failed: .*-tt -n/);
    });

    it.each([
      ['an unknown device', 'x.txt', CAPTURE, ['--nickname', 'nope'], /NOT_FOUND \(input\.deviceNickname\): No device nicknamed "nope"/],
      [
        'a binary pcap',
        'x.pcap',
        Buffer.from('d4c3b2a102000400000000000000000000000400010000000000000000000000', 'hex'),
        ['--nickname', 'HQ sensor'],
        /UNSUPPORTED_FORMAT .*tcpdump -tt -n -r/,
      ],
      ['an empty file', 'empty.txt', '', ['--nickname', 'HQ sensor'], /EMPTY .*empty/],
    ])('prints userErrors and exits 1 for %s', async (_name, name, content, selector, message) => {
      const r = await cli(['upload', file(name, content), ...selector, '--url', server.url, '--key', uploader]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
    });

    it('keeps the userErrors in the JSON payload with --json', async () => {
      const r = await cli(['upload', file('y.txt', CAPTURE), '--nickname', 'nope', '--url', server.url, '--key', uploader, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ logUpload: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'deviceNickname'] }] });
    });

    it('explains HTTP 413 when the file is over MAX_UPLOAD_BYTES', async () => {
      const big = file('big.txt', SEED.repeat(Math.ceil((MAX_UPLOAD * 2) / SEED.length)));
      const r = await cli(['upload', big, '--nickname', 'HQ sensor', '--url', server.url, '--key', uploader]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`larger than the limit of ${MAX_UPLOAD} bytes; nothing was stored`);
      expect(r.stderr).toContain('Rotate captures more often');
    });

    it('says so when the server is unreachable, refuses the key, or the URL is not the GraphQL endpoint', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as net.AddressInfo;
          probe.close(() => resolve(port));
        });
      });
      const capture = file('z.txt', CAPTURE);
      const down = await cli(['upload', capture, '--nickname', 'HQ sensor', '--url', `http://127.0.0.1:${closedPort}/graphql`, '--key', uploader]);
      expect(down).toMatchObject({ code: 1, stdout: '' });
      expect(down.stderr).toBe(`pcap-defense upload: cannot reach the server at http://127.0.0.1:${closedPort}/graphql: ECONNREFUSED\n`);
      const badKey = await cli(['upload', capture, '--nickname', 'HQ sensor', '--url', server.url, '--key', 'pcd_nope']);
      expect(badKey.code).toBe(1);
      expect(badKey.stderr).toContain('refused the API key (HTTP 401)');
      const wrongPath = await cli(['upload', capture, '--nickname', 'HQ sensor', '--url', server.url.replace(/graphql$/, 'upload'), '--key', uploader]);
      expect(wrongPath.code).toBe(1);
      expect(wrongPath.stderr).toContain("answered HTTP 404; give the server's GraphQL endpoint");
    });

    it.each([
      [['upload', 'f.txt', '--key', 'k'], 'exactly one of --device ID, --nickname NAME or --ip ADDR'],
      [['upload', 'f.txt', '--nickname', 'a', '--ip', '1.2.3.4', '--key', 'k'], 'exactly one of'],
      [['upload', 'f.txt', '--nickname', 'a'], 'give --key KEY or set PCAP_DEFENSE_KEY'],
      [['upload', '--nickname', 'a', '--key', 'k'], 'give exactly one FILE'],
      [['upload', 'f.txt', '--nickname', 'a', '--key', 'k', '--url', 'ftp://x'], '--url must be an http(s) URL'],
      [['upload', '/does/not/exist', '--nickname', 'a', '--key', 'k'], 'cannot read /does/not/exist (ENOENT)'],
      [['upload', 'f.txt', '--nickname', 'a', '--key', 'k', '--bogus'], "Unknown option '--bogus'"],
    ])('exits 2 on wrong usage: %j', async (argv, message) => {
      const r = await cli(argv.map((a) => (a === 'f.txt' ? file('f.txt', CAPTURE) : a)));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain('Usage: pcap-defense upload FILE');
    });
  });

  describe('scripts/tsupload.sh', () => {
    let bin: string;

    beforeAll(() => {
      // A fake tcpdump first on PATH: checks the conversion flags and prints a fixture's text.
      bin = fs.mkdtempSync(path.join(dir, 'bin-'));
      fs.writeFileSync(
        path.join(bin, 'tcpdump'),
        [
          '#!/bin/sh',
          '[ "$1 $2 $3" = "-n -tt -r" ] && [ -f "$4" ] || { echo "fake tcpdump: unexpected arguments: $*" >&2; exit 2; }',
          'echo "reading from file $4, link-type EN10MB (Ethernet), snapshot length 262144" >&2',
          'cat "$FAKE_TCPDUMP_TEXT"',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
    });

    const tsupload = (pcap: string, text: string, env: Record<string, string> = {}) => {
      const tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
      const textFile = file(`${path.basename(pcap)}.fixture`, text);
      // Asynchronous: the server answering the script runs in this process.
      return new Promise<Run & { tmpLeft: string[] }>((resolve) => {
        execFile(
          'bash',
          [SCRIPT, pcap],
          {
            cwd: dir,
            env: {
              PATH: `${bin}:${process.env.PATH}`,
              TMPDIR: tmp,
              FAKE_TCPDUMP_TEXT: textFile,
              PCAP_DEFENSE_URL: server.url,
              PCAP_DEFENSE_KEY: uploader,
              PCAP_DEFENSE_DEVICE: 'HQ sensor',
              ...env,
            },
          },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr, tmpLeft: fs.readdirSync(tmp) }),
        );
      });
    };

    it('converts the rotated capture, uploads it by GraphQL multipart, removes its temp file and the capture', async () => {
      const pcap = file('tspcap.1517931955', 'binary capture stand-in');
      const text = `${SEED.replace('.781702', '.900000')}${DNS}`;
      const r = await tsupload(pcap, text);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^tsupload\\.sh: ${pcap} uploaded \\(${text.length} bytes\\): id \\S+, duplicate false\\n$`));
      expect(r.tmpLeft).toEqual([]);
      expect(fs.existsSync(pcap)).toBe(false);
      const id = /id (\S+),/.exec(r.stdout)![1];
      const row = await uploadRow(id);
      expect(row).toMatchObject({ fileName: 'tspcap.1517931955.txt', size: text.length, md5: crypto.createHash('md5').update(text).digest('hex'), deviceId });
      server.worker.notify();
      for (let i = 0; i < 200 && (await uploadRow(id)).status !== 'COMPLETED'; i++) await new Promise((res) => setTimeout(res, 25));
      expect(await uploadRow(id)).toMatchObject({ status: 'COMPLETED', packetLines: 3, hits: 1 });
    });

    it('keeps the capture with PCAP_DEFENSE_KEEP_PCAP=1; a repeat is a duplicate, not an error', async () => {
      const text = `${SEED.replace('.781702', '.910000')}`;
      const first = file('tspcap.1517932555', 'x');
      expect((await tsupload(first, text)).code).toBe(0);
      const again = file('tspcap.1517933155', 'x');
      const r = await tsupload(again, text, { PCAP_DEFENSE_KEEP_PCAP: '1' });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('duplicate true');
      expect(fs.existsSync(again)).toBe(true);
    });

    it('fails loudly on userErrors, keeps the capture and still removes its temp file', async () => {
      const pcap = file('tspcap.1517933755', 'x');
      const r = await tsupload(pcap, SEED, { PCAP_DEFENSE_DEVICE: 'no such "device"' });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^tsupload\.sh: upload of .* refused: .*NOT_FOUND.*No device nicknamed.*kept\n$/);
      expect(fs.existsSync(pcap)).toBe(true);
      expect(r.tmpLeft).toEqual([]);
    });

    it('fails loudly on a non-2xx answer (a bad key: HTTP 401) and when the server is unreachable', async () => {
      const pcap = file('tspcap.1517934355', 'x');
      const bad = await tsupload(pcap, SEED, { PCAP_DEFENSE_KEY: 'pcd_wrong' });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/refused \(HTTP 401\)/);
      const down = await tsupload(pcap, SEED, { PCAP_DEFENSE_URL: 'http://127.0.0.1:9/graphql' });
      expect(down.code).not.toBe(0);
      expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\/graphql/);
      expect(fs.existsSync(pcap)).toBe(true);
      expect([...bad.tmpLeft, ...down.tmpLeft]).toEqual([]);
    });

    it('refuses to run without a key or a device, and skips a rotation without packets', async () => {
      const pcap = file('tspcap.1517934955', 'x');
      const noKey = await tsupload(pcap, SEED, { PCAP_DEFENSE_KEY: '' });
      expect(noKey.code).not.toBe(0);
      expect(noKey.stderr).toContain('set PCAP_DEFENSE_KEY');
      const noDevice = await tsupload(pcap, SEED, { PCAP_DEFENSE_DEVICE: '' });
      expect(noDevice.stderr).toContain('set PCAP_DEFENSE_DEVICE');
      const empty = await tsupload(pcap, '');
      expect(empty.code).toBe(0);
      expect(empty.stderr).toContain('has no packets; nothing to upload');
      expect(fs.existsSync(pcap)).toBe(false);
    });

    it('the legacy form post documented in the README works with an UPLOADER key and a nickname field', async () => {
      const text = file('legacy.txt', SEED.replace('.781702', '.920000'));
      const size = fs.statSync(text).size;
      const md5 = crypto.createHash('md5').update(fs.readFileSync(text)).digest('hex');
      const legacyUrl = server.url.replace(/\/graphql$/, '/logupload');
      const r = await new Promise<string>((resolve, reject) =>
        execFile(
          'curl',
          [
            '-sS',
            '-F',
            `upfile=@${text}`,
            '-F',
            `upfile_size=${size}`,
            '-F',
            `md5_client=${md5}`,
            '-F',
            'nickname=HQ sensor',
            '-H',
            `Authorization: Bearer ${uploader}`,
            legacyUrl,
          ],
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        ),
      );
      expect(JSON.parse(r)).toMatchObject({ status: 'QUEUED', duplicate: false, device: 'HQ sensor', size, md5 });
    });
  });
});
