import fs from 'node:fs';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { committedAttempts } from '../../../src/modules/analytics/analytics-hits';
import { HIT_COLUMNS, hitIdentity, INSERT_COLUMNS, NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import { LogUploadProcessor } from '../../../src/modules/log-upload/log-upload.processor';
import { chdbConfig, describeChdb } from './chdb';

/**
 * With ANALYTICS_URL, every write of flow hits goes to ClickHouse and behaves exactly as on SQL: the same steps run
 * on an app without the tier and on one with it (chDB), and the hits (by stable identity, with how they were
 * found), a retro-hunt's added/removed counts and the alert outbox are compared. Then the worker is stopped at
 * each step of the write (before ClickHouse, after it before the COMPLETED commit, after the commit before the
 * superseded rows are removed) and the committed hits are compared with the uninterrupted run's.
 */
const BAD = ['198.51.100.7', '203.0.113.9', '192.0.2.77'];
const START = Date.parse('2024-06-01T20:00:00Z');

function capture(hours: number, seed = 0): string {
  const lines: string[] = [];
  for (let i = 0, at = START + seed * 1000; at < START + hours * 3_600_000; i++, at += 7 * 60_000) {
    lines.push(`${(at / 1000).toFixed(6)} IP 10.1.0.${1 + (i % 5)}.${30000 + i + seed} > ${BAD[i % 3]}.443: Flags [S], seq 1, win 1, length ${i % 50}`);
  }
  return `${lines.join('\n')}\n`;
}

type Row = Record<string, unknown>;

/** A hit as both stores give it back, without what differs by store (ids) or by clock (found_at, as a rank). */
function comparable(rows: Row[]): string[] {
  const firstFound = Math.min(...rows.map((r) => Number(r.found_at)));
  return rows
    .map((r) => {
      const h = byKey(r);
      const rest = INSERT_COLUMNS.filter((c) => !['foundAt', 'retroHuntId', 'uploadId', 'deviceId', 'accountId'].includes(c.key)).map((c) => String(h[c.key]));
      const when = Number(r.found_at) === firstFound ? 'first' : 'later';
      return `${hitIdentity(h)}#${rest.join('|')}#${when}#${r.retro_hunt_id == null ? '' : 'hunt'}`;
    })
    .sort();
}

/** A row of either store back to a NewHit (MySQL gives BIGINTs as strings, ClickHouse and SQLite as numbers). */
function byKey(row: Row): NewHit {
  const out: Row = {};
  for (const c of HIT_COLUMNS) {
    const v = row[c.sql];
    out[c.key] = v == null ? null : c.codec === 'text' ? String(v) : Number(v);
  }
  return out as unknown as NewHit;
}

interface Side {
  t: TestApp;
  list: string;
  iocIds: Map<string, number>;
  analytics: boolean;
}

describe.each(drivers)('flow hits in ClickHouse, as on SQL (%s)', (driver) => {
  describeChdb('on chDB', () => {
    const dir = chdbConfig().path;
    let sql: Side;
    let ch: Side;

    async function setup(env: Record<string, string>, analytics: boolean): Promise<Side> {
      const t = await createTestApp(driver, { REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0', ALERT_DESTINATION_ALLOW: '127.0.0.0/8', ...env });
      if (analytics) await t.services.analytics!.migrate();
      const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
      const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
        .iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.slice(0, 2).map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
      });
      const dest = (
        await q(`mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } } }`, {
          i: { name: 'hook', webhook: { url: 'http://127.0.0.1:9/' } },
        })
      ).alertDestinationCreate.alertDestination.id;
      await q(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { userErrors { message } } }`, { i: { name: 'all', destinations: [dest] } });
      return { t, list, iocIds: await iocIds(t), analytics };
    }

    async function iocIds(t: TestApp): Promise<Map<string, number>> {
      const rows: Array<{ id: number; cidr: string }> = await t.dataSource.query(`SELECT id, cidr FROM ioc`);
      return new Map(rows.map((r) => [r.cidr.replace(/\/32$/, ''), Number(r.id)]));
    }

    /** The committed hits: SQL's flow_hit, or ClickHouse's rows of each upload's committed attempt. */
    async function hits(s: Side, uploadId?: number): Promise<Row[]> {
      if (!s.analytics) return s.t.dataSource.query(`SELECT * FROM flow_hit${uploadId ? ` WHERE upload_id = ${uploadId}` : ''}`);
      const committed = (await committedAttempts(s.t.dataSource.manager, s.t.accountId)).filter((c) => !uploadId || c.uploadId === uploadId);
      if (committed.length === 0) return [];
      const where = committed.map((c) => `(upload_id = ${c.uploadId} AND attempt = ${c.attempt})`).join(' OR ');
      return chRows(s, `SELECT * FROM flow_hit WHERE ${where}`);
    }
    const chRows = async (s: Side, query: string) => (await (await s.t.services.analytics!.client.query({ query, format: 'JSONEachRow' })).json()) as Row[];
    const alerts = async (s: Side) =>
      (await s.t.dataSource.query(`SELECT ioc_id, internal_key, found_by, hit_count FROM alert`))
        .map((r: Row) => `${r.ioc_id}|${r.internal_key}|${r.found_by}|${r.hit_count}`)
        .sort();
    const deliveries = async (s: Side) => Number((await s.t.dataSource.query(`SELECT COUNT(*) AS n FROM alert_delivery`))[0].n);

    async function settleHunts(t: TestApp) {
      const far = Date.now() + 60_000;
      await t.services.retroHunts.runDue(far);
      await processQueued(t.services);
      await t.services.retroHunts.runDue(far);
    }

    beforeAll(async () => {
      sql = await setup({}, false);
      ch = await setup({ ANALYTICS_URL: `chdb://${dir}` }, true);
    });

    afterAll(async () => {
      await sql?.t.close();
      await ch?.t.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('writes the same hits on first processing, in ClickHouse only, with the same alerts', async () => {
      for (const s of [sql, ch]) ok(await upload(s.t, capture(6), { deviceNickname: 'hq' }));
      const [[a], [b]] = [await processQueued(sql.t.services), await processQueued(ch.t.services)];
      expect(a.status).toBe('COMPLETED');
      expect(b).toMatchObject({ status: 'COMPLETED', hits: a.hits });
      expect(a.hits).toBeGreaterThan(20);
      expect(Number((await ch.t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit`))[0].n)).toBe(0);
      expect(comparable(await hits(ch))).toEqual(comparable(await hits(sql)));
      expect(await alerts(ch)).toEqual(await alerts(sql));
      expect((await alerts(ch)).length).toBeGreaterThan(0);
      expect(await deliveries(ch)).toBe(await deliveries(sql));
    });

    it('a retro-hunt re-run counts the same hits added and removed, keeps how earlier hits were found, and alerts only for the new', async () => {
      const alertsBefore = await alerts(ch);
      for (const s of [sql, ch]) {
        const q = async (query: string, v: Record<string, unknown> = {}) => ok(await s.t.gql(query, v));
        await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: s.list, entries: [{ value: BAD[2] }] } });
        await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { removed { id } } }`, { i: { ids: [toGlobalId('Ioc', s.iocIds.get(BAD[1])!)] } });
        await settleHunts(s.t);
      }
      const hunts = async (s: Side) =>
        (await s.t.dataSource.query(`SELECT status, uploads_done, hits_added, hits_removed FROM retro_hunt ORDER BY id`)).map((r: Row) =>
          [r.status, r.uploads_done, r.hits_added, r.hits_removed].map(String).join(' '),
        );
      const sqlHunts = await hunts(sql);
      expect(sqlHunts.some((h: string) => /^COMPLETED 1 [1-9]\d* [1-9]\d*$/.test(h))).toBe(true);
      expect(await hunts(ch)).toEqual(sqlHunts);
      const after = comparable(await hits(ch));
      expect(after).toEqual(comparable(await hits(sql)));
      // Hits of BAD[0] kept their first-run found_at; BAD[2]'s are the hunt's.
      expect(after.filter((h) => h.endsWith('#first#'))).toHaveLength(after.filter((h) => h.includes(BAD[0])).length);
      expect(after.filter((h) => h.endsWith('#later#hunt')).length).toBeGreaterThan(0);
      expect(await alerts(ch)).toEqual(await alerts(sql));
      expect(await alerts(ch)).not.toEqual(alertsBefore);
      // One attempt left per upload in ClickHouse: the superseded one was removed after the commit.
      expect(await chRows(ch, `SELECT upload_id, uniqExact(attempt) AS n FROM flow_hit GROUP BY upload_id`)).toEqual([expect.objectContaining({ n: 1 })]);
    });

    it('a reprocess finding the same hits adds none, removes none and alerts for none', async () => {
      const before = { hits: comparable(await hits(ch)), alerts: await alerts(ch), deliveries: await deliveries(ch) };
      for (const s of [sql, ch]) {
        const [{ id }] = await s.t.dataSource.query(`SELECT id FROM log_upload ORDER BY id LIMIT 1`);
        ok(
          await s.t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, {
            i: { id: toGlobalId('LogUpload', Number(id)) },
          }),
        );
        expect((await processQueued(s.t.services))[0].status).toBe('COMPLETED');
      }
      expect({ hits: comparable(await hits(ch)), alerts: await alerts(ch), deliveries: await deliveries(ch) }).toEqual(before);
      expect(comparable(await hits(sql))).toEqual(before.hits);
    });

    describe('stopped at each step of the write', () => {
      const steps = ['matched', 'staged', 'committed', 'settled'] as const;

      it.each(steps)('stopped after "%s": never counts twice nor loses a hit, and the run that takes over leaves the uninterrupted result', async (step) => {
        const seed = steps.indexOf(step) + 1;
        // The uninterrupted run, on SQL.
        ok(await upload(sql.t, capture(3, seed), { deviceNickname: 'hq' }));
        const [base] = await processQueued(sql.t.services);
        const expected = comparable(await hits(sql, lastId(await sql.t.dataSource.query(`SELECT id FROM log_upload`))));

        // ClickHouse: first processing, then a reprocess stopped at the step (the process dies there: nothing after runs).
        const created = ok(await upload(ch.t, capture(3, seed), { deviceNickname: 'hq' }));
        const uploadId = idOfType(created.logUploadCreate.logUpload.id, 'LogUpload')!;
        expect((await processQueued(ch.t.services))[0]).toMatchObject({ status: 'COMPLETED', hits: base.hits });
        ok(
          await ch.t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, {
            i: { id: toGlobalId('LogUpload', uploadId) },
          }),
        );
        const dying = new LogUploadProcessor(ch.t.dataSource, ch.t.services.queue, ch.t.services.iocIndexes, {
          leaseMs: 60_000,
          hitWriter: ch.t.services.hitWriter,
          onStep: (at) => {
            if (at === step) throw new Error(`killed after ${step}`);
          },
        });
        const job = await ch.t.services.queue.claim('dying', 60_000);
        await expect(dying.process(job!.uploadId, 'dying')).rejects.toThrow('killed');

        // While it is dead: exactly one set of hits counts, the old or the new, equal either way.
        const counted = comparable(await hits(ch, uploadId));
        expect(counted).toEqual(expected);
        const [row] = await ch.t.dataSource.query(`SELECT status, hits FROM log_upload WHERE id = ?`, [uploadId]);
        expect(Number(row.hits)).toBe(base.hits);

        // Another worker takes the job over once the lease has run out (a commit already made leaves nothing to take).
        const takeover = await ch.t.services.queue.claim('survivor', 60_000, Date.now() + 120_000);
        if (step === 'committed' || step === 'settled') {
          expect(takeover).toBeNull();
          expect(row.status).toBe('COMPLETED');
        } else {
          expect(takeover).toMatchObject({ uploadId, recovered: true });
          expect(await ch.t.services.processor.process(uploadId, 'survivor')).toMatchObject({ status: 'COMPLETED', hits: base.hits });
        }
        expect(comparable(await hits(ch, uploadId))).toEqual(expected);
        // What a stop left behind is swept (the retention purge does it; the next write of the upload too).
        await ch.t.services.hitWriter.sweepAnalytics(ch.t.dataSource.manager);
        const stored = await chRows(ch, `SELECT uniqExact(attempt) AS attempts, count() AS n FROM flow_hit WHERE upload_id = ${uploadId}`);
        expect(stored).toEqual([{ attempts: 1, n: base.hits }]);
        // The daily roll-up too: the committed attempt's rows alone, its hits once.
        const rolled = await chRows(ch, `SELECT uniqExact(attempt) AS attempts, sum(hits) AS n FROM flow_hit_daily FINAL WHERE upload_id = ${uploadId}`);
        expect(rolled).toEqual([{ attempts: 1, n: base.hits }]);
      });
    });

    it('a run that loses its lease after writing to ClickHouse removes what it wrote, and never a committed attempt', async () => {
      const [{ id }] = await ch.t.dataSource.query(`SELECT id FROM log_upload ORDER BY id LIMIT 1`);
      const uploadId = Number(id);
      const before = comparable(await hits(ch, uploadId));
      ok(
        await ch.t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, {
          i: { id: toGlobalId('LogUpload', uploadId) },
        }),
      );
      const losing = new LogUploadProcessor(ch.t.dataSource, ch.t.services.queue, ch.t.services.iocIndexes, {
        leaseMs: 60_000,
        hitWriter: ch.t.services.hitWriter,
        // Another worker takes the job over meanwhile (this one stalled past its lease).
        onStep: async (at) => {
          if (at === 'staged') await ch.t.dataSource.query(`UPDATE log_upload SET lease_owner = 'other' WHERE id = ?`, [uploadId]);
        },
      });
      const job = await ch.t.services.queue.claim('losing', 60_000);
      expect((await losing.process(job!.uploadId, 'losing')).status).toBe('LEASE_LOST');
      expect(await chRows(ch, `SELECT uniqExact(attempt) AS n FROM flow_hit WHERE upload_id = ${uploadId}`)).toEqual([{ n: 1 }]);
      expect(comparable(await hits(ch, uploadId))).toEqual(before);
      // A commit whose answer was lost looks like a lost lease: its rows stay.
      const [committed] = (await committedAttempts(ch.t.dataSource.manager, ch.t.accountId)).filter((c) => c.uploadId === uploadId);
      await ch.t.services.hitWriter.discard(ch.t.dataSource.manager, { uploadId, attempt: committed.attempt, basedOn: null, fresh: [], removed: 0 });
      expect(comparable(await hits(ch, uploadId))).toEqual(before);
      await ch.t.dataSource.query(`UPDATE log_upload SET status = 'COMPLETED', lease_owner = NULL, lease_expires_at = NULL WHERE id = ?`, [uploadId]);
    });

    it('deleting a device deletes its hits in ClickHouse', async () => {
      const [{ id }] = await ch.t.dataSource.query(`SELECT id FROM device`);
      expect(Number((await chRows(ch, `SELECT count() AS n FROM flow_hit`))[0].n)).toBeGreaterThan(0);
      ok(
        await ch.t.gql(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, {
          i: { id: toGlobalId('Device', Number(id)) },
        }),
      );
      expect(await chRows(ch, `SELECT count() AS n FROM flow_hit`)).toEqual([{ n: 0 }]);
    });
  });
});

function lastId(rows: Array<{ id: number | string }>): number {
  return Math.max(...rows.map((r) => Number(r.id)));
}
