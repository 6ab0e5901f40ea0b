import fs from 'node:fs';
import net from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { upload } from '../../helpers/ingest';
import { captureLog } from '../../helpers/logs';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { AnalyticsHits, committedAttempts } from '../../../src/modules/analytics/analytics-hits';
import { AnalyticsUnavailableError, analyticsUnavailable } from '../../../src/modules/analytics/analytics-errors';
import { HitWriter } from '../../../src/modules/flow-hit/hit-writer';
import { LogUploadProcessor } from '../../../src/modules/log-upload/log-upload.processor';
import { LogUploadWorker } from '../../../src/modules/log-upload/log-upload.worker';
import { MAX_ATTEMPTS } from '../../../src/modules/log-upload/log-upload.queue';
import { chdbConfig, describeChdb } from './chdb';

/**
 * ClickHouse down (#16 item 4): uploads are still accepted and queued in SQL; a job that fails on ClickHouse goes
 * back to the queue without spending an attempt, and the worker claims nothing more until the tier answers, asking
 * with backoff; once it answers, every upload completes with exactly its hits. Injected failures (a client that
 * throws N times, or while "down") on chDB, and a client pointed at a port nothing listens on.
 */
const BAD = ['198.51.100.7', '203.0.113.9'];
const START = Date.parse('2024-06-01T20:00:00Z');

