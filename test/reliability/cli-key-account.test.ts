import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCaptured } from '../helpers/cli';
import { drivers } from '../helpers/db';
import { ChildDatabase, createChildDatabase } from '../helpers/child-db';

describe.each(drivers)('key create --account (%s)', (driver) => {
  let db: ChildDatabase;
  beforeAll(async () => {
    db = await createChildDatabase(driver);
  });
  afterAll(() => db.drop());

  /** The CLI in this process, on the test database (database settings come from the environment, as in a shell). */
  const cli = async (argv: string[]) => {
    const saved = { ...process.env };
    Object.assign(process.env, { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...db.env });
    try {
      return await runCaptured(argv);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  };
  const accounts = async () => (await db.query<{ name: string }>('SELECT name FROM account ORDER BY name')).map((r) => r.name);

  it('refuses an account that does not exist, naming the ones that do, and creates it only with --create-account', async () => {
    // No --account: the default account, made on first use as the server's first start makes it.
    const first = await cli(['key', 'create', '--role', 'ADMIN']);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^pcd_\S+\n$/);
    expect(await accounts()).toEqual(['default']);

    const typo = await cli(['key', 'create', '--role', 'UPLOADER', '--account', 'defualt']);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toMatch(/No account named "defualt"\. The accounts are: "default"\. Give one of them, or add --create-account to create this one\./);
    expect(await accounts()).toEqual(['default']);
    expect(Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM api_key'))[0].n)).toBe(1);

    const made = await cli(['key', 'create', '--role', 'UPLOADER', '--account', 'branch office', '--create-account', '--json']);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ account: 'branch office', role: 'UPLOADER' });
    expect(await accounts()).toEqual(['branch office', 'default']);
    // An existing account needs no flag.
    expect((await cli(['key', 'create', '--role', 'ANALYST', '--account', 'branch office'])).code).toBe(0);
  });

  it('the other commands that take --account refuse one that does not exist the same way; ioc import creates it only with --create-account', async () => {
    const feed = path.join(os.tmpdir(), `pcd-account-feed-${process.pid}.txt`);
    fs.writeFileSync(feed, '198.51.100.7\n');
    try {
      for (const argv of [
        ['key', 'list', '--account', 'brnach office'],
        ['key', 'revoke', 'QXBpS2V5OjE=', '--account', 'brnach office'],
      ]) {
        const r = await cli(argv);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/No account named "brnach office"\. The accounts are: "branch office", "default"\. Give one of them\.\n/);
      }
      const typo = await cli(['ioc', 'import', feed, '--list', 'feed', '--create', '--account', 'brnach office']);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(
        /No account named "brnach office"\. The accounts are: "branch office", "default"\. Give one of them, or add --create-account to create this one\./,
      );
      expect(await accounts()).toEqual(['branch office', 'default']);
      expect(Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ioc_list'))[0].n)).toBe(0);

      const made = await cli(['ioc', 'import', feed, '--list', 'feed', '--create', '--account', 'lab', '--create-account', '--json']);
      expect(made.code).toBe(0);
      expect(JSON.parse(made.stdout)).toMatchObject({ list: { name: 'feed', entryCount: 1 }, added: 1 });
      expect(await accounts()).toEqual(['branch office', 'default', 'lab']);

      const orphan = await cli(['key', 'create', '--role', 'ADMIN', '--create-account']);
      expect(orphan.code).toBe(2);
      expect(orphan.stderr).toMatch(/--create-account needs --account NAME/);
    } finally {
      fs.rmSync(feed, { force: true });
    }
  });
});
