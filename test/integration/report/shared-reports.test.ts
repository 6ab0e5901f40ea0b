import path from 'node:path';
import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';
import { c2Account, DAY, everyReport, STORE_START as START } from '../../helpers/report-store';
import type { ReportFault } from '../../helpers/faulty-report-thread';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { HitFilter } from '../../../src/modules/flow-hit/hit-filter.inputs';
import { HitTriageService } from '../../../src/modules/flow-hit/hit-triage.service';
import { ReportService } from '../../../src/modules/report/report.service';
import { ReportThreadError, ReportThreads } from '../../../src/modules/report/report-thread/report-threads';
import { SharedReports, SharingExecutor } from '../../../src/modules/report/shared-reports';
import { BY_INTERNAL_HOST, GROUPINGS, TOTALS } from '../../../src/modules/report/groupings/groupings';
import { TriageStatus } from '../../../src/modules/flow-hit/hit-triage.enums';

/**
 * Shared report results (shared-reports.ts): requests that ask the same of the same hits share one computation, or
 * take a result kept from an earlier one, and every answer is the one an unshared executor gives over the same
 * store at the same moment: after hits land inside or outside the window, a verdict, a purge, a failed computation.
 */

const FAULTY = path.resolve(__dirname, '../../helpers/faulty-report-thread.ts');
describe.each(drivers)('shared report results (%s)', (driver) => {
  let t: TestApp;
  let uploadHits: (first: number, hosts: number, day: number) => Promise<void>;
  /** The first ten days: the window every report here asks for. */
  const window = () => resolveHitFilter(t.accountId, { from: new Date(START), to: new Date(START + 10 * DAY) } as HitFilter);

  /** The server's reports, and the same store read by a service that shares nothing. */
  const served = () => t.services.reports;
  const unshared = () => new ReportService(t.dataSource, { memory: t.services.reportMemory });
  const stats = () => ({ ...(t.services.reportShared as SharedReports).stats });

  beforeAll(async () => {
    t = await createTestApp(driver);
    ({ uploadHits } = await c2Account(t));
    await uploadHits(1, 3, 0);
    await t.services.reportMemory.warm(t.accountId);
  });
  afterAll(() => t.close());

  it('computes once for twenty requests that ask the same report at once, each answer the unshared one', async () => {
    expect(await served().executor(window())).toBeInstanceOf(SharingExecutor);
    const before = stats();
    const answers = await Promise.all(Array.from({ length: 20 }, () => everyReport(served(), window())));
    const calls = GROUPINGS.length + 2;
    const after = stats();
    expect(after.computed - before.computed).toBe(calls);
    expect(after.joined - before.joined + after.kept - before.kept).toBe(19 * calls);
    const expected = await everyReport(unshared(), window());
    expect((expected[TOTALS.name] as Array<{ hits: number }>)[0].hits).toBe(3);
    for (const a of answers) expect(a).toEqual(expected);
    // Asked again later: answered from what was kept.
    expect(await everyReport(served(), window())).toEqual(expected);
    expect(stats().kept - after.kept).toBe(calls);
  });

  it('keeps its results when hits land outside the window, and computes again when they land inside it', async () => {
    await everyReport(served(), window());
    await uploadHits(20, 2, 30);
    let before = stats();
    expect(await everyReport(served(), window())).toEqual(await everyReport(unshared(), window()));
    expect(stats().computed).toBe(before.computed);
    await uploadHits(30, 4, 2);
    before = stats();
    const now = await everyReport(served(), window());
    expect(stats().computed).toBeGreaterThan(before.computed);
    expect((now[TOTALS.name] as Array<{ hits: number }>)[0].hits).toBe(7);
    expect(now).toEqual(await everyReport(unshared(), window()));
  });

  it('computes again after a verdict on a hit in the window (a filter on verdicts sees it)', async () => {
    const open = () =>
      resolveHitFilter(t.accountId, { from: new Date(START), to: new Date(START + 10 * DAY), triageStatuses: [TriageStatus.OPEN] } as HitFilter);
    const before = (await served().group(open(), TOTALS))[0].hits;
    const [{ id }] = (await t.dataSource.query('SELECT id FROM flow_hit WHERE account_id = ? ORDER BY id LIMIT 1', [t.accountId])) as Array<{ id: number }>;
    const res = await new HitTriageService(t.dataSource).triage(
      { accountId: t.accountId, apiKeyId: 1 },
      { ids: [Number(id)], status: TriageStatus.FALSE_POSITIVE },
    );
    expect(res.ok).toBe(true);
    expect((await served().group(open(), TOTALS))[0].hits).toBe(before - 1);
    expect(await everyReport(served(), open())).toEqual(await everyReport(unshared(), open()));
  });

  it('computes again after a purge that cuts into the window', async () => {
    await everyReport(served(), window());
    const purged = await t.services.retention.purge(START + DAY + 35 * DAY);
    expect(purged.flowHits).toBeGreaterThan(0);
    const now = await everyReport(served(), window());
    expect(now).toEqual(await everyReport(unshared(), window()));
    expect((now[TOTALS.name] as Array<{ hits: number }>)[0].hits).toBe(4);
  });

  it('fails every request joined to a computation whose thread dies, keeps nothing, and answers the next', async () => {
    const left = new Int32Array(new SharedArrayBuffer(4));
    left[0] = 1;
    const exits: Error[] = [];
    const threads = new ReportThreads({
      threads: 1,
      script: FAULTY,
      workerData: { mode: 'exit' as ReportFault, faults: left },
      onThreadExit: (err) => exits.push(err),
    });
    const shared = new SharedReports({ maxEntries: 16, maxRows: 1000 });
    const reports = new ReportService(t.dataSource, { memory: t.services.reportMemory, threads, shared });
    try {
      const takers = Array.from({ length: 5 }, () => reports.group(window(), BY_INTERNAL_HOST, { first: 100 }));
      for (const taker of takers) await expect(taker).rejects.toThrow(ReportThreadError);
      expect(shared.stats).toEqual({ computed: 1, joined: 4, kept: 0 });
      expect(shared.size).toBe(0);
      expect(exits).toHaveLength(1);
      expect(await reports.group(window(), BY_INTERNAL_HOST, { first: 100 })).toEqual(await unshared().group(window(), BY_INTERNAL_HOST, { first: 100 }));
      expect(shared.stats.computed).toBe(2);
    } finally {
      await threads.close();
    }
  });

  it('shares nothing with REPORT_SHARING=false, and counts how requests got their results in /metrics', async () => {
    const off = await createTestApp(driver, { REPORT_SHARING: 'false' });
    try {
      expect(off.services.reportShared).toBeNull();
      expect(
        await off.services.reports.executor(resolveHitFilter(off.accountId, { from: new Date(START), to: new Date(START + DAY) } as HitFilter)),
      ).not.toBeInstanceOf(SharingExecutor);
    } finally {
      await off.close();
    }
    const text = await t.services.metrics.registry.metrics();
    for (const outcome of ['computed', 'joined', 'kept']) expect(text).toMatch(new RegExp(`pcap_defense_report_results_total\\{outcome="${outcome}"\\} [1-9]`));
  });
});
