/**
 * A count in shared memory of the work running now that other work gives way to (REPORT_GIVE_WAY_MS): the upload
 * processor raises it while an upload parses; a report thread waits while it is up (blocking only itself) before
 * each of a request's calls, and report admission waits on the event loop (whenClear) before it admits a request,
 * each for a bounded time. On a machine with fewer cores than busy threads, the parse then gets more of the machine
 * and reports wait a little longer; nothing is dropped either way.
 */
export class GiveWay {
  readonly buffer: SharedArrayBuffer;
  private readonly count: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.count = new Int32Array(buffer, 0, 1);
  }

  /** This thread's callers of whenClear(), woken when the count this thread lowers reaches 0. */
  private readonly clear = new Set<() => void>();

  /** Work that others give way to began; the function returned ends it (once, however often it is called). */
  enter(): () => void {
    Atomics.add(this.count, 0, 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (Atomics.sub(this.count, 0, 1) !== 1) return;
      Atomics.notify(this.count, 0);
      for (const wake of [...this.clear]) wake();
    };
  }

  /**
   * Resolves once no such work runs, or after `maxMs`: how the event loop gives way (it must not block). Only
   * work entered and left on this thread wakes it before `maxMs`.
   */
  whenClear(maxMs: number): Promise<void> {
    if (this.active === 0 || maxMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.clear.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, maxMs);
      this.clear.add(wake);
    });
  }

  /** Work running now that others give way to. */
  get active(): number {
    return Atomics.load(this.count, 0);
  }

  /**
   * Blocks this thread while such work runs, for at most `maxMs`; returns the ms it waited (0 when none ran).
   * Not for the main thread: it would hold the event loop.
   */
  wait(maxMs: number): number {
    if (Atomics.load(this.count, 0) === 0) return 0;
    const t0 = performance.now();
    for (;;) {
      const n = Atomics.load(this.count, 0);
      const left = maxMs - (performance.now() - t0);
      if (n === 0 || left <= 0) break;
      Atomics.wait(this.count, 0, n, left);
    }
    return performance.now() - t0;
  }
}
