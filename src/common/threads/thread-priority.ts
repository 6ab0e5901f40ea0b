import { readlinkSync } from 'node:fs';
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
