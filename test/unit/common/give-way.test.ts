import { Worker } from 'node:worker_threads';
import { GiveWay } from '../../../src/common/threads/give-way';

/** A thread that lowers the count in `buffer` by one after `afterMs` (as a leave() on another thread does). */
function leaveFromAnotherThread(buffer: SharedArrayBuffer, afterMs: number): Worker {
  return new Worker(
    `const { workerData } = require('node:worker_threads');
     const count = new Int32Array(workerData.buffer, 0, 1);
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.afterMs);
     Atomics.sub(count, 0, 1);
     Atomics.notify(count, 0);`,
    { eval: true, workerData: { buffer, afterMs } },
  );
}

describe('GiveWay (REPORT_GIVE_WAY_MS)', () => {
  it('counts the work running, and each piece leaves once however often its leave is called', () => {
    const way = new GiveWay();
    const a = way.enter();
    const b = way.enter();
    expect(way.active).toBe(2);
    a();
    a();
    expect(way.active).toBe(1);
    // Another GiveWay over the same memory (another thread's) sees the same count.
    expect(new GiveWay(way.buffer).active).toBe(1);
    b();
    expect(way.active).toBe(0);
  });

  it('wait() returns at once when nothing runs, and after its bound when the work never ends', () => {
    const way = new GiveWay();
    expect(way.wait(5_000)).toBeLessThan(50);
    const leave = way.enter();
    const waited = way.wait(150);
    expect(waited).toBeGreaterThanOrEqual(149);
    expect(waited).toBeLessThan(1_500);
    expect(way.wait(0)).toBeLessThan(50);
    leave();
  });

  it('wait() returns as soon as the work ends on another thread', async () => {
    const way = new GiveWay();
    way.enter();
    const worker = leaveFromAnotherThread(way.buffer, 100);
    try {
      const waited = way.wait(10_000);
      expect(way.active).toBe(0);
      expect(waited).toBeGreaterThanOrEqual(90);
      expect(waited).toBeLessThan(5_000);
    } finally {
      await worker.terminate();
    }
  });

  it('whenClear() resolves when the work ends on this thread, or at its bound, without blocking the event loop', async () => {
    const way = new GiveWay();
    const t0 = performance.now();
    await way.whenClear(5_000);
    expect(performance.now() - t0).toBeLessThan(50);

    const leave = way.enter();
    let cleared = false;
    const waiting = way.whenClear(10_000).then(() => (cleared = true));
    // The event loop turns meanwhile.
    await new Promise((r) => setTimeout(r, 50));
    expect(cleared).toBe(false);
    const t1 = performance.now();
    leave();
    await waiting;
    expect(performance.now() - t1).toBeLessThan(100);

    way.enter();
    const t2 = performance.now();
    await way.whenClear(120);
    expect(performance.now() - t2).toBeGreaterThanOrEqual(115);
  });
});
