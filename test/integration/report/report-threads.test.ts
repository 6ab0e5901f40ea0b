import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { c2Account, DAY, everyReport, STORE_START as START } from '../../helpers/report-store';
import type { ReportFault } from '../../helpers/faulty-report-thread';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';
import { HitFilter } from '../../../src/modules/flow-hit/hit-filter.inputs';
import { HitMemory } from '../../../src/modules/report/hit-memory';
import { ReportService } from '../../../src/modules/report/report.service';
import { ReportThreadError, ReportThreads, ThreadedExecutor } from '../../../src/modules/report/report-thread/report-threads';
import { SharingExecutor } from '../../../src/modules/report/shared-reports';
import { GiveWay } from '../../../src/common/threads/give-way';
import { lowerThreadPriority, threadId } from '../../../src/common/threads/thread-priority';
import { BY_INTERNAL_HOST, TOTALS } from '../../../src/modules/report/groupings/groupings';

/**
 * Report threads (REPORT_THREADS): the store's reports computed on worker threads from the same snapshot the main
 * thread would use. That every grouping agrees with the other executors on random data is the executors' property
 * test; here: snapshots across changes, a rebuilt store, the columns in shared memory, and a thread's faults.
 */

const FAULTY = path.resolve(__dirname, '../../helpers/faulty-report-thread.ts');
describe('report threads', () => {
  let t: TestApp;
  let uploadHits: (first: number, hosts: number, day: number) => Promise<void>;
  const window = () => resolveHitFilter(t.accountId, { from: new Date(START), to: new Date(START + 10 * DAY) } as HitFilter);

  beforeAll(async () => {
    t = await createTestApp('sqlite');
    ({ uploadHits } = await c2Account(t));
    await uploadHits(1, 3, 0);
  });
  afterAll(() => t.close());

  it("serves the server's reports by default, from columns in shared memory", async () => {
    expect(t.services.config.reportThreads).toBe(1);
    const executor = await t.services.reports.executor(window());
    expect(executor).toBeInstanceOf(SharingExecutor);
    expect((executor as SharingExecutor).inner).toBeInstanceOf(ThreadedExecutor);
    const held = (await t.services.reportMemory.view(t.accountId))!;
    const blocks = [...held.blocks()];
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks)
      for (const column of [b.at, b.last, b.packets, b.bytes, b.host, b.external, b.group, b.port, b.direction])
        expect(column.buffer).toBeInstanceOf(SharedArrayBuffer);
    const report = ok(
      await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits internalHosts } } }`, {
        f: { from: new Date(START).toISOString(), to: new Date(START + 10 * DAY).toISOString() },
      }),
    );
    expect(report.hitReport.totals).toEqual({ hits: 3, internalHosts: 3 });
  });

  it('keeps a report on its snapshot while the store changes, and the next report sees the change', async () => {
    const reports = t.services.reports;
    const before = window();
    expect((await reports.group(before, TOTALS))[0].hits).toBe(3);
    await uploadHits(10, 2, 1);
    // The same request's next grouping: still the 3 hits it started with.
    expect(await reports.group(before, BY_INTERNAL_HOST, { first: 100 })).toHaveLength(3);
    const after = window();
    expect((await reports.group(after, TOTALS))[0].hits).toBe(5);
    expect(await reports.group(after, BY_INTERNAL_HOST, { first: 100 })).toHaveLength(5);
    // And every grouping agrees with the main thread's executor over the same store.
    const mainThread = new ReportService(t.dataSource, { memory: t.services.reportMemory });
    expect(await everyReport(reports, window())).toEqual(await everyReport(mainThread, window()));
  });

  it('starts its tables again for a store that rebuilt the account (new interned ids)', async () => {
    const threads = new ReportThreads({ threads: 1 });
    const stores = [new HitMemory(t.dataSource, { maxHits: 1_000_000 }), new HitMemory(t.dataSource, { maxHits: 1_000_000 })];
    try {
      for (const store of stores) {
        await store.warm(t.accountId);
        const onThread = new ReportService(t.dataSource, { memory: store, threads });
        const onMain = new ReportService(t.dataSource, { memory: store });
        expect(await everyReport(onThread, window())).toEqual(await everyReport(onMain, window()));
      }
    } finally {
      stores.forEach((s) => s.close());
      await threads.close();
    }
  });

  describe('giving way to uploads parsing (REPORT_GIVE_WAY_MS)', () => {
    it('holds each call while an upload parses and runs it once the parse ends, telling how long it waited', async () => {
      const signal = new GiveWay();
      const waits: number[] = [];
      const threads = new ReportThreads({ threads: 1, giveWay: { signal, maxWaitMs: 10_000, onWaited: (ms) => waits.push(ms) } });
      try {
        const reports = new ReportService(t.dataSource, { memory: t.services.reportMemory, threads });
        // What the main thread's executor answers (the hits the suite's earlier tests uploaded).
        const hits = (await new ReportService(t.dataSource, { memory: t.services.reportMemory }).group(window(), TOTALS))[0].hits;
        // Nothing running: no wait.
        expect((await reports.group(window(), TOTALS))[0].hits).toBe(hits);
        expect(waits).toEqual([]);
        const leave = signal.enter();
        let done = false;
        const running = reports.group(window(), TOTALS).then((rows) => ((done = true), rows));
        await new Promise((r) => setTimeout(r, 150));
        expect(done).toBe(false);
        leave();
        expect((await running)[0].hits).toBe(hits);
        expect(waits).toHaveLength(1);
        expect(waits[0]).toBeGreaterThanOrEqual(100);
      } finally {
        await threads.close();
      }
    });

    it("waits at most its bound in all over a request's calls, however long the parse runs", async () => {
      const signal = new GiveWay();
      const waits: number[] = [];
      const threads = new ReportThreads({ threads: 1, giveWay: { signal, maxWaitMs: 200, onWaited: (ms) => waits.push(ms) } });
      const leave = signal.enter();
      try {
        // One request (one executor, one snapshot) asking five groupings.
        const executor = threads.executor((await t.services.reportMemory.view(t.accountId))!);
        const f = window();
        // All five answer while the parse still runs (the signal is never left): the waits, not the clock, say how long.
        for (const g of [TOTALS, BY_INTERNAL_HOST, TOTALS, BY_INTERNAL_HOST, TOTALS]) await executor.group(g, f, { first: 100 });
        const total = waits.reduce((a, b) => a + b, 0);
        expect(total).toBeGreaterThanOrEqual(195);
        expect(total).toBeLessThan(260);
        // A new request may wait again (its own bound).
        await threads.executor((await t.services.reportMemory.view(t.accountId))!).group(TOTALS, f);
        expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(total + 195);
      } finally {
        leave();
        await threads.close();
      }
    });

    it('closes at once while a thread waits for a parse', async () => {
      const signal = new GiveWay();
      const threads = new ReportThreads({ threads: 1, giveWay: { signal, maxWaitMs: 60_000 } });
      signal.enter();
      const reports = new ReportService(t.dataSource, { memory: t.services.reportMemory, threads });
      const running = reports.group(window(), TOTALS);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      await threads.close();
      await expect(running).rejects.toThrow(/closed/);
      expect(performance.now() - t0).toBeLessThan(5_000);
    });
  });

  describe('a lower CPU priority (REPORT_THREAD_NICE)', () => {
    /** Each task (thread) of this process with its nice value, from /proc (Linux). */
    const niceByTask = (): Map<number, number> =>
      new Map(
        fs.readdirSync('/proc/self/task').map((tid) => {
          const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          // Fields after the command's closing parenthesis: state is field 3, nice field 19.
          return [Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
        }),
      );
    const onLinux = process.platform === 'linux' ? it : it.skip;

    onLinux('runs each report thread at the nice increment given, and the event loop as it was', async () => {
      const base = os.getPriority(threadId());
      const before = niceByTask();
      const threads = new ReportThreads({ threads: 2, nice: 7 });
      try {
        const reports = new ReportService(t.dataSource, { memory: t.services.reportMemory, threads });
        // Two requests at once: one on each thread (a thread starts with its first request).
        const [a, b] = await Promise.all([reports.group(window(), TOTALS), reports.group(window(), TOTALS)]);
        expect(a).toEqual(b);
        const started = [...niceByTask()].filter(([tid]) => !before.has(tid));
        expect(started.filter(([, nice]) => nice === base + 7)).toHaveLength(2);
        expect(os.getPriority(threadId())).toBe(base);
        expect(niceByTask().get(threadId())).toBe(base);
      } finally {
        await threads.close();
      }
    });

    onLinux("the server's report thread runs at REPORT_THREAD_NICE (10 by default)", async () => {
      expect(t.services.config.reportThreadNice).toBe(10);
      const base = os.getPriority(threadId());
      ok(
        await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits } } }`, {
          f: { from: new Date(START).toISOString(), to: new Date(START + 10 * DAY).toISOString() },
        }),
      );
      expect([...niceByTask().values()].filter((nice) => nice === base + 10)).toHaveLength(1);
    });

    it('leaves the thread as it was when the kernel refuses the change', () => {
      const spy = jest.spyOn(os, 'setPriority').mockImplementation(() => {
        throw Object.assign(new Error('setpriority EPERM'), { code: 'ERR_SYSTEM_ERROR' });
      });
      try {
        const before = os.getPriority(process.platform === 'linux' ? threadId() : 0);
        expect(lowerThreadPriority(5)).toBeNull();
        expect(os.getPriority(process.platform === 'linux' ? threadId() : 0)).toBe(before);
      } finally {
        spy.mockRestore();
      }
    });

    it('changes nothing for an increment of 0, and never goes past 19', async () => {
      expect(lowerThreadPriority(0)).toBeNull();
      if (process.platform !== 'linux') return;
      // On a worker thread of its own, so that this test's thread keeps its priority.
      const worker = new Worker(
        `const { parentPort } = require('node:worker_threads');
         require(${JSON.stringify(require.resolve('@swc-node/register'))});
         const { lowerThreadPriority } = require(${JSON.stringify(path.resolve(__dirname, '../../../src/common/threads/thread-priority.ts'))});
         parentPort.postMessage([lowerThreadPriority(15), lowerThreadPriority(15)]);`,
        { eval: true },
      );
      await new Promise<void>((resolve, reject) => {
        worker.once('message', (m: Array<number | null>) => {
          try {
            expect(m).toEqual([Math.min(19, os.getPriority(threadId()) + 15), 19]);
            resolve();
          } catch (err) {
            reject(err);
          } finally {
            void worker.terminate();
          }
        });
        worker.once('error', reject);
      });
    });
  });

  describe('faults', () => {
    async function withFaultyThreads(
      mode: ReportFault,
      faults: number,
      run: (reports: ReportService, exits: Error[], left: Int32Array) => Promise<void>,
      maxHeapMb?: number,
    ) {
      const left = new Int32Array(new SharedArrayBuffer(4));
      left[0] = faults;
      const exits: Error[] = [];
      const threads = new ReportThreads({ threads: 1, script: FAULTY, workerData: { mode, faults: left }, maxHeapMb, onThreadExit: (err) => exits.push(err) });
      try {
        await run(new ReportService(t.dataSource, { memory: t.services.reportMemory, threads }), exits, left);
      } finally {
        await threads.close();
      }
    }

    it('fails the calls of a thread that dies, and the next report runs on a new thread', async () => {
      await withFaultyThreads('exit', 1, async (reports, exits, left) => {
        await expect(reports.group(window(), TOTALS)).rejects.toThrow(ReportThreadError);
        expect(left[0]).toBe(0);
        expect(exits).toHaveLength(1);
        expect(exits[0].message).toMatch(/exited \(code 3\)/);
        // The new thread is sent the whole account again.
        expect((await reports.group(window(), TOTALS))[0].hits).toBe(5);
      });
    });

    it('ends a thread whose report outgrows its heap limit, not the process', async () => {
      await withFaultyThreads(
        'hog',
        1,
        async (reports, exits) => {
          await expect(reports.group(window(), TOTALS)).rejects.toThrow(ReportThreadError);
          expect(exits).toHaveLength(1);
          expect(exits[0].message).toMatch(/memory/i);
          expect((await reports.group(window(), TOTALS))[0].hits).toBe(5);
        },
        64,
      );
    });

    it('opens a request again on the same snapshot when the thread no longer holds it', async () => {
      await withFaultyThreads('forget', 1, async (reports, exits, left) => {
        const f = window();
        expect((await reports.group(f, TOTALS))[0].hits).toBe(5);
        expect(left[0]).toBe(0);
        expect(exits).toHaveLength(0);
      });
    });

    it('fails a call still running when the threads are closed', async () => {
      const left = new Int32Array(new SharedArrayBuffer(4));
      left[0] = 1;
      const threads = new ReportThreads({ threads: 1, script: FAULTY, workerData: { mode: 'stall', faults: left } });
      const reports = new ReportService(t.dataSource, { memory: t.services.reportMemory, threads });
      const running = reports.group(window(), TOTALS);
      // The thread has the call once it stalls on it.
      while (Atomics.load(left, 0) > 0) await new Promise((r) => setTimeout(r, 5));
      await threads.close();
      await expect(running).rejects.toThrow(/closed/);
      await expect(reports.group(window(), TOTALS)).rejects.toThrow(ReportThreadError);
    });
  });
});
