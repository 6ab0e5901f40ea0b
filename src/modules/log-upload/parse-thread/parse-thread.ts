import type { MessagePort } from 'node:worker_threads';
import { parseStoredFile } from './parse-stored-file';
import { threadTime, threadTimeSince } from '../../../common/threads/thread-priority';
import type { FromParseThread, ToParseThread } from './parse-thread.messages';

/** Connections per message back to the main thread (its structured-clone reads are one turn each). */
export const CONNECTION_BATCH = 2_000;

export interface ParseThreadHooks {
  /** After each slice, before its progress is posted; tests make a thread fail here. */
  afterSlice?: (bytes: number) => void;
}

/**
 * The body of a parse thread: takes one job at a time from `port`, runs parseStoredFile on it and posts progress
 * after each slice, the connections, then the outcome. A `cancel` stops the job at its next slice. An error of
 * the job is posted as `failed` and the thread takes the next job; the pool replaces a thread that dies.
 */
export function serveParseJobs(port: MessagePort, hooks: ParseThreadHooks = {}): void {
  const cancelled = new Set<number>();
  let chain: Promise<void> = Promise.resolve();
  const post = (message: FromParseThread) => port.postMessage(message);
  port.on('message', (message: ToParseThread) => {
    if (message.type === 'cancel') {
      cancelled.add(message.id);
      return;
    }
    const { id, file } = message;
    chain = chain.then(async () => {
      try {
        const before = threadTime();
        const outcome = await parseStoredFile(file, async (bytes, lines) => {
          hooks.afterSlice?.(bytes);
          post({ type: 'progress', id, bytes, lines });
          // A turn between slices, so that a cancel posted meanwhile is read.
          await new Promise((resolve) => setImmediate(resolve));
          return !cancelled.has(id);
        });
        if (outcome.kind !== 'parsed') return post({ type: 'done', id, outcome });
        const { connections, stats, bytes, partial, dnsQueries } = outcome;
        for (let i = 0; i < connections.length && !cancelled.has(id); i += CONNECTION_BATCH) {
          post({ type: 'connections', id, connections: connections.slice(i, i + CONNECTION_BATCH) });
        }
        // The job's time on this thread, its connections posted: what a busy machine took from it shows as queued.
        post({ type: 'done', id, outcome: { kind: 'parsed', stats, bytes, partial, dnsQueries, thread: threadTimeSince(before, threadTime()) } });
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        post({ type: 'failed', id, message: e.message, stack: e.stack });
      } finally {
        cancelled.delete(id);
      }
    });
  });
}
