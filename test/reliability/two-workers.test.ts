import { generateCapture } from '../helpers/capture';
import { ChildServer, killChildren, startChild, uploadHttp } from '../helpers/child-process';
import { ChildDatabase, createChildDatabase, seedAccount } from '../helpers/child-db';
import { COUNT_COLUMNS, countsOf, hitsByUpload, referenceRun } from '../helpers/crash-loop';
import { idOfType } from '../../src/common/ids/global-id';

// Two worker processes on one MySQL/MariaDB database (SQLite serves one process): their finishing
// transactions overlap, and every upload must still end COMPLETED with the hits of a single-process run.
const mysql = process.env.TEST_MYSQL_URL ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

mysql('two worker processes on one MySQL database', () => {
  let db: ChildDatabase;
  const children: ChildServer[] = [];
  afterAll(async () => {
    await killChildren(children);
    await db?.drop();
  });

  it('completes every upload sent to them alternately, with the hits of a single-process run', async () => {
    db = await createChildDatabase('mysql');
    const env = { ...db.env, WORKER_POLL_MS: '20', RATE_LIMIT_UPLOADS_PER_MINUTE: '0' };
    // Small files with many hits (one flow in three is listed): the finishing transactions overlap often.
    const captures = [0, 1, 2, 3].map((i) => generateCapture(700 + i, 120 + i * 40, 2, 3));
    const bad = [...new Set(captures.flatMap((c) => c.badAddresses))];
    const devices = Array.from({ length: 8 }, (_, i) => ({ nickname: `d${i}`, ip: `8.8.4.${i + 1}` }));
    // One at a time: the first start creates the schema and the key (concurrent starts: first-start.test.ts).
    children.push(await startChild(env));
    const key = children[0].secret!;
    await seedAccount(children[0].url, key, bad, devices);
    children.push(await startChild(env));

    // Sent at once, to each process in turn: both workers always have a job, and finish them at the same moments.
    const sent = new Map<number, number>(); // upload id -> capture
    const pairs = devices.flatMap((d) => captures.map((_c, f) => ({ d, f })));
    await Promise.all(
      pairs.map(async ({ d, f }, n) => {
        const answer = await uploadHttp(children[n % 2].url, key, d.nickname, captures[f].text, `c${f}.txt`);
        expect(answer.userErrors).toEqual([]);
        sent.set(idOfType(answer.logUpload.id, 'LogUpload')!, f);
      }),
    );
    for (let i = 0; ; i++) {
      const [open] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM log_upload WHERE status IN ('QUEUED', 'PROCESSING')`);
      if (Number(open.n) === 0) break;
      if (i > 1500) throw new Error('uploads still unfinished after 30 s');
      await sleep(20);
    }

    const rows = await db.query(`SELECT id, attempts, error, ${COUNT_COLUMNS} FROM log_upload`);
    const failed = rows.filter((r) => r.status !== 'COMPLETED').map((r) => ({ id: r.id, status: r.status, error: r.error }));
    expect(failed).toEqual([]);
    expect(rows).toHaveLength(sent.size);
    const hits = await hitsByUpload((sql, params) => db.query(sql, params));
    const reference = await referenceRun('mysql', captures, bad);
    for (const row of rows) {
      const want = reference[sent.get(Number(row.id))!];
      expect({ id: row.id, ...countsOf(row) }).toEqual({ id: row.id, ...want.counts });
      expect(hits.get(Number(row.id))).toEqual(want.hits);
    }
    expect(reference.every((r) => r.counts.hits > 0)).toBe(true);
    // Not by retrying: no DELETE that finds nothing locks the end of an index, so no transaction deadlocked.
    expect(rows.filter((r) => Number(r.attempts) !== 1).map((r) => ({ id: r.id, attempts: r.attempts }))).toEqual([]);
  }, 120_000);
});
