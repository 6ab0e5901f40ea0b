import fs from 'node:fs';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { upload } from '../../helpers/ingest';
import { LogUploadProcessor, ProcessOutcome } from '../../../src/modules/log-upload/log-upload.processor';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { AnalyticsHits, committedAttempts } from '../../../src/modules/analytics/analytics-hits';
import { HitWriter } from '../../../src/modules/flow-hit/hit-writer';
import { INSERT_COLUMNS, NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { AnalyticsUnavailableError } from '../../../src/modules/analytics/analytics-errors';
import { chdbConfig, describeChdb } from './chdb';

/**
 * With ANALYTICS_URL, the hit writer puts an upload's hits in ClickHouse under a new attempt, and the COMPLETED
 * commit records that attempt in SQL: a run stopped between the two writes leaves rows no read counts, and a
 * re-run replaces them exactly (compared with the uninterrupted run).
 */
const BAD = ['198.51.100.7', '203.0.113.9'];
const START = Date.parse('2024-06-01T20:00:00Z');

function capture(hours: number): string {
  const lines: string[] = [];
  for (let i = 0, at = START; at < START + hours * 3_600_000; i++, at += 7 * 60_000) {
    lines.push(`${(at / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 5)}.${30000 + i} > ${BAD[i % 2]}.443: Flags [S], seq 1, win 1, length ${i % 50}`);
  }
  return `${lines.join('\n')}\n`;
}

describe.each(drivers)('the hit writer on ClickHouse (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const dir = chdbConfig().path;
    let t: TestApp;
    let uploadId: number;
    let hits: AnalyticsHits;
    /** The worker's loop, with the processor writing through the ClickHouse hit writer. */
    const processQueued = async (): Promise<ProcessOutcome[]> => {
      const processor = new LogUploadProcessor(t.dataSource, t.services.queue, t.services.iocIndexes, { leaseMs: 60_000, hitWriter: new HitWriter(hits) });
      const outcomes: ProcessOutcome[] = [];
      for (;;) {
        const job = await t.services.queue.claim('test-worker', 60_000);
        if (!job) return outcomes;
        outcomes.push(await processor.process(job.uploadId, 'test-worker'));
      }
    };

    /** Queues the upload again (logUploadReprocess), for processQueued() to run. */
    const reprocess = async () =>
      ok(
        await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, {
          i: { id: toGlobalId('LogUpload', uploadId) },
        }),
      );

    const rows = async <T>(query: string) => (await (await t.services.analytics!.client.query({ query, format: 'JSONEachRow' })).json()) as T[];
    const counted = async () => hits.uploadHitCounts(t.accountId, await committedAttempts(t.dataSource.manager, t.accountId));
    /** The committed attempt's hits, without the attempt columns, in order. */
    const committedHits = async () => {
      const [c] = await committedAttempts(t.dataSource.manager, t.accountId);
      return rows<Record<string, unknown>>(`SELECT * EXCEPT (attempt) FROM flow_hit WHERE upload_id = ${c.uploadId} AND attempt = ${c.attempt} ORDER BY seq`);
    };

    beforeAll(async () => {
      t = await createTestApp(driver, { ANALYTICS_URL: `chdb://${dir}`, REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0' });
      await t.services.analytics!.migrate();
      hits = new AnalyticsHits(t.services.analytics!.client);
      const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
        .iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      });
      const created = ok(await upload(t, capture(6), { deviceNickname: 'hq' }));
      uploadId = idOfType(created.logUploadCreate.logUpload.id, 'LogUpload')!;
    });

    afterAll(async () => {
      await t?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('writes the hits to ClickHouse, not SQL, under the attempt the COMPLETED commit records', async () => {
      const [outcome] = await processQueued();
      expect(outcome.status).toBe('COMPLETED');
      expect(outcome.hits).toBeGreaterThan(40);
      expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit`))[0].n)).toBe(0);
      expect(await counted()).toEqual(new Map([[uploadId, outcome.hits]]));
      expect(await rows(`SELECT count() AS n FROM flow_hit`)).toEqual([{ n: outcome.hits }]);
    });

    it('counts nothing of a run stopped between the ClickHouse write and the COMPLETED commit, and a re-run replaces it exactly', async () => {
      const before = await committedHits();
      const stored = await rows<Record<string, unknown>>(`SELECT * FROM flow_hit ORDER BY seq`);
      // The stop: the ClickHouse write happens, then the SQL transaction never commits.
      const writer = new HitWriter(hits);
      await expect(
        t.dataSource.transaction(async (em) => {
          await writer.replaceUpload(em, { accountId: t.accountId, uploadId }, stored.map(byKey));
          throw new Error('killed before COMPLETED');
        }),
      ).rejects.toThrow('killed');
      expect(await rows(`SELECT uniqExact(attempt) AS n FROM flow_hit`)).toEqual([{ n: 2 }]);
      expect(await counted()).toEqual(new Map([[uploadId, before.length]]));
      expect(await committedHits()).toEqual(before);

      // The re-run (a reprocess) writes a third attempt, commits it, and leaves it alone.
      await reprocess();
      const [outcome] = await processQueued();
      expect(outcome.status).toBe('COMPLETED');
      expect(await rows(`SELECT uniqExact(attempt) AS n, count() AS hits FROM flow_hit`)).toEqual([{ n: 1, hits: before.length }]);
      expect(await counted()).toEqual(new Map([[uploadId, before.length]]));
      expect(await committedHits()).toEqual(before);
    });

    it('prepares the staging beside the parse, once a run, and waits for it however the run ends', async () => {
      const before = await committedHits();
      const log: string[] = [];
      const removeStale = hits.removeStale.bind(hits);
      const found = hits.found.bind(hits);
      // Slow, so that a run that did not wait for it would end first.
      hits.removeStale = async (id, keep) => {
        log.push(`removeStale ${keep === null ? 'none' : 'committed'}`);
        await new Promise((r) => setTimeout(r, 150));
        await removeStale(id, keep);
        log.push('removed');
      };
      hits.found = async (id, attempt) => {
        log.push('found');
        return found(id, attempt);
      };
      try {
        const processor = new LogUploadProcessor(t.dataSource, t.services.queue, t.services.iocIndexes, {
          leaseMs: 60_000,
          hitWriter: new HitWriter(hits),
          onStep: (step) => void log.push(step),
        });
        await reprocess();
        const job = (await t.services.queue.claim('test-worker', 60_000))!;
        const outcome = await processor.process(job.uploadId, 'test-worker');
        log.push(`process ${outcome.status}`);
        expect(outcome.status).toBe('COMPLETED');
        // Begun before the hits were known (the parse of this small upload may end first), done before they were
        // staged, and not done again then.
        expect(log[0]).toBe('found');
        expect(log.filter((l) => l === 'found' || l.startsWith('removeStale'))).toEqual(['found', 'removeStale committed']);
        const steps = log.filter((l) => l !== 'found' && !l.startsWith('removeStale'));
        // The delete and the match end in either order; staging waits for both.
        expect([...steps.slice(0, 2)].sort()).toEqual(['matched', 'removed']);
        expect(steps.slice(2)).toEqual(['staged', 'committed', 'settled', 'process COMPLETED']);
        expect(await committedHits()).toEqual(before);

        // A run that ends before staging (stopped at once) returns only once its preparation's delete has run: none
        // of it lands after the lease is handed back.
        log.length = 0;
        await reprocess();
        const again = (await t.services.queue.claim('test-worker', 60_000))!;
        const stop = new AbortController();
        stop.abort();
        const stopped = await processor.process(again.uploadId, 'test-worker', stop.signal);
        log.push(`process ${stopped.status}`);
        expect(stopped.status).toBe('LEASE_LOST');
        expect(log).toEqual(['found', 'removeStale committed', 'removed', 'process LEASE_LOST']);
        expect(await t.services.queue.release(again.uploadId, 'test-worker')).toBe(true);
      } finally {
        hits.removeStale = removeStale;
        hits.found = found;
      }
      // The released job, run to the end: the same hits.
      const [outcome] = await processQueued();
      expect(outcome.status).toBe('COMPLETED');
      expect(await committedHits()).toEqual(before);
      expect(await rows(`SELECT uniqExact(attempt) AS n FROM flow_hit`)).toEqual([{ n: 1 }]);
    });

    it('prepares the staging again when its first preparation failed (ClickHouse away during the parse)', async () => {
      const before = await committedHits();
      const removeStale = hits.removeStale.bind(hits);
      let calls = 0;
      hits.removeStale = async (id, keep) => {
        if (++calls === 1) throw new AnalyticsUnavailableError('NOT_MIGRATED');
        return removeStale(id, keep);
      };
      try {
        await reprocess();
        const [outcome] = await processQueued();
        expect(outcome.status).toBe('COMPLETED');
        expect(calls).toBe(2);
      } finally {
        hits.removeStale = removeStale;
      }
      expect(await committedHits()).toEqual(before);
      expect(await rows(`SELECT uniqExact(attempt) AS n FROM flow_hit`)).toEqual([{ n: 1 }]);
    });

    it('deletes a device’s hits there too', async () => {
      const [{ device_id }] = await rows<{ device_id: number }>(`SELECT device_id FROM flow_hit LIMIT 1`);
      await t.dataSource.transaction((em) => new HitWriter(hits).deleteDevice(em, t.accountId, Number(device_id)));
      expect(await rows(`SELECT count() AS n FROM flow_hit`)).toEqual([{ n: 0 }]);
    });
  });
});

/** A ClickHouse row (column names) back to a NewHit (property names). */
function byKey(row: Record<string, unknown>): NewHit {
  const out: Record<string, unknown> = {};
  for (const c of INSERT_COLUMNS) out[c.key] = row[c.sql];
  return out as unknown as NewHit;
}
