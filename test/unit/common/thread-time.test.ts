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
    // 30 ms of this process's CPU, not of the clock: on a busy machine 30 ms of the clock held 12 ms of a core.
    let x = 0;
    const cpu0 = process.cpuUsage();
    const giveUp = Date.now() + 10_000;
    const used = () => {
      const u = process.cpuUsage(cpu0);
      return (u.user + u.system) / 1000;
    };
    while (used() < 30 && Date.now() < giveUp) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    const spent = threadTimeSince(before, threadTime());
    expect(x).toBeGreaterThan(0);
    // The figure may lack up to a scheduler tick (the kernel's, 1-10 ms); the process's other threads were idle.
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
