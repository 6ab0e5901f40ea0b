import { drivers } from '../helpers/db';
import { ChildServer, killChildren, startChild } from '../helpers/child-process';
import { ChildDatabase, createChildDatabase } from '../helpers/child-db';
import { migrations } from '../../src/db/migrations';

// Processes started together on an empty database: migrations and the first account must happen once,
// and every process must come up.
describe.each(drivers)('three processes starting at once on an empty database (%s)', (driver) => {
  let db: ChildDatabase;
  const children: ChildServer[] = [];
  afterAll(async () => {
    await killChildren(children);
    await db?.drop();
  });

  it('all come up and answer /readyz; exactly one prints the first admin key', async () => {
    db = await createChildDatabase(driver);
    // Spawned together and held until one moment (START_AT): module loading alone spreads their starts out.
    const at = String(Date.now() + 4_000);
    const started = await Promise.allSettled([0, 1, 2].map(() => startChild({ ...db.env, WORKER_POLL_MS: '50', START_AT: at })));
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
    expect(started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason).slice(0, 400))).toEqual([]);

    for (const c of children) {
      const res = await fetch(`http://127.0.0.1:${c.port}/readyz`);
      expect(res.status).toBe(200);
    }
    expect(children.filter((c) => c.secret !== null)).toHaveLength(1);
    const accounts = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM account`);
    const keys = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM api_key`);
    expect([Number(accounts[0].n), Number(keys[0].n)]).toEqual([1, 1]);
    const applied = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM migrations`);
    expect(Number(applied[0].n)).toBe(migrations.length);
  }, 90_000);
});

// Named locks are server-wide: one install's migrations must not wait for another database's on the same server.
(drivers.includes('mysql') ? describe : describe.skip)('the migration lock is per database (mysql)', () => {
  it('a lock held on one database blocks its migrations only', async () => {
    const { createConnection } = await import('mysql2/promise');
    const { migratedDataSource } = await import('../helpers/db');
    const { migrate, migrationLockName } = await import('../../src/db/migrate');
    const a = await migratedDataSource('mysql');
    const b = await migratedDataSource('mysql');
    const holder = await createConnection({ uri: process.env.TEST_MYSQL_URL as string });
    try {
      const nameA = String(a.dataSource.driver.database);
      const [rows] = await holder.query('SELECT GET_LOCK(?, 5) AS got', [migrationLockName(nameA)]);
      expect(Number((rows as Array<{ got: number }>)[0].got)).toBe(1);
      await expect(migrate(b.dataSource, async () => 'b migrated', 2_000)).resolves.toBe('b migrated');
      await expect(migrate(a.dataSource, async () => 'a migrated', 1_000)).rejects.toThrow(/held the migration lock/);
    } finally {
      await holder.end();
      await a.drop();
      await b.drop();
    }
  }, 60_000);
});
