import { threadTime, threadTimeSince } from '../../../src/common/threads/thread-priority';

describe('threadTime', () => {
  it('reads this thread’s time on a core and waiting for one, and the time on a core grows with work', () => {
    const before = threadTime();
    if (process.platform !== 'linux') {
      expect(before).toBeNull();
      return;
    }
    if (before === null) {
      // A kernel without per-task scheduler statistics: nothing to read, and nothing is made up.
      console.warn('threadTime: /proc/thread-self/schedstat is not readable here; skipped');
      return;
    }
    let x = 0;
    const until = Date.now() + 30;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const spent = threadTimeSince(before, threadTime());
    expect(x).toBeGreaterThan(0);
    // 30 ms of work; the figure may lack up to a scheduler tick (the kernel's, 1-10 ms).
    expect(spent!.cpuMs).toBeGreaterThan(15);
    expect(spent!.queuedMs).toBeGreaterThanOrEqual(0);
  });

  it('gives no difference when either reading is missing', () => {
    const t = { cpuMs: 1, queuedMs: 2 };
    expect(threadTimeSince(null, t)).toBeNull();
    expect(threadTimeSince(t, null)).toBeNull();
    expect(threadTimeSince(t, { cpuMs: 4, queuedMs: 7 })).toEqual({ cpuMs: 3, queuedMs: 5 });
  });
});
