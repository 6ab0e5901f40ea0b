import { createConnection } from 'mysql2/promise';
import { QueryFailedError } from 'typeorm';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { generateCapture } from '../helpers/capture';
import { hitsByUpload } from '../helpers/crash-loop';
import { drivers } from '../helpers/db';
import { processQueued, upload } from '../helpers/ingest';
import { captureLog } from '../helpers/logs';
import { idOfType } from '../../src/common/ids/global-id';
import { LogUploadWorker } from '../../src/modules/log-upload/log-upload.worker';
import { MAX_ATTEMPTS } from '../../src/modules/log-upload/log-upload.queue';

// Transient database errors while an acknowledged upload is processed: retried within the job's attempt
// budget, ending with exactly the hits of an uninterrupted run; only after the budget is spent does it fail.

// 1600 connections, one in two to a listed address: 800 hits, two INSERT statements into flow_hit.
const capture = generateCapture(4242, 1600, 2, 2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A driver error as TypeORM throws it. */
function dbError(code: string, message: string): QueryFailedError {
  return new QueryFailedError('(injected)', [], Object.assign(new Error(message), { code }));
}

describe.each(drivers)('transient database errors while processing (%s)', (driver) => {
  let t: TestApp;
  let device = 0;
  /** Id-free hits of the uninterrupted run. */
  let reference: string[];
  const transient =
    driver === 'mysql' ? () => dbError('ER_LOCK_DEADLOCK', 'Deadlock found when trying to get lock') : () => dbError('SQLITE_BUSY', 'database is locked');

  const hitsOf = async (id: number) => (await hitsByUpload((sql, params) => t.dataSource.query(sql, params))).get(id) ?? [];
  const row = async (id: number) => (await t.dataSource.query(`SELECT status, attempts, error, hits FROM log_upload WHERE id = ?`, [id]))[0];
  /** Uploads the capture from a new device; returns the upload's id. */
  async function send(): Promise<number> {
    const nickname = `d${++device}`;
    ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname, ipType: 'STATIC', ipAddress: `8.8.5.${device}`, policy },
      }),
    );
    const r = ok(await upload(t, capture.text, { deviceNickname: nickname })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    return idOfType(r.logUpload.id, 'LogUpload')!;
  }
  let policy = '';

  /** Runs a real worker (5 ms backoff) until the upload reaches `status`, then stops it; `log` receives its lines. */
  async function workUntil(id: number, status: 'COMPLETED' | 'FAILED', log = captureLog('warn')): Promise<void> {
    const worker = new LogUploadWorker(t.services.queue, t.services.processor, { leaseMs: 60_000, pollMs: 10, retryBaseMs: 5 }, log.logger);
    worker.start();
    try {
      for (let i = 0; (await row(id)).status !== status; i++) {
        if (i > 500) throw new Error(`not ${status}: ${JSON.stringify(await row(id))}`);
        await sleep(10);
      }
    } finally {
      await worker.stop(false);
    }
  }

  beforeAll(async () => {
    t = await createTestApp(driver, { WORKER_RETRY_BASE_MS: '5', RATE_LIMIT_UPLOADS_PER_MINUTE: '0' });
    policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = ok(await t.gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: capture.badAddresses.map((value) => ({ value })) } }));
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }));
    const id = await send();
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    reference = await hitsOf(id);
    expect(reference).toHaveLength(capture.badFlows);
    expect(capture.badFlows).toBeGreaterThan(640);
  });
  afterAll(() => t.close());

  it('runs the finishing transaction again after a transient error in it, as a second attempt', async () => {
    const id = await send();
    const queue = t.services.queue;
    const holdsLease = queue.holdsLease.bind(queue);
    let injected = 0;
    // The first statement of the finishing transaction fails once, as a deadlock victim's would.
    queue.holdsLease = async (...args) => {
      if (injected++ === 0) throw transient();
      return holdsLease(...args);
    };
    try {
      const [outcome] = await processQueued(t.services);
      expect(outcome).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
    } finally {
      queue.holdsLease = holdsLease;
    }
    expect(injected).toBe(2);
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null });
    expect(await hitsOf(id)).toEqual(reference);
  });

  it('queues the job again after a transient error outside it, and completes it on the next attempt', async () => {
    const id = await send();
    const log = captureLog('warn');
    const query = t.dataSource.query.bind(t.dataSource);
    let injected = 0;
    // The processor's first read of the upload fails once (a lost connection before any write).
    t.dataSource.query = (async (sql: string, params?: unknown[]) => {
      if (/stored_encoding\b.* FROM log_upload/.test(sql) && injected++ === 0) throw transient();
      return query(sql, params);
    }) as typeof t.dataSource.query;
    try {
      await workUntil(id, 'COMPLETED', log);
    } finally {
      t.dataSource.query = query;
    }
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null });
    expect(await hitsOf(id)).toEqual(reference);
    expect(log.events('job.retry')).toEqual([
      expect.objectContaining({
        uploadId: id,
        attempt: 1,
        code: driver === 'mysql' ? 'ER_LOCK_DEADLOCK' : 'SQLITE_BUSY',
        inPlace: false,
        delayMs: expect.any(Number),
      }),
    ]);
    expect(log.text()).not.toMatch(/upload\.failed/);
  });

  it(`fails the upload once ${MAX_ATTEMPTS} attempts all met transient errors, saying so`, async () => {
    const id = await send();
    const log = captureLog('warn');
    const queue = t.services.queue;
    const holdsLease = queue.holdsLease.bind(queue);
    queue.holdsLease = async () => {
      throw transient();
    };
    try {
      await workUntil(id, 'FAILED', log);
    } finally {
      queue.holdsLease = holdsLease;
    }
    const final = await row(id);
    expect(final).toMatchObject({ status: 'FAILED', attempts: MAX_ATTEMPTS });
    const code = driver === 'mysql' ? 'ER_LOCK_DEADLOCK' : 'SQLITE_BUSY';
    expect(final.error).toBe(
      `Gave up after ${MAX_ATTEMPTS} attempts; the last failed on a transient database error: ${driver === 'mysql' ? 'a deadlock with another transaction' : 'the database was busy (locked by another writer)'} (${code}).`,
    );
    expect(log.events('upload.failed')).toEqual([expect.objectContaining({ uploadId: id, attempt: MAX_ATTEMPTS, code })]);
    // Nothing half-written: the failed attempts wrote no hits.
    expect(await hitsOf(id)).toEqual([]);
    // A bug is not retried: it fails at once.
  });

  it('waits for space after a full disk without spending its attempts, then completes', async () => {
    const id = await send();
    const log = captureLog('warn');
    const full =
      driver === 'mysql' ? () => dbError('ER_RECORD_FILE_FULL', "The table 'flow_hit' is full") : () => dbError('SQLITE_FULL', 'database or disk is full');
    const queue = t.services.queue;
    const holdsLease = queue.holdsLease.bind(queue);
    let injected = 0;
    // More full-disk failures than the attempt budget: a budget spent on them would fail the upload.
    queue.holdsLease = async (...args) => {
      if (injected++ < MAX_ATTEMPTS + 2) throw full();
      return holdsLease(...args);
    };
    try {
      await workUntil(id, 'COMPLETED', log);
    } finally {
      queue.holdsLease = holdsLease;
    }
    expect(injected).toBe(MAX_ATTEMPTS + 3);
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 1, error: null });
    expect(await hitsOf(id)).toEqual(reference);
    const retries = log.events('job.retry');
    expect(retries).toHaveLength(MAX_ATTEMPTS + 2);
    expect(retries[0]).toMatchObject({ uploadId: id, kind: 'storage-full', inPlace: false, refunded: true });
    expect(log.events('upload.failed')).toEqual([]);
  });

  it('fails at once on an error that is not transient (a bug), masked', async () => {
    const id = await send();
    const queue = t.services.queue;
    const holdsLease = queue.holdsLease.bind(queue);
    queue.holdsLease = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'id')");
    };
    const log = captureLog('warn');
    try {
      await workUntil(id, 'FAILED', log);
    } finally {
      queue.holdsLease = holdsLease;
    }
    expect(await row(id)).toMatchObject({ status: 'FAILED', attempts: 1, error: 'Internal error while processing; reprocess it to try again.' });
  });

  (driver === 'mysql' ? it : it.skip)('completes an upload whose connection is killed in the middle of inserting its hits', async () => {
    const id = await send();
    const admin = await createConnection({ uri: (t.config.database as { url: string }).url });
    const createQueryRunner = t.dataSource.createQueryRunner.bind(t.dataSource);
    let inserts = 0;
    let killed: number | null = null;
    // A test hook on the connections the processor takes: before the second INSERT into flow_hit (the first 640
    // hits are in), the connection is killed from another one, as a server restart or a proxy would.
    t.dataSource.createQueryRunner = (mode) => {
      const runner = createQueryRunner(mode);
      const query = runner.query.bind(runner);
      runner.query = (async (sql: string, params?: unknown[], structured?: boolean) => {
        if (killed == null && sql.startsWith('INSERT INTO `flow_hit`') && ++inserts === 2) {
          const [{ id: connection }] = await query('SELECT CONNECTION_ID() AS id');
          killed = Number(connection);
          await admin.query(`KILL CONNECTION ${killed}`);
        }
        return query(sql, params, structured as true);
      }) as typeof runner.query;
      return runner;
    };
    try {
      const [outcome] = await processQueued(t.services);
      expect(outcome).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
    } finally {
      t.dataSource.createQueryRunner = createQueryRunner;
      await admin.end();
    }
    expect(killed).not.toBeNull();
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null, hits: capture.badFlows });
    expect(await hitsOf(id)).toEqual(reference);
  });

  (driver === 'mysql' ? it : it.skip)('retries the finishing transaction when InnoDB picks it as a deadlock victim', async () => {
    const id = await send();
    const job = (await t.services.queue.claim('victim', 60_000))!;
    expect(job.uploadId).toBe(id);
    const other = await createConnection({ uri: (t.config.database as { url: string }).url });
    try {
      // Another transaction, heavier than the processor's (InnoDB rolls back the lighter one), holds the row
      // that orders hit changes, which the finishing transaction takes last.
      await other.query('START TRANSACTION');
      const rows = Array.from({ length: 5000 }, (_, i) => [2_000_000_000 + i, Date.now()]);
      await other.query('INSERT INTO hit_change (revision, recorded_at) VALUES ?', [rows]);
      await other.query('UPDATE hit_revision SET revision = revision WHERE id = 1');

      const processing = t.services.processor.process(id, 'victim');
      // Once the processor waits for that row (holding its upload's row since its first statement) ...
      for (let i = 0; ; i++) {
        const waiting = await t.dataSource.query(
          `SELECT id FROM information_schema.processlist WHERE info LIKE 'UPDATE hit_revision SET revision = revision + 1%'`,
        );
        if (waiting.length > 0) break;
        if (i > 1000) throw new Error('the processor never waited for the lock');
        await sleep(10);
      }
      // ... the other transaction asks for the upload's row: a cycle, and the processor is the victim.
      await other.query('SELECT id FROM log_upload WHERE id = ? FOR UPDATE', [id]);
      await other.query('ROLLBACK');
      expect(await processing).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
    } finally {
      await other.end();
    }
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null });
    expect(await hitsOf(id)).toEqual(reference);
  });
  (driver === 'mysql' ? it : it.skip)('retries the whole finishing transaction after a lock wait timeout', async () => {
    const id = await send();
    expect((await t.services.queue.claim('waiter', 60_000))!.uploadId).toBe(id);
    const other = await createConnection({ uri: (t.config.database as { url: string }).url });
    const createQueryRunner = t.dataSource.createQueryRunner.bind(t.dataSource);
    // The processor's connections give up waiting for a lock after 1 s (InnoDB's least) instead of 50.
    t.dataSource.createQueryRunner = (mode) => {
      const runner = createQueryRunner(mode);
      const query = runner.query.bind(runner);
      let first = true;
      runner.query = (async (sql: string, params?: unknown[], structured?: boolean) => {
        if (first) {
          first = false;
          await query('SET SESSION innodb_lock_wait_timeout = 1');
        }
        return query(sql, params, structured as true);
      }) as typeof runner.query;
      return runner;
    };
    try {
      await other.query('START TRANSACTION');
      await other.query('UPDATE hit_revision SET revision = revision WHERE id = 1');
      const processing = t.services.processor.process(id, 'waiter');
      // Held until the finishing transaction timed out and its retry was counted, then let go.
      for (let i = 0; Number((await row(id)).attempts) < 2; i++) {
        if (i > 1000) throw new Error('the lock wait never timed out');
        await sleep(10);
      }
      await other.query('ROLLBACK');
      expect(await processing).toMatchObject({ status: 'COMPLETED', hits: capture.badFlows });
    } finally {
      t.dataSource.createQueryRunner = createQueryRunner;
      await other.end();
    }
    expect(await row(id)).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null });
    expect(await hitsOf(id)).toEqual(reference);
  });
});
