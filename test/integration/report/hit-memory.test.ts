import { drivers } from '../../helpers/db';
import { turnCounter } from '../../helpers/turns';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { HitMemory } from '../../../src/modules/report/hit-memory';
import { ReportService } from '../../../src/modules/report/report.service';
import { SqlExecutor } from '../../../src/modules/report/groupings/sql.executor';
import { BY_CATEGORY, BY_DIRECTION, BY_IOC, BY_SEVERITY, TOTALS } from '../../../src/modules/report/groupings/groupings';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { HitFilter } from '../../../src/modules/flow-hit/hit-filter.inputs';

/**
 * The in-memory report store's own edges (rollup-equivalence.test.ts compares its answers): changes committed
 * while it loads, a change log pruned past it, an account over its budget, and a store in another process
 * (another instance on the same database) following uploads it did not see being written.
 */

const START = Date.parse('2024-06-03T00:00:00Z');
const BAD = ['198.51.100.10', '198.51.100.11', '203.0.113.7'];

/** `count` outbound TCP connections from 10.0.0.x to the listed addresses, one second apart from `at`. */
function capture(at: number, count: number, seed: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const t = (at + i * 1000) / 1000;
    lines.push(`${t.toFixed(6)} IP 10.0.0.${1 + ((i + seed) % 7)}.${40000 + i} > ${BAD[(i * 7 + seed) % BAD.length]}.443: Flags [S], seq 1, win 512, length 0`);
  }
  return `${lines.join('\n')}\n`;
}

describe.each(drivers)('in-memory report store (%s)', (driver) => {
  let t: TestApp;
  let list: string;
  let uploads: string[];
  const count = async () => Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE account_id = ?', [t.accountId]))[0].n);
  const window = () => resolveHitFilter(t.accountId, { from: new Date(START - 3600_000), to: new Date(START + 10 * 24 * 3600_000) } as HitFilter);

  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '0' });
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    list = (
      await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
        i: { name: 'bad', kind: 'BLOCK', severity: 4, category: 'MALWARE' },
      })
    ).iocListCreate.iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
      i: { nickname: 'edge', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
    });
    uploads = [];
    for (let day = 0; day < 4; day++) {
      const res = ok(await upload(t, capture(START + day * 86_400_000, 60, day), { deviceNickname: 'edge' }));
      uploads.push(res.logUploadCreate.logUpload.id);
    }
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
  });
  afterAll(() => t.close());

  it("computes a request's groupings one per turn of the event loop, all from one snapshot", async () => {
    const memory = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
    await memory.warm(t.accountId);
    const reports = new ReportService(t.dataSource, { memory });
    const live = (await memory.view(t.accountId))!;
    const all = live.hits;
    const dropped = idOfType(uploads[0], 'LogUpload')!;
    const droppedHits = Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE upload_id = ?', [dropped]))[0].n);
    expect(droppedHits).toBeGreaterThan(0);

    const f = window();
    const turns = turnCounter();
    const at: number[] = [];
    const seen = <T>(p: Promise<T>) => p.then((v) => (at.push(turns.now), v));
    const totals = seen(reports.group(f, TOTALS).then(([t]) => t));
    const rest = [
      seen<Array<{ hits: number }>>(reports.group(f, BY_DIRECTION)),
      seen<Array<{ hits: number }>>(reports.group(f, BY_SEVERITY)),
      seen<Array<{ hits: number }>>(reports.group(f, BY_CATEGORY)),
    ];
    await totals;
    // A change reaches the store between two groupings of the request (as a sync for another request would apply it).
    live.dropUpload(dropped);
    const [directions, severities, categories] = await Promise.all(rest);
    turns.stop();
    // Each grouping in a turn of its own...
    expect(new Set(at).size).toBe(4);
    // ...and all of them from the snapshot the first one took.
    const sum = (rows: Array<{ hits: number }>) => rows.reduce((n, r) => n + r.hits, 0);
    expect([(await totals).hits, sum(directions), sum(severities), sum(categories)]).toEqual([all, all, all, all]);
    // The next request sees the change.
    expect((await reports.group(window(), TOTALS))[0].hits).toBe(all - droppedHits);
    memory.close();
  });

  it('follows uploads another process writes, through the change log alone', async () => {
    // A second store on the same database stands for another API process: nothing tells it about writes.
    const other = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
    await other.warm(t.accountId);
    expect((await other.view(t.accountId))?.hits).toBe(await count());
    ok(await upload(t, capture(START + 5 * 86_400_000, 25, 9), { deviceNickname: 'edge' }));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    expect((await other.view(t.accountId))?.hits).toBe(await count());
    const [totals] = await new ReportService(t.dataSource, { memory: other }).group(window(), TOTALS);
    expect(totals.hits).toBe(await count());
    other.close();
  });

  it('applies the changes committed while it loads', async () => {
    const before = await count();
    // Fewer entries, so the reprocessed upload has fewer hits than the store's load batches saw.
    const ids = (await t.dataSource.query('SELECT id FROM ioc WHERE list_id = ? AND cidr = ?', [idOfType(list, 'IocList'), `${BAD[0]}/32`])).map(
      (r: { id: number }) => Number(r.id),
    );
    expect((await t.services.iocs.remove(t.accountId, ids)).ok).toBe(true);
    let changed = false;
    const loading = new HitMemory(t.dataSource, {
      maxHits: 1_000_000,
      batch: 7,
      afterBatch: async () => {
        if (changed) return;
        // After the first batch was read: the upload it holds is processed again, and committed.
        changed = true;
        expect((await t.services.logUploads.reprocess(t.accountId, idOfType(uploads[0], 'LogUpload'))).ok).toBe(true);
        expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
      },
    });
    await loading.warm(t.accountId);
    expect(changed).toBe(true);
    const after = await count();
    expect(after).toBeLessThan(before);
    expect((await loading.view(t.accountId))?.hits).toBe(after);
    loading.close();
  });

  it('reloads from the database when the change log was pruned past it', async () => {
    const behind = new HitMemory(t.dataSource, { maxHits: 1_000_000 });
    await behind.warm(t.accountId);
    expect((await t.services.logUploads.reprocess(t.accountId, idOfType(uploads[1], 'LogUpload'))).ok).toBe(true);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    expect((await t.services.logUploads.reprocess(t.accountId, idOfType(uploads[2], 'LogUpload'))).ok).toBe(true);
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    // Everything but the newest change is pruned (as the retention job does after a day): the store cannot
    // replay what it missed, so it lets reports use SQL while it loads again.
    await t.dataSource.query('UPDATE hit_change SET recorded_at = 0');
    const { pruneHitChanges } = await import('../../../src/modules/flow-hit/hit-change');
    expect(await pruneHitChanges(t.dataSource.manager)).toBeGreaterThan(0);
    expect(await behind.view(t.accountId)).toBeNull();
    await behind.warm(t.accountId);
    expect((await behind.view(t.accountId))?.hits).toBe(await count());
    behind.close();
  });

  it('reports an account over its budget from SQL, with the same answers', async () => {
    const small = new HitMemory(t.dataSource, { maxHits: 10 });
    await small.warm(t.accountId);
    expect(await small.view(t.accountId)).toBeNull();
    const f = window();
    const served = new ReportService(t.dataSource, { memory: small });
    expect(await served.executor(f)).toBeInstanceOf(SqlExecutor);
    expect(await served.group(f, BY_IOC, { first: 10 })).toEqual(await new ReportService(t.dataSource).group(f, BY_IOC, { first: 10 }));
    small.close();
  });
});
