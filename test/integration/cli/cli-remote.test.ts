import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCaptured, sink } from '../../helpers/cli';
import { drivers } from '../../helpers/db';
import { ChildDatabase, createChildDatabase } from '../../helpers/child-db';
import { loadConfig } from '../../../src/config/config';
import { RunningServer, startServer } from '../../../src/app/server';
import { silentLogger } from '../../../src/app/logger';
import { Role } from '../../../src/modules/account/account.enums';
import { toGlobalId } from '../../../src/common/ids/global-id';

// `key` and `ioc import` given a server (--url or PCAP_DEFENSE_URL and an ADMIN key) work through its API and
// print what they print when they open the database themselves.
describe.each(drivers)('key and ioc import through the API (%s)', (driver) => {
  let db: ChildDatabase;
  let server: RunningServer;
  let admin: string;
  let dir: string;

  beforeAll(async () => {
    db = await createChildDatabase(driver);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-cli-remote-'));
    server = await startServer(loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', ...db.env }), silentLogger());
    admin = server.bootstrapSecret!;
  });
  afterAll(async () => {
    await server?.stop();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const remote = (key = admin) => ({ PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: key });
  /** The CLI opening the test database itself (database settings come from the environment, as in a shell). */
  const local = async (argv: string[], options: Parameters<typeof runCaptured>[1] = {}) => {
    const saved = { ...process.env };
    Object.assign(process.env, { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...db.env });
    try {
      return await runCaptured(argv, options);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  };
  const viewerRole = async (key: string) => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    return res.status === 200 ? (((await res.json()) as { data?: { viewer: { role: string } } }).data?.viewer.role ?? null) : null;
  };

  it('key create, list and revoke work through the API as they do on the database', async () => {
    const made = await runCaptured(['key', 'create', '--role', 'UPLOADER', '--name', 'remote host'], { env: remote() });
    expect(made.stderr).toBe('Created UPLOADER key "remote host" for account "default". Store the secret now; it is not shown again.\n');
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect(await viewerRole(secret)).toBe('UPLOADER');

    const json = await runCaptured(['key', 'create', '--role', 'ANALYST', '--json', '--url', server.url, '--key', admin], { env: {} });
    expect(JSON.parse(json.stdout)).toMatchObject({ account: 'default', name: 'CLI analyst key', role: 'ANALYST', secret: expect.stringMatching(/^pcd_/) });

    // The same list, in the same form, from the API and from the database.
    const listed = await runCaptured(['key', 'list', '--json'], { env: remote() });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe((await local(['key', 'list', '--json'])).stdout);
    expect(JSON.parse(listed.stdout).map((k: { name: string }) => k.name)).toEqual(expect.arrayContaining(['remote host', 'CLI analyst key']));
    const tabbed = await runCaptured(['key', 'list'], { env: remote() });
    expect(tabbed.stdout).toBe((await local(['key', 'list'])).stdout);

    const id = JSON.parse(listed.stdout).find((k: { name: string }) => k.name === 'remote host').id;
    const revoked = await runCaptured(['key', 'revoke', id], { env: remote() });
    expect(revoked).toEqual({ code: 0, stdout: '', stderr: 'Revoked key "remote host".\n' });
    expect(await viewerRole(secret)).toBeNull();
    // A key that is not there: refused both ways, the API's userError named.
    const missing = toGlobalId('ApiKey', 99_999);
    const viaApi = await runCaptured(['key', 'revoke', missing], { env: remote() });
    expect(viaApi.code).toBe(2);
    expect(viaApi.stderr).toMatch(/^pcap-defense key revoke: NOT_FOUND \(input\.id\): No API key with this ID\./);
    const viaDb = await local(['key', 'revoke', missing]);
    expect(viaDb.code).toBe(2);
    expect(viaDb.stderr).toMatch(/^pcap-defense key revoke: No API key with this ID\./);
  });

  it('refuses what a key cannot do through the API: another account, a role below ADMIN, no key', async () => {
    const other = await runCaptured(['key', 'create', '--role', 'ADMIN', '--account', 'defualt', '--create-account'], { env: remote() });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /No account named "defualt" for this key: it belongs to account "default", and through the API a key works only in its own account/,
    );
    expect((await runCaptured(['key', 'list', '--account', 'default'], { env: remote() })).code).toBe(0);

    const analyst = await server.services.accounts.createApiKey((await server.services.accounts.findAccountByName('default'))!.id, {
      name: 'reader',
      role: Role.ANALYST,
    });
    if (!analyst.ok) throw new Error('key');
    const weak = await runCaptured(['key', 'list'], { env: remote(analyst.value.secret) });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/the key given is an ANALYST key; managing API keys needs an ADMIN key/);

    const keyless = await runCaptured(['ioc', 'import', __filename, '--list', 'x'], { env: { PCAP_DEFENSE_URL: server.url } });
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toMatch(/give --key KEY or set PCAP_DEFENSE_KEY \(an ADMIN API key\) to use the server at http/);
    const bad = await runCaptured(['key', 'list'], { env: remote('pcd_not-a-key') });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/the server refused the API key \(HTTP 401\)/);
  });

  it('ioc import through the API: finds or creates the list by name, imports with a bar on a terminal, prints the same summary', async () => {
    const feed = path.join(dir, 'feed.txt');
    fs.writeFileSync(
      feed,
      [
        '# a feed',
        '198.51.100.7',
        '203.0.113.0/24',
        '203.0.113.9/24',
        '198.51.100.7',
        'not an address',
        ...Array.from({ length: 5_000 }, (_, i) => `10.9.${i >> 8}.${i & 255}`),
      ].join('\n') + '\n',
    );
    const stderr = sink({ tty: true });
    const viaApi = await runCaptured(['ioc', 'import', feed, '--list', 'Remote Feed', '--create', '--severity', '4', '--category', 'SCANNER', '--json'], {
      env: remote(),
      stderr,
    });
    expect(viaApi.code).toBe(0);
    // The bar followed the bytes sent, and was erased.
    expect(stderr.text).toMatch(/^\r\x1b\[2Kfeed\.txt \[[#-]+\] +\d+%/);
    expect(stderr.text.endsWith('\r\x1b[2K')).toBe(true);
    const viaDb = await local(['ioc', 'import', feed, '--list', 'Local Feed', '--create', '--severity', '4', '--category', 'SCANNER', '--json']);
    expect(viaDb.code).toBe(0);
    const strip = (s: string) => {
      const { list, durationMs, ...rest } = JSON.parse(s);
      expect(durationMs).toEqual(expect.any(Number));
      return { list: { entryCount: list.entryCount, id: expect.any(String) }, rest };
    };
    expect(strip(viaApi.stdout)).toEqual(strip(viaDb.stdout));
    expect(JSON.parse(viaApi.stdout)).toMatchObject({
      list: { name: 'Remote Feed', entryCount: 5_002 },
      added: 5_002,
      duplicates: 2,
      skipped: 1,
      skippedLines: [{ lineNumber: 6 }],
    });
    const [row] = await db.query<{ severity: number; category: string }>("SELECT severity, category FROM ioc_list WHERE name = 'Remote Feed'");
    expect(row).toMatchObject({ severity: 4, category: 'SCANNER' });

    // The list is found again by name, whatever its case; REPLACE makes it the file.
    fs.writeFileSync(feed, '192.0.2.1\n');
    const replaced = await runCaptured(['ioc', 'import', feed, '--list', 'remote feed', '--mode', 'REPLACE'], { env: remote() });
    expect(replaced.stdout).toMatch(/^Remote Feed: 1 lines, 1 added, 0 duplicates, 0 skipped, 5002 replaced; 1 entries now \(\d+ ms\)\n$/);
    expect(replaced.stderr).toBe('');

    const missing = await runCaptured(['ioc', 'import', feed, '--list', 'No Such List'], { env: remote() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/No IOC list named "No Such List" \(add --create to make it\)/);
  });

  it('key list prints an aligned table on a terminal, tab-separated lines otherwise', async () => {
    const stdout = sink({ tty: true });
    const r = await runCaptured(['key', 'list'], { env: remote(), stdout });
    expect(r.code).toBe(0);
    const lines = stdout.text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +ROLE +PREFIX +STATUS +CREATED \(UTC\) +LAST USED +NAME$/);
    expect(lines.length).toBeGreaterThan(2);
    expect(stdout.text).not.toContain('\t');
    // Every column starts where its header does.
    const starts = (line: string) => [...line.matchAll(/(?<=^| {2})\S/g)].map((m) => m.index);
    for (const line of lines.slice(1)) expect(starts(line).slice(0, 6)).toEqual(starts(lines[0]).slice(0, 6));
    expect(lines.slice(1).some((l) => /\brevoked\b/.test(l) && /\bremote host$/.test(l))).toBe(true);
    // Not a terminal: one tab-separated line per key, as scripts split it.
    const piped = await runCaptured(['key', 'list'], { env: remote() });
    expect(piped.stdout.trimEnd().split('\n')).toHaveLength(lines.length - 1);
    for (const line of piped.stdout.trimEnd().split('\n')) expect(line.split('\t')).toHaveLength(5);
  });
});
