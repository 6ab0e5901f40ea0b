import { createDataSource } from '../../../src/db/data-source';
import { LogUploadQueue } from '../../../src/modules/log-upload/log-upload.queue';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { upload } from '../../helpers/ingest';

describe.each(drivers)('job queue (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "d", ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { device { id } } }`, { p }));
  });
  afterAll(() => t.close());

  let serial = 1000;
  const enqueue = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = ok(await upload(t, `170000${serial++}.000000 IP 10.0.0.1.1 > 9.9.9.9.53: UDP, length 1\n`, { deviceNickname: 'd' })).logUploadCreate;
      expect(r.userErrors).toEqual([]);
    }
  };

  it('hands each job to exactly one of several workers claiming at once', async () => {
    await enqueue(12);
    // On MySQL each worker has its own connection pool, as separate processes would: SKIP LOCKED keeps them apart.
    const sources =
      driver === 'mysql' ? [t.dataSource, ...(await Promise.all([0, 1].map(async () => createDataSource(t.config.database).initialize())))] : [t.dataSource];
    try {
      const workers = ['w1', 'w2', 'w3'].map((owner, i) => ({ owner, queue: new LogUploadQueue(sources[i % sources.length]) }));
      const claimed = new Map<string, number[]>();
      await Promise.all(
        workers.map(async ({ owner, queue }) => {
          for (;;) {
            const job = await queue.claim(owner, 60_000);
            if (!job) return;
            expect(job.attempt).toBe(1);
            claimed.set(owner, [...(claimed.get(owner) ?? []), job.uploadId]);
          }
        }),
      );
      const all = [...claimed.values()].flat();
      expect(all).toHaveLength(12);
      expect(new Set(all).size).toBe(12);
      const rows: Array<{ lease_owner: string; n: number | string }> = await t.dataSource.query(
        `SELECT lease_owner, COUNT(*) AS n FROM log_upload WHERE status = 'PROCESSING' GROUP BY lease_owner`,
      );
      expect(rows.reduce((a, r) => a + Number(r.n), 0)).toBe(12);
      for (const r of rows) expect(claimed.get(r.lease_owner)).toHaveLength(Number(r.n));
    } finally {
      for (const s of sources.slice(1)) await s.destroy();
    }
  });

  it('hands a job back on graceful shutdown so another worker takes it at once', async () => {
    await t.dataSource.query(`UPDATE log_upload SET status = 'COMPLETED', lease_owner = NULL`);
    await enqueue(1);
    const job = await t.services.queue.claim('leaving', 60_000);
    expect(job).not.toBeNull();
    expect(await t.services.queue.claim('other', 60_000)).toBeNull();
    expect(await t.services.queue.release(job!.uploadId, 'leaving')).toBe(true);
    const taken = await t.services.queue.claim('other', 60_000);
    expect(taken).toMatchObject({ uploadId: job!.uploadId, attempt: 1, recovered: false });
  });

  it('gives up on a job whose worker died on every attempt', async () => {
    await t.dataSource.query(`UPDATE log_upload SET status = 'COMPLETED', lease_owner = NULL`);
    await enqueue(1);
    let id = 0;
    for (let i = 0; i < 5; i++) {
      const job = await t.services.queue.claim(`dies-${i}`, 1);
      expect(job?.attempt).toBe(i + 1);
      id = job!.uploadId;
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(await t.services.queue.claim('next', 60_000)).toBeNull();
    const [row] = await t.dataSource.query(`SELECT status, error FROM log_upload WHERE id = ?`, [id]);
    expect(row.status).toBe('FAILED');
    expect(row.error).toMatch(/Gave up after 5 attempts/);
  });
});
