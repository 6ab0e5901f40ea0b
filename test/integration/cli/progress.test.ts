import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_SOURCE, CliRun as Run, runCaptured, sink } from '../../helpers/cli';
import { loadConfig } from '../../../src/config/config';
import { startServer, RunningServer } from '../../../src/app/server';
import { silentLogger } from '../../../src/app/logger';
import { Role } from '../../../src/modules/account/account.enums';
import { IpType } from '../../../src/modules/device/device.enums';
import { LogUpload } from '../../../src/modules/log-upload/log-upload.entity';
import { idOfType } from '../../../src/common/ids/global-id';

const ROOT = path.resolve(__dirname, '../../..');
/** What a progress bar would write: carriage returns and ANSI escapes. */
const CONTROL = /\r|\x1b\[/;

const packet = (i: number) =>
  `${1517931955 + Math.floor(i / 1000)}.${String(i % 1000).padStart(6, '0')} IP 10.0.2.${i % 250}.${1024 + (i % 60000)} > 192.1.2.3.80: Flags [S], seq ${i}, win 65535, length 0\n`;

/** The real command in a child process: its stdout and stderr are pipes, not terminals. */
function runBin(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI_SOURCE, ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The CLI in this process; with `tty` its stderr claims to be a terminal. */
const cli = (argv: string[], env: Record<string, string>, tty: boolean): Promise<Run> => runCaptured(argv, { env, stderr: sink({ tty }) });

describe('CLI progress and --json', () => {
  let server: RunningServer;
  let dir: string;
  let uploader: string;
  let big: string;
  const env = () => ({ DATA_DIR: dir, NODE_ENV: 'test', PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: uploader });
  // `ioc import` given PCAP_DEFENSE_URL works through the API (with an ADMIN key); these runs open the database.
  const databaseEnv = () => ({ DATA_DIR: dir, NODE_ENV: 'test' });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-cli-progress-'));
    server = await startServer(loadConfig({ NODE_ENV: 'test', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', WORKER_POLL_MS: '20' }), silentLogger());
    const s = server.services;
    const account = (await s.accounts.findAccountByName('default'))!;
    const policy = await s.policies.create(account.id, { name: 'Sensors' });
    if (!policy.ok) throw new Error('policy');
    const device = await s.devices.create(account.id, { nickname: 'HQ sensor', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id });
    if (!device.ok) throw new Error('device');
    const key = await s.accounts.createApiKey(account.id, { name: 'capture host', role: Role.UPLOADER });
    if (!key.ok) throw new Error('key');
    uploader = key.value.secret;
    // About 1.7 MB: several read chunks, so a bar would be drawn more than once.
    big = path.join(dir, 'big.txt');
    fs.writeFileSync(big, Array.from({ length: 16_000 }, (_, i) => packet(i)).join(''));
  });

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('not on a terminal (the real command, with pipes)', () => {
    it('parse --json: rows on stdout, one JSON summary on stderr, no progress codes', async () => {
      const r = await runBin(['parse', big, '--json'], env());
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n').length).toBe(16_000 + 2);
      expect(r.stderr).not.toMatch(CONTROL);
      expect(r.stdout).not.toMatch(/\x1b\[/);
      expect(JSON.parse(r.stderr)).toEqual({ file: big, lines: 16_000, packets: 16_000, skipped: 0, skippedByReason: {}, samples: [] });
    });

    it('ioc import --json: the summary parses, stderr stays quiet', async () => {
      const feed = path.join(dir, 'feed.txt');
      fs.writeFileSync(
        feed,
        Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).join('\n') + '\n# comment\nnot an address\n',
      );
      const r = await runBin(['ioc', 'import', feed, '--list', 'Bulk', '--create', '--json'], databaseEnv());
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ list: { name: 'Bulk', entryCount: 20_000 }, added: 20_000, skipped: 1 });
    });

    it('ioc import: a refused import exits 1 without the usage text, and with --json prints the refusal as JSON', async () => {
      const one = path.join(dir, 'one.txt');
      const empty = path.join(dir, 'empty.txt');
      fs.writeFileSync(one, '198.51.100.1\n');
      fs.writeFileSync(empty, '# nothing today\n');
      expect((await runBin(['ioc', 'import', one, '--list', 'Refusals', '--create'], databaseEnv())).code).toBe(0);
      // A REPLACE with no entries would empty the list: refused, the list kept.
      const refused = await runBin(['ioc', 'import', empty, '--list', 'Refusals', '--mode', 'REPLACE'], databaseEnv());
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^pcap-defense ioc import: .*nothing was imported/i);
      expect(refused.stderr).not.toMatch(/Usage:/);
      const json = await runBin(['ioc', 'import', empty, '--list', 'Refusals', '--mode', 'REPLACE', '--json'], databaseEnv());
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({
        refused: true,
        userErrors: [{ code: 'INVALID', field: ['input', 'file'], message: expect.any(String) }],
      });
    });

    it('upload --wait --json: the payload parses, stderr stays quiet', async () => {
      const file = path.join(dir, 'capture.txt');
      fs.writeFileSync(file, packet(1) + packet(2));
      const r = await runBin(['upload', file, '--nickname', 'HQ sensor', '--wait', '--json'], env());
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        duplicate: false,
        userErrors: [],
        logUpload: { status: 'COMPLETED', packetLines: 2, progressPercent: 100 },
      });
    });
  });

  describe('on a terminal', () => {
    it('parse draws a bar on stderr, erases it, then prints the summary; stdout has only rows', async () => {
      const r = await cli(['parse', big], env(), true);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(CONTROL);
      expect(r.stderr).toMatch(/\r\x1b\[2Kbig\.txt \[#*-*\] +\d+%/);
      // The last thing before the summary erases the bar.
      expect(r.stderr).toMatch(/\r\x1b\[2K[^\r]*\r\x1b\[2K.*16000 lines, 16000 packets, 0 skipped\n$/s);
    });

    it('ioc import draws a bar while it reads the feed, then prints its summary', async () => {
      const feed = path.join(dir, 'tty-feed.txt');
      fs.writeFileSync(feed, Array.from({ length: 12_000 }, (_, i) => `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`).join('\n') + '\n');
      // `ioc import` opens the database from the environment, as the server does.
      const saved = process.env.DATA_DIR;
      process.env.DATA_DIR = dir;
      try {
        const r = await cli(['ioc', 'import', feed, '--list', 'Private', '--create'], databaseEnv(), true);
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/^\r\x1b\[2Ktty-feed\.txt \[[#-]+\] +\d+%/);
        expect(r.stderr.endsWith('\r\x1b[2K')).toBe(true);
        expect(r.stdout).toMatch(/^Private: 12000 lines, 12000 added, 0 duplicates, 0 skipped; 12000 entries now/);
      } finally {
        if (saved === undefined) delete process.env.DATA_DIR;
        else process.env.DATA_DIR = saved;
      }
    });

    it('upload streams the body behind a bar; the server gets the file intact (size and MD5 checked)', async () => {
      const text = Array.from({ length: 3_000 }, (_, i) => packet(100_000 + i)).join('');
      const file = path.join(dir, 'tty-capture.txt');
      fs.writeFileSync(file, text);
      const r = await cli(['upload', file, '--nickname', 'HQ sensor', '--wait'], env(), true);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/\r\x1b\[2Ktty-capture\.txt \[[#-]+\] +\d+%  [\d.]+ k?B \/ 291 kB/);
      expect(r.stderr.endsWith('\r\x1b[2K')).toBe(true);
      expect(r.stdout).toMatch(/status: COMPLETED\nlines: 3000 \(packets 3000, skipped 0\)/);
      const id = /^id: (\S+)/.exec(r.stdout)![1];
      const row = await server.dataSource.getRepository(LogUpload).findOneByOrFail({ id: idOfType(id, 'LogUpload')! });
      expect(row).toMatchObject({ size: text.length, md5: crypto.createHash('md5').update(text).digest('hex'), fileName: 'tty-capture.txt' });
    });
  });
});
