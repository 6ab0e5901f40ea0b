import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/**
 * Lowers the calling thread's CPU priority by `nice` steps (Linux nice values, up to 19): a thread doing work that
 * can wait (reports) then leaves the cores to the threads that must not (the event loop, an upload's parse) when
 * they compete, and takes whatever they leave. On Linux every thread is a task with an ID of its own, which
 * /proc/thread-self names, and setpriority() on that ID changes this thread alone; raising a priority needs
 * privileges, lowering it does not. Returns the thread's nice value after the change, or null where this cannot be
 * done (another platform, no /proc); the thread then runs as before.
 */
export function lowerThreadPriority(nice: number): number | null {
  if (nice <= 0 || process.platform !== 'linux') return null;
  try {
    const tid = threadId();
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + nice));
    return os.getPriority(tid);
  } catch {
    return null;
  }
}

/** The calling thread's kernel task ID (Linux). */
export function threadId(): number {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (!Number.isSafeInteger(tid) || tid <= 0) throw new Error('no thread ID in /proc/thread-self');
  return tid;
}

/** Time the calling thread has spent on a core and waiting for one, ms (Linux's per-task scheduler statistics). */
export interface ThreadTime {
  /**
   * On a core. The kernel brings a running thread's figure up to date at each scheduler tick and context switch, not
   * when the thread reads it: a reading taken while it runs may lack up to one tick (1-10 ms, by kernel).
   */
  cpuMs: number;
  /** Runnable but waiting for a core (the run queue): the time other threads and processes took from it. */
  queuedMs: number;
}

/**
 * The calling thread's ThreadTime so far, from /proc/thread-self/schedstat (its first two fields are nanoseconds on
 * a core and waiting in the run queue); null where the file is missing, unreadable or all zeros (another
 * platform, a kernel without scheduler statistics).
 */
export function threadTime(): ThreadTime | null {
  if (process.platform !== 'linux') return null;
  try {
    const [cpu, queued] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 2).map(Number);
    // Zeros: a kernel whose scheduler statistics are off (a thread that runs has been on a core).
    if (!Number.isFinite(cpu) || !Number.isFinite(queued) || cpu === 0) return null;
    return { cpuMs: cpu / 1e6, queuedMs: queued / 1e6 };
  } catch {
    return null;
  }
}

/** The ThreadTime between two readings of the same thread, or null when either is missing. */
export function threadTimeSince(before: ThreadTime | null, after: ThreadTime | null): ThreadTime | null {
  if (before === null || after === null) return null;
  return { cpuMs: after.cpuMs - before.cpuMs, queuedMs: after.queuedMs - before.queuedMs };
}
