import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { EXPORT_HEADER, FLOW_HIT_COLUMNS, HIT_COLUMNS, INSERT_COLUMNS, STORE_COLUMNS } from '../../../src/modules/flow-hit/flow-hit.columns';
import { FlowHit } from '../../../src/modules/flow-hit/flow-hit.entity';
import { ROLLUP_GRAINS, rollupColumns } from '../../../src/modules/flow-hit/hit-rollup';
import { HitMemory } from '../../../src/modules/report/hit-memory';
import { RetentionService } from '../../../src/modules/report/retention.service';
import { failingNth, watchStatements } from '../../helpers/sql-count';
import { turnCounter } from '../../helpers/turns';

/**
 * flow_hit's column declaration against the entity and the migrated table, and the one writer of hits: after
 * every kind of write (an upload's hits replaced, a retention purge in batches that cuts through an hour and a
 * day, an old upload's late hits deleted, a device deleted) the stored roll-ups equal the roll-ups recomputed
 * here from the hits left (literal SQL, not the code's grain), and the change log has told a report store that
 * follows it exactly which hits are left.
 */

const BAD = ['198.51.100.7', '203.0.113.9', '2001:db8:bad::1'];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.parse('2024-06-01T20:00:00Z');

/** Flows every 7 minutes over `hours`, from a few hosts to the listed addresses, TCP, UDP and ICMP. */
function capture(start: number, hours: number, seed: number): string {
  const lines: string[] = [];
  for (let i = 0, at = start; at < start + hours * HOUR; i++, at += 7 * 60_000) {
    const bad = BAD[(i + seed) % BAD.length];
    const v6 = bad.includes(':');
    const inside = v6 ? `fd00::${1 + (i % 3)}` : `10.1.0.${1 + ((i + seed) % 5)}`;
    const ts = (at / 1000).toFixed(6);
    const fam = v6 ? 'IP6' : 'IP';
    if (!v6 && i % 5 === 0) lines.push(`${ts} ${fam} ${inside} > ${bad}: ICMP echo request, id 1, seq 1, length 64`);
    else if (!v6 && i % 5 === 1) lines.push(`${ts} ${fam} ${inside}.${30000 + i} > ${bad}.53: UDP, length 40`);
    else {
      lines.push(`${ts} ${fam} ${bad}.${40000 + i} > ${inside}.22: Flags [S], seq 1, win 1, length ${i % 50}`);
      lines.push(`${((at + 500) / 1000).toFixed(6)} ${fam} ${inside}.22 > ${bad}.${40000 + i}: Flags [S.], seq 1, ack 2, win 1, length ${i % 30}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// The roll-ups' definition spelled out in SQL: a reference the code's grain (hit-rollup.ts) must agree with.
const bucket = (driver: string, ms: number) => (driver === 'mysql' ? `(first_seen_at DIV ${ms}) * ${ms}` : `(first_seen_at / ${ms}) * ${ms}`);
const REFERENCE = {
  hit_hour: (d: string) => `SELECT account_id, upload_id, ${bucket(d, HOUR)} AS bucket_at, device_id, direction, ioc_list_id, severity, category, protocol,
      COUNT(*) AS hits, SUM(packets_forward + packets_reverse) AS packets, SUM(bytes_forward + bytes_reverse) AS bytes, MIN(first_seen_at) AS first_seen_at, MAX(last_seen_at) AS last_seen_at
    FROM flow_hit GROUP BY account_id, upload_id, ${bucket(d, HOUR)}, device_id, direction, ioc_list_id, severity, category, protocol`,
  hit_day_host: (
    d: string,
  ) => `SELECT account_id, upload_id, ${bucket(d, DAY)} AS bucket_at, device_id, internal_ip, direction, ioc_list_id, severity, category,
      COUNT(*) AS hits, SUM(packets_forward + packets_reverse) AS packets, MIN(first_seen_at) AS first_seen_at, MAX(last_seen_at) AS last_seen_at
    FROM flow_hit GROUP BY account_id, upload_id, ${bucket(d, DAY)}, device_id, internal_ip, direction, ioc_list_id, severity, category`,
};

describe.each(drivers)('flow_hit columns and the hit writer (%s)', (driver) => {
  let t: TestApp;
  let devices: string[];

  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '35' });
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    devices = [];
    for (const [d, nickname] of ['hq', 'branch'].entries()) {
      devices.push(
        (
          await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
            i: { nickname, ipType: 'STATIC', ipAddress: `8.8.${d}.8`, policy },
          })
        ).deviceCreate.device.id,
      );
      // Two uploads per device over the same hours (roll-up rows are per upload), across a day boundary.
      for (const seed of [0, 1]) ok(await upload(t, capture(START + seed * 30 * 60_000, 30, seed + d), { deviceNickname: nickname }));
    }
    // One upload of a capture dated in the future: received before a purge's cutoff, its hits after it.
    ok(await upload(t, capture(Date.parse('2099-01-01T00:00:00Z'), 5, 3), { deviceNickname: 'branch' }));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(Array(5).fill('COMPLETED'));
  });
  afterAll(() => t.close());

  async function tableColumns(table: string): Promise<Array<{ name: string; nullable: boolean }>> {
    const runner = t.dataSource.createQueryRunner();
    try {
      const found = await runner.getTable(table);
      return found!.columns.map((c) => ({ name: c.name, nullable: c.isNullable })).sort((a, b) => a.name.localeCompare(b.name));
    } finally {
      await runner.release();
    }
  }

  it("declares exactly the entity's and the migrated table's columns, nullability included", async () => {
    const declared = HIT_COLUMNS.map((c) => ({ name: c.sql, nullable: c.nullable })).sort((a, b) => a.name.localeCompare(b.name));
    const entity = t.dataSource
      .getMetadata(FlowHit)
      .columns.map((c) => ({ name: c.databaseName, nullable: c.isNullable }))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(declared).toEqual(entity);
    expect(declared).toEqual(await tableColumns('flow_hit'));
    // Property names too: the declaration's keys are the entity's properties.
    for (const c of HIT_COLUMNS) expect(t.dataSource.getMetadata(FlowHit).findColumnWithPropertyName(c.key)?.databaseName).toBe(c.sql);
    // The codec as the entity stores it: instants and counters as BIGINT, texts as VARCHAR.
    const types = { int: ['int', 'smallint', 'integer'], bigint: ['bigint'], instant: ['bigint'], text: ['varchar'] };
    for (const c of HIT_COLUMNS) {
      const meta = t.dataSource.getMetadata(FlowHit).findColumnWithPropertyName(c.key)!;
      const type = typeof meta.type === 'string' ? meta.type : 'int';
      expect({ column: c.sql, type: types[c.codec].includes(type) ? c.codec : type }).toEqual({ column: c.sql, type: c.codec });
    }
    // Every column but the generated key is written; the store reads only declared columns.
    expect(INSERT_COLUMNS.map((c) => c.sql).sort()).toEqual(
      HIT_COLUMNS.filter((c) => c.key !== 'id')
        .map((c) => c.sql)
        .sort(),
    );
    expect(STORE_COLUMNS.every((c) => c.key in FLOW_HIT_COLUMNS)).toBe(true);
  });

  it("declares the roll-ups' columns as their migrated tables have them", async () => {
    for (const grain of ROLLUP_GRAINS) {
      const migrated = (await tableColumns(grain.table)).map((c) => c.name).filter((n) => n !== 'id');
      expect(rollupColumns(grain).sort()).toEqual(migrated);
    }
  });

  it('exports the declared header, in order, in CSV and NDJSON', async () => {
    const q = `from=2024-05-01T00:00:00Z&to=2024-07-01T00:00:00Z`;
    const csv = await request(t.http.app).get(`/export/flow-hits.csv?${q}`).set('authorization', `Bearer ${t.keys.analyst}`);
    expect(csv.status).toBe(200);
    const [head, ...rows] = csv.text.trim().split('\n');
    expect(head.split(',')).toEqual([...EXPORT_HEADER]);
    expect(rows.length).toBeGreaterThan(100);
    const nd = await request(t.http.app).get(`/export/flow-hits.ndjson?${q}`).set('authorization', `Bearer ${t.keys.analyst}`);
    const first = JSON.parse(nd.text.split('\n')[0]) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual([...EXPORT_HEADER]);
  });

  /** Stored roll-up rows equal those recomputed from the hits left, and a store following the change log holds them. */
  async function inStep(store: HitMemory): Promise<number> {
    const norm = (rows: Array<Record<string, unknown>>) =>
      rows
        .map((r) => {
          const { id: _id, ...rest } = r;
          return JSON.stringify(
            Object.fromEntries(
              Object.entries(rest)
                .map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v])
                .sort(),
            ),
          );
        })
        .sort();
    for (const table of ['hit_hour', 'hit_day_host'] as const) {
      expect(norm(await t.dataSource.query(`SELECT * FROM ${table}`))).toEqual(norm(await t.dataSource.query(REFERENCE[table](driver))));
    }
    const perUpload = new Map<number, number>(
      (
        (await t.dataSource.query('SELECT upload_id, COUNT(*) AS n FROM flow_hit WHERE account_id = ? GROUP BY upload_id', [t.accountId])) as Array<
          Record<string, string | number>
        >
      ).map((r) => [Number(r.upload_id), Number(r.n)]),
    );
    const held = await store.view(t.accountId);
    expect(held).not.toBeNull();
    const heldPerUpload = new Map<number, number>();
    for (const [uploadId, blocks] of held!.uploads)
      heldPerUpload.set(
        uploadId,
        blocks.reduce((n, b) => n + b.n, 0),
      );
    expect(heldPerUpload).toEqual(perUpload);
    return [...perUpload.values()].reduce((a, b) => a + b, 0);
  }

  it('keeps roll-ups and the change log in step with the hits through every write', async () => {
    // A store loaded now, that follows the change log from here on.
    const store = new HitMemory(t.dataSource, { maxHits: 1_000_000, batch: 50 });
    await store.warm(t.accountId);
    const revision = async () => Number((await t.dataSource.query('SELECT revision FROM hit_revision WHERE id = 1'))[0].revision);
    const all = await inStep(store);
    expect(all).toBeGreaterThan(500);
    // Each upload's first run recorded the hits it found (hitsFound tells of it); no DNS hits here.
    const foundOf = async (after: number) =>
      (
        (await t.dataSource.query('SELECT upload_id, found FROM hit_change WHERE revision > ? AND upload_id IS NOT NULL ORDER BY revision', [after])) as any[]
      ).map((r) => [Number(r.upload_id), r.found == null ? null : Number(r.found)]);
    const firstRuns = (await t.dataSource.query('SELECT id, hits FROM log_upload ORDER BY id')) as any[];
    expect(await foundOf(0)).toEqual(firstRuns.map((u) => [Number(u.id), Number(u.hits)]));

    // Replace: an upload re-processed with one entry fewer.
    const v6 = (await t.dataSource.query(`SELECT id FROM ioc WHERE cidr = ?`, ['2001:db8:bad::1/128'])) as Array<{ id: number }>;
    expect(
      (
        await t.services.iocs.remove(
          t.accountId,
          v6.map((r) => Number(r.id)),
        )
      ).ok,
    ).toBe(true);
    const [first] = (await t.dataSource.query('SELECT MIN(id) AS id FROM log_upload')) as Array<{ id: number }>;
    let rev = await revision();
    expect((await t.services.logUploads.reprocess(t.accountId, Number(first.id))).ok).toBe(true);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    expect(await revision()).toBe(rev + 1);
    // A re-run that found nothing it did not have: no hit found (hitsFound sends nothing).
    expect(await foundOf(rev)).toEqual([[Number(first.id), 0]]);
    const replaced = await inStep(store);
    expect(replaced).toBeLessThan(all);

    // Purge in batches of 7, its cutoff inside an hour and a day that keep hits on both sides.
    const cutoff = START + 26 * HOUR + 17 * 60_000 + 123;
    rev = await revision();
    const purge = await new RetentionService(t.dataSource, 35, { batch: 7 }).purge(cutoff + 35 * DAY);
    expect(purge.flowHits).toBeGreaterThan(14);
    expect(await revision()).toBeGreaterThanOrEqual(rev + Math.ceil(purge.flowHits / 7));
    expect(Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE first_seen_at < ?', [cutoff]))[0].n)).toBe(0);
    expect(
      Number(
        (await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE first_seen_at >= ? AND first_seen_at < ?', [cutoff - (cutoff % DAY), cutoff]))[0].n,
      ),
    ).toBe(0);
    expect(Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM hit_day_host WHERE bucket_at = ?', [cutoff - (cutoff % DAY)]))[0].n)).toBeGreaterThan(0);
    expect(await inStep(store)).toBe(replaced - purge.flowHits);
    // The counts the uploads claim moved with the hits.
    const counts = (await t.dataSource.query('SELECT SUM(hits) AS hits, SUM(hits_purged) AS purged FROM log_upload')) as Array<Record<string, string | number>>;
    expect(Number(counts[0].hits)).toBe(replaced - purge.flowHits);
    expect(Number(counts[0].purged)).toBe(purge.flowHits);

    // A purge whose cutoff is past every upload's receipt: the 2099 upload goes, its hits (after the cutoff)
    // deleted in batches with its roll-ups.
    const late = Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE first_seen_at > ?', [Date.now()]))[0].n);
    expect(late).toBeGreaterThan(14);
    const before = await inStep(store);
    // Received three days ago (a purge in the future would also prune the change log the store follows).
    await t.dataSource.query('UPDATE log_upload SET received_at = received_at - ?', [3 * DAY]);
    rev = await revision();
    const uploadsGone = await new RetentionService(t.dataSource, 1, { batch: 7 }).purge(Date.now());
    expect(uploadsGone.uploads).toBe(5);
    expect(uploadsGone.flowHits).toBe(before);
    expect(await inStep(store)).toBe(0);
    // Hits deleted from uploads are changes that found none.
    const deletions = await foundOf(rev);
    expect(deletions.length).toBeGreaterThan(0);
    expect(deletions.every(([, found]) => found === 0)).toBe(true);
    store.close();
  });

  it("deletes a device's hits and roll-ups with it, and tells the store", async () => {
    // Fresh hits for both devices (the purge above took everything).
    for (const [d, nickname] of ['hq', 'branch'].entries()) ok(await upload(t, capture(Date.now() - 3 * HOUR, 2, d), { deviceNickname: nickname }));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    const store = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
    await store.warm(t.accountId);
    const all = await inStep(store);
    const hq = idOfType(devices[0], 'Device');
    const mine = Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE device_id = ?', [hq]))[0].n);
    expect(mine).toBeGreaterThan(0);
    ok(await t.gql(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, { i: { id: devices[0] } }));
    expect(await inStep(store)).toBe(all - mine);
    for (const grain of ROLLUP_GRAINS)
      expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${grain.table} WHERE device_id = ?`, [hq]))[0].n)).toBe(0);
    store.close();
  });

  // A device can hold millions of hits: its delete goes in chunks along the device's index with turns of the event
  // loop between them (one statement per table held SQLite for seconds), still all or nothing.
  describe('a device with many hits', () => {
    let branchId: number;
    let hits: number;
    beforeAll(async () => {
      branchId = idOfType(devices[1], 'Device')!;
      ok(await upload(t, capture(Date.now() - 200 * HOUR, 190, 7), { deviceNickname: 'branch' }));
      expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
      const [{ id: uploadId }] = await t.dataSource.query(`SELECT id FROM log_upload WHERE device_id = ? ORDER BY id DESC LIMIT 1`, [branchId]);
      const cols = INSERT_COLUMNS.map((c) => c.sql).join(', ');
      // Copies of its hits (same upload) until one upload holds more than two chunks.
      while (Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit WHERE upload_id = ?`, [uploadId]))[0].n) < 11_000) {
        await t.dataSource.query(`INSERT INTO flow_hit (${cols}) SELECT ${cols} FROM flow_hit WHERE upload_id = ?`, [uploadId]);
      }
      hits = Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit WHERE device_id = ?`, [branchId]))[0].n);
    });
    const count = async (table: string) => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table} WHERE device_id = ?`, [branchId]))[0].n);

    it('deletes nothing when a chunk fails', async () => {
      const chunks = await failingNth(t.dataSource, /^DELETE FROM flow_hit WHERE id IN/, 2, () =>
        expect(t.services.devices.delete(t.accountId, branchId)).rejects.toThrow(/injected/),
      );
      expect(chunks).toBe(2);
      expect(await count('flow_hit')).toBe(hits);
      expect(await t.dataSource.query(`SELECT id FROM device WHERE id = ?`, [branchId])).toHaveLength(1);
    });

    it('deletes its hits in chunks, with turns of the event loop between them', async () => {
      const turns = turnCounter();
      const at: number[] = [];
      try {
        await watchStatements(
          t.dataSource,
          async () => expect((await t.services.devices.delete(t.accountId, branchId)).ok).toBe(true),
          (sql) => {
            if (/^DELETE FROM flow_hit WHERE id IN/.test(sql)) at.push(turns.now);
          },
        );
      } finally {
        turns.stop();
      }
      expect(at.length).toBeGreaterThanOrEqual(3);
      expect(new Set(at).size).toBe(at.length);
      expect(await count('flow_hit')).toBe(0);
      expect(await count('log_upload')).toBe(0);
      expect(await t.dataSource.query(`SELECT id FROM device WHERE id = ?`, [branchId])).toEqual([]);
    });
  });
});