function capture(hours: number, seed: number): string {
  const lines: string[] = [];
  for (let i = 0, at = START + seed * 1000; at < START + hours * 3_600_000; i++, at += 7 * 60_000) {
    lines.push(`${(at / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 5)}.${30000 + i + seed} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length ${i % 50}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A port below 1024 that refuses connections now. Not an ephemeral port released again: the servers of tests running
 * beside this one bind ephemeral ports, and one took such a port within seconds on CI (the client then met an HTTP
 * server, not a refusal). Nothing here binds a port below 1024.
 */
async function closedPort(): Promise<number> {
  for (const port of [1, 7, 9, 11, 13, 17, 19]) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
  throw new Error('every candidate port below 1024 accepts connections');
}

async function setup(t: TestApp): Promise<void> {
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
    .iocList.id;
  await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
  await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
  await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
    i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
  });
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });

/**
 * The client, with every call failing while `down`, the next `failInserts` inserts failing as ClickHouse refusing
 * them, and the next `failRollups` writes of the daily roll-up (the hit writer's last statement) the same way.
 */
function faulty(client: ClickHouseClient) {
  const state = { down: false, failInserts: 0, insertsFailed: 0, failRollups: 0 };
  const wrapped = new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver);
      if (prop !== 'insert' && prop !== 'query' && prop !== 'command') return typeof real === 'function' ? real.bind(target) : real;
      return async (...args: unknown[]) => {
        if (state.down) throw refused();
        // The hit writer inserts with a command (INSERT ... FORMAT TabSeparated and its rows), the rest with insert().
        const inserting = prop === 'insert' || (prop === 'command' && /^INSERT\b/.test((args[0] as { query: string }).query));
        const rollingUp = prop === 'command' && /^INSERT INTO flow_hit_daily\b/.test((args[0] as { query: string }).query);
        const failing = rollingUp && state.failRollups > 0 ? 'failRollups' : inserting && state.failInserts > 0 ? 'failInserts' : null;
        if (failing) {
          state[failing]--;
          state.insertsFailed++;
          // As @clickhouse/client reports a server error: the name in `type`, the number in `code`.
          throw Object.assign(new Error('Too many parts (300). Merges are processing significantly slower than inserts'), {
            code: '252',
            type: 'TOO_MANY_PARTS',
          });
        }
        return (real as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { client: wrapped, state };
}

const status = async (t: TestApp, id: number) =>
  (await t.dataSource.query(`SELECT status, attempts, error, hits FROM log_upload WHERE id = ?`, [id]))[0] as {
    status: string;
    attempts: number | string;
    error: string | null;
    hits: number | string;
  };

describe.each(drivers)('ClickHouse down while uploads are processed (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const dir = chdbConfig().path;
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp(driver, { ANALYTICS_URL: `chdb://${dir}`, REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0' });
      await t.services.analytics!.migrate();
      await setup(t);
    });
    afterAll(async () => {
      await t?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    function worker(client: ClickHouseClient, up: () => Promise<boolean>) {
      const log = captureLog('info');
      const processor = new LogUploadProcessor(t.dataSource, t.services.queue, t.services.iocIndexes, {
        leaseMs: 60_000,
        hitWriter: new HitWriter(new AnalyticsHits(client)),
      });
      return { log, worker: new LogUploadWorker(t.services.queue, processor, { leaseMs: 60_000, pollMs: 20, retryBaseMs: 5, analytics: { up } }, log.logger) };
    }

    const counted = async (uploadId: number) => {
      const c = (await committedAttempts(t.dataSource.manager, t.accountId)).find((x) => x.uploadId === uploadId);
      if (!c) return 0;
      const rows = await (
        await t.services.analytics!.client.query({
          query: `SELECT count() AS n FROM flow_hit WHERE upload_id = ${uploadId} AND attempt = ${c.attempt}`,
          format: 'JSONEachRow',
        })
      ).json<{ n: number }>();
      return Number(rows[0].n);
    };

    it(`a job whose ClickHouse insert fails more often than its ${MAX_ATTEMPTS} attempts still completes, without spending them`, async () => {
      const f = faulty(t.services.analytics!.client);
      f.state.failInserts = MAX_ATTEMPTS + 2;
      const { log, worker: w } = worker(f.client, async () => true);
      const id = idOfType(ok(await upload(t, capture(4, 1), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id, 'LogUpload')!;
      w.start();
      try {
        await until('COMPLETED', async () => (await status(t, id)).status === 'COMPLETED');
      } finally {
        await w.stop(false);
      }
      expect(f.state.insertsFailed).toBe(MAX_ATTEMPTS + 2);
      const row = await status(t, id);
      expect(Number(row.attempts)).toBe(1);
      expect(row.error).toBeNull();
      expect(await counted(id)).toBe(Number(row.hits));
      expect(Number(row.hits)).toBeGreaterThan(10);
      const retries = log.events('job.retry');
      expect(retries).toHaveLength(MAX_ATTEMPTS + 2);
      expect(retries.every((r) => r.kind === 'analytics' && r.code === 'TOO_MANY_PARTS' && r.refunded === true)).toBe(true);
      // Backoff: the waits double (with jitter: each is between half and all of its step).
      expect(retries[6].delayMs).toBeGreaterThan(2 * retries[0].delayMs);
    });

    it('an attempt whose roll-up rows fail to be written is not committed: the job waits, then completes with its roll-up whole', async () => {
      // The hits are in, their roll-up is not: the attempt must not count (a roll-up read would miss its hits).
      const f = faulty(t.services.analytics!.client);
      f.state.failRollups = 2;
      const { log, worker: w } = worker(f.client, async () => true);
      const id = idOfType(ok(await upload(t, capture(4, 4), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id, 'LogUpload')!;
      const attempts: Array<number | null> = [];
      w.start();
      try {
        await until('COMPLETED', async () => {
          const [row] = await t.dataSource.query(`SELECT analytics_attempt FROM log_upload WHERE id = ?`, [id]);
          attempts.push(row.analytics_attempt == null ? null : Number(row.analytics_attempt));
          return (await status(t, id)).status === 'COMPLETED';
        });
      } finally {
        await w.stop(false);
      }
      expect(f.state.insertsFailed).toBe(2);
      expect(log.events('job.retry').map((r) => [r.kind, r.code, r.refunded])).toEqual([
        ['analytics', 'TOO_MANY_PARTS', true],
        ['analytics', 'TOO_MANY_PARTS', true],
      ]);
      // No attempt was committed before the one that completed, and its roll-up holds every hit it counts, once.
      const row = await status(t, id);
      expect(Number(row.attempts)).toBe(1);
      const committed = attempts[attempts.length - 1]!;
      expect(attempts.filter((a) => a !== null && a !== committed)).toEqual([]);
      expect(await counted(id)).toBe(Number(row.hits));
      const rolled = await (
        await t.services.analytics!.client.query({
          query: `SELECT sum(hits) AS n FROM flow_hit_daily FINAL WHERE upload_id = ${id} AND attempt = ${committed}`,
          format: 'JSONEachRow',
        })
      ).json<{ n: number }>();
      expect(Number(rolled[0].n)).toBe(Number(row.hits));
    });

    it('while ClickHouse is down, uploads are accepted and wait QUEUED, the worker claims nothing more and asks with backoff; once it answers, each completes exactly', async () => {
      const f = faulty(t.services.analytics!.client);
      f.state.down = true;
      const { log, worker: w } = worker(f.client, async () => !f.state.down);
      const ids: number[] = [];
      for (const seed of [2, 3]) ids.push(idOfType(ok(await upload(t, capture(4, seed), { deviceNickname: 'hq' })).logUploadCreate.logUpload.id, 'LogUpload')!);
      w.start();
      try {
        const first = await until('the first job to wait for ClickHouse', async () => {
          const s = await status(t, ids[0]);
          return s.error?.startsWith('Waiting for the analytics tier') ? s : null;
        });
        expect(first).toMatchObject({ status: 'QUEUED' });
        expect(first.error).toContain('ECONNREFUSED');
        expect(Number(first.attempts)).toBe(0);
        await until('the worker to ask ClickHouse again', async () => log.events('analytics.waiting').length >= 3);
        // Nothing else was claimed meanwhile: the second upload never started.
        expect(await status(t, ids[1])).toMatchObject({ status: 'QUEUED', error: null });
        expect(Number((await status(t, ids[1])).attempts)).toBe(0);
        const waits = log.events('analytics.waiting').map((e) => e.delayMs as number);
        expect(waits[2]).toBeGreaterThan(waits[0]);

        f.state.down = false;
        for (const id of ids) await until(`upload ${id} COMPLETED`, async () => (await status(t, id)).status === 'COMPLETED');
      } finally {
        await w.stop(false);
      }
      for (const id of ids) {
        const row = await status(t, id);
        expect(Number(row.attempts)).toBe(1);
        expect(await counted(id)).toBe(Number(row.hits));
      }
      expect(log.events('analytics.back')).toHaveLength(1);
    });
  });

  it('with ANALYTICS_URL at a port nothing listens on: uploads are queued, the job waits without spending its attempt, and the writer says ECONNREFUSED', async () => {
    const port = await closedPort();
    const t = await createTestApp(driver, { ANALYTICS_URL: `http://127.0.0.1:${port}/pcd`, REPORT_MEMORY_MAX_HITS: '0' });
    const log = captureLog('info');
    const w = new LogUploadWorker(
      t.services.queue,
      t.services.processor,
      { leaseMs: 60_000, pollMs: 20, retryBaseMs: 5, analytics: t.services.analytics },
      log.logger,
    );
    try {
      await setup(t);
      const ids: number[] = [];
      for (const seed of [1, 2]) {
        const created = ok(await upload(t, capture(2, seed), { deviceNickname: 'hq' })).logUploadCreate;
        expect(created.logUpload.status).toBe('QUEUED');
        ids.push(idOfType(created.logUpload.id, 'LogUpload')!);
      }
      w.start();
      // The tables were never migrated (ClickHouse down at start): the tier says so before any statement.
      const first = await until('the job to wait', async () => {
        const s = await status(t, ids[0]);
        return s.error?.includes('NOT_MIGRATED') ? s : null;
      });
      expect(first).toMatchObject({ status: 'QUEUED' });
      expect(Number(first.attempts)).toBe(0);
      await until('the worker to ask again', async () => log.events('analytics.waiting').length >= 2);
      expect(await status(t, ids[1])).toMatchObject({ status: 'QUEUED', error: null });
      expect(log.events('upload.failed')).toEqual([]);

      // Migrated or not, a statement that cannot connect comes out as the tier unavailable, named by its code.
      const direct = new AnalyticsHits(t.services.analytics!.client);
      const err = await direct.uploadHitCounts(t.accountId, []).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AnalyticsUnavailableError);
      expect(analyticsUnavailable(err)).toBe('ECONNREFUSED');

      // Deleting a device needs its hits gone from ClickHouse first: refused, and the device is still there.
      const [{ id: device }] = await t.dataSource.query(`SELECT id FROM device`);
      const res = await t.gql(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, {
        i: { id: toGlobalId('Device', Number(device)) },
      });
      expect(res.errors?.length).toBe(1);
      expect(res.errors![0].extensions?.code).toBe('ANALYTICS_UNAVAILABLE');
      expect(res.errors![0].message).toMatch(/analytics tier \(ClickHouse\) is unavailable; nothing was changed/);
      expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM device`))[0].n)).toBe(1);
    } finally {
      await w.stop(false);
      await t.close();
    }
  });
});
