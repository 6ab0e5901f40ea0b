import request from 'supertest';
import { createConnection } from 'mysql2/promise';
import { createTestApp, TestApp } from '../helpers/app';
import { drivers } from '../helpers/db';

/**
 * A request whose transaction InnoDB rolls back as a deadlock victim is told so: 503 with Retry-After 1 and a
 * message that says another change met it, not "the database is unavailable" (it is up, and the same request
 * sent again goes through). The deadlock is a real one, between the app's own transaction (run in place of a
 * mutation's work) and another connection taking the same two rows in the other order.
 */
const maybe = drivers.includes('mysql') ? describe : describe.skip;
if (!drivers.includes('mysql')) console.warn('deadlock-answer: skipped, TEST_MYSQL_URL is not set');

maybe('a deadlock under a mutation (mysql)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp('mysql');
    await t.dataSource.query('CREATE TABLE deadlock_rows (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB');
    await t.dataSource.query('INSERT INTO deadlock_rows VALUES (1, 0), (2, 0)');
    await t.dataSource.query('CREATE TABLE deadlock_weight (id INT PRIMARY KEY) ENGINE=InnoDB');
  });
  afterAll(() => t.close());

  it('answers 503 with Retry-After 1 and says what happened; the request sent again succeeds', async () => {
    const other = await createConnection({ uri: (t.config.database as { url: string }).url });
    let victim: unknown = null;
    jest.spyOn(t.services.policies, 'create').mockImplementationOnce(async () => {
      await other.query('BEGIN');
      // More rows changed on this side: InnoDB rolls back the app's transaction, the one that changed fewer.
      await other.query(`INSERT INTO deadlock_weight VALUES ${Array.from({ length: 50 }, (_, i) => `(${i})`).join(', ')}`);
      await other.query('UPDATE deadlock_rows SET n = n + 1 WHERE id = 1');
      return t.dataSource.transaction(async (em) => {
        await em.query('UPDATE deadlock_rows SET n = n + 1 WHERE id = 2');
        // The other connection waits on row 2, which this transaction holds.
        const waiting = other.query('UPDATE deadlock_rows SET n = n + 1 WHERE id = 2');
        // Taking row 1, which the other holds, closes the cycle.
        await new Promise((r) => setTimeout(r, 200));
        try {
          await em.query('UPDATE deadlock_rows SET n = n + 1 WHERE id = 1');
        } catch (err) {
          victim = err;
          throw err;
        } finally {
          void waiting.then(() => other.query('ROLLBACK')).catch(() => undefined);
        }
        throw new Error('no deadlock');
      });
    });
    const mutation = { query: 'mutation { policyCreate(input: { name: "p1" }) { policy { name } userErrors { message } } }' };
    const res = await request(t.http.app).post('/graphql').set('authorization', `Bearer ${t.keys.admin}`).send(mutation);
    expect((victim as { driverError?: { code?: string } })?.driverError?.code).toBe('ER_LOCK_DEADLOCK');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.errors).toEqual([
      {
        message: 'The request met another change made at the same moment (a deadlock or a lock wait) and its change was rolled back. Send it again.',
        path: ['policyCreate'],
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      },
    ]);
    expect(JSON.stringify(res.body)).not.toMatch(/ER_|Deadlock found|deadlock_rows/);
    await other.end();
    // Sent again, it goes through (create is the real one again).
    const again = await request(t.http.app).post('/graphql').set('authorization', `Bearer ${t.keys.admin}`).send(mutation);
    expect(again.status).toBe(200);
    expect(again.body.data.policyCreate).toEqual({ policy: { name: 'p1' }, userErrors: [] });
  });
});
