import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCaptured } from '../helpers/cli';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/app/logger';
import { RunningServer, startServer } from '../../src/app/server';
import { Role } from '../../src/modules/account/account.enums';
import { IpType } from '../../src/modules/device/device.enums';
import { drivers } from '../helpers/db';
import { ChildDatabase, createChildDatabase } from '../helpers/child-db';
import { processQueued } from '../helpers/ingest';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const capture = () => `${1_517_931_955 + ++n}.000001 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [S], seq 1, win 65535, length 0\n`;

describe.each(drivers)('upload --wait of a file another key sent before (%s)', (driver) => {
  let db: ChildDatabase;
  let server: RunningServer;
  let dir: string;
  const keys: string[] = [];

  beforeAll(async () => {
    db = await createChildDatabase(driver);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-dup-'));
    // No worker of its own: the test processes the queue when it wants the earlier upload finished.
    server = await startServer(
      loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', WORKER_ENABLED: 'false', RETENTION_DAYS: '0', ...db.env }),
      silentLogger(),
    );
    const s = server.services;
    const account = (await s.accounts.findAccountByName('default'))!;
    const policy = await s.policies.create(account.id, { name: 'p' });
    if (!policy.ok) throw new Error('policy');
    expect((await s.devices.create(account.id, { nickname: 'gw', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id })).ok).toBe(
      true,
    );
    for (const name of ['host a', 'host b']) {
      const k = await s.accounts.createApiKey(account.id, { name, role: Role.UPLOADER });
      if (!k.ok) throw new Error('key');
      keys.push(k.value.secret);
    }
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const upload = async (file: string, key: string, ...extra: string[]) => {
    return runCaptured(['upload', file, '--nickname', 'gw', '--wait', '--timeout', '20', ...extra], {
      env: { PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: key },
    });
  };
  /** Plays the worker until the command ends: whenever the upload reaches the queue, it is processed. */
  const working = async <T>(run: Promise<T>): Promise<T> => {
    let ended = false;
    void run.finally(() => (ended = true));
    while (!ended) {
      await processQueued(server.services);
      await sleep(50);
    }
    return run;
  };
  const file = (name: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, capture());
    return p;
  };

  it('is a success: the earlier upload, COMPLETED, is printed and the exit code is 0', async () => {
    const f = file('done.txt');
    expect((await working(upload(f, keys[0]))).code).toBe(0);
    const again = await upload(f, keys[1]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^id: \S+\nduplicate: true\nstatus: COMPLETED\nlines: 1 \(packets 1, skipped 0\)\nconnections: 1 /);
    const json = await upload(f, keys[1], '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ duplicate: true, logUpload: { status: 'COMPLETED', lineCount: 1 } });
  });

  it('waits for the earlier upload while it is still queued, though this key may not query it', async () => {
    const f = file('queued.txt');
    const env = { PCAP_DEFENSE_URL: server.url, PCAP_DEFENSE_KEY: keys[0] };
    expect((await runCaptured(['upload', f, '--nickname', 'gw'], { env })).code).toBe(0);
    // Still QUEUED when the second key sends it; processed while that one waits.
    const waiting = upload(f, keys[1]);
    await sleep(300);
    const r = await working(waiting);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/duplicate: true\nstatus: COMPLETED\n/);
  });
});
