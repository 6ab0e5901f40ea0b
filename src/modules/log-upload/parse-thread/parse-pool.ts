import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../../common/threads/start-worker';
import type { Connection } from '../flows/fold';
import type { ParseOutcome, SliceHook, StoredFile } from './parse-stored-file';
import type { FromParseThread, ToParseThread } from './parse-thread.messages';

/** How long close() waits for a busy thread to cancel its job before it terminates it anyway. */
const CLOSE_GRACE_MS = 2_000;

/** A parse thread stopped (threw outside a job, exited, or was terminated) while it had a job. */
export class ParseThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseThreadError';
  }
}

export interface ParsePoolOptions {
  /** Threads at most (PARSE_THREADS, at least 1). */
  threads: number;
  /** The thread's entry module; parse-thread.main beside this file unless given (tests give a faulty one). */
  script?: string;
  /** Data for the entry module (worker_threads' workerData). */
  workerData?: unknown;
  /** A thread died; the pool starts another for the next job. */
  onThreadExit?: (err: Error) => void;
}

interface Job {
  id: number;
  /** The main thread's handling of the job's messages, in order. */
  settle: (message: FromParseThread) => void;
  fail: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  /** The job it runs (busy threads are ref'd: a job keeps the process alive). */
  job: Job | null;
  dead: boolean;
}

/**
 * Long-lived parse threads (worker_threads) that run parseStoredFile off the main thread, so the event loop
 * serves requests while an upload parses: the file's buffers are transferred, never copied, and the connections
 * come back in batches. The caller's slice hook (progress, lease renewal) runs on the main thread in the order
 * of the thread's progress, at most one waiting (for the newest progress), and the outcome is delivered only after
 * the last hook has run; a hook still waiting for its turn when the outcome comes runs at once. A thread that throws
 * or exits fails its job with a ParseThreadError (the process stays up) and is replaced by the next job's.
 */
export class ParsePool {
  private readonly idle: Thread[] = [];
  private readonly live = new Set<Thread>();
  private readonly waiting: Array<{ take: (t: Thread) => void; fail: (err: Error) => void }> = [];
  private nextId = 1;
  private closed = false;
  private readonly script: string;

  constructor(private readonly options: ParsePoolOptions) {
    if (!(options.threads >= 1)) throw new Error('ParsePool needs at least one thread');
    this.script = options.script ?? path.join(__dirname, `parse-thread.main${path.extname(__filename)}`);
  }

  /** Threads running now (started lazily, at most `threads`). */
  get size(): number {
    return this.live.size;
  }

  /** Starts every thread now (a server's worker does), so that the first upload does not wait for one to load. */
  start(): void {
    while (!this.closed && this.live.size < this.options.threads) this.release(this.spawn());
  }

  /**
   * Parses `file` on a thread. Its blobs' memory is transferred to the thread (the caller must not use them
   * afterwards). Resolves `stopped` as soon as the hook says stop or `signal` aborts; rejects with the hook's error
   * or a ParseThreadError.
   */
  async parse(file: StoredFile, afterSlice: SliceHook, signal?: AbortSignal): Promise<ParseOutcome> {
    if (signal?.aborted) return { kind: 'stopped' };
    const thread = await this.acquire();
    if (signal?.aborted) {
      this.release(thread);
      return { kind: 'stopped' };
    }
    const id = this.nextId++;
    return new Promise<ParseOutcome>((resolve, reject) => {
      let settled = false;
      let hooks: Promise<unknown> = Promise.resolve();
      /** The progress the next hook will report; null when no hook is waiting. */
      let newest: { bytes: number; lines: number } | null = null;
      /** Set when the outcome came: a hook no longer waits for a turn of the loop. */
      let ended = false;
      /** Ends the wait of the hook waiting for its turn, if one is. */
      let hurry: (() => void) | null = null;
      // A hook waits for a turn of the loop, unless the thread has finished: then the outcome waits only for the
      // hook itself, not for a turn too (under load a turn is tens of ms of every upload's time to COMPLETED).
      const turn = () =>
        ended
          ? undefined
          : new Promise<void>((resolve) => {
              const timer = setImmediate(() => {
                hurry = null;
                resolve();
              });
              hurry = () => {
                clearImmediate(timer);
                hurry = null;
                resolve();
              };
            });
      const end = () => {
        ended = true;
        hurry?.();
      };
      const connections: Connection[] = [];
      const finish = (err: Error | null, outcome?: ParseOutcome) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', stop);
        if (err) reject(err);
        else resolve(outcome!);
      };
      // The thread is told to stop; it stays busy (and out of the pool) until it says `done`.
      const stop = () => {
        if (settled) return;
        this.post(thread, { type: 'cancel', id });
        finish(null, { kind: 'stopped' });
      };
      signal?.addEventListener('abort', stop, { once: true });
      thread.job = {
        id,
        settle: (message) => {
          switch (message.type) {
            case 'progress': {
              // At most one hook waiting, for the newest progress: a thread that ran ahead while the event loop was
              // busy does not leave a hook per slice, each a turn of the loop (under load a turn is tens of ms,
              // and the outcome waits for the last hook). The hook (progress, lease renewal) only needs the latest.
              const waiting = newest !== null;
              newest = { bytes: message.bytes, lines: message.lines };
              if (waiting) return;
              // One hook per turn of the event loop, as in-process parsing gives one slice per turn: a chain of
              // hooks in microtasks would hold off every request.
              hooks = hooks
                .then(turn)
                .then(async () => {
                  const at = newest!;
                  newest = null;
                  if (settled) return;
                  if (!(await afterSlice(at.bytes, at.lines))) stop();
                })
                .catch((err) => {
                  if (!settled) this.post(thread, { type: 'cancel', id });
                  finish(err);
                });
              return;
            }
            case 'connections':
              if (!settled) for (const c of message.connections) connections.push(c);
              return;
            case 'done':
              this.release(thread);
              end();
              void hooks.then(() => finish(null, message.outcome.kind === 'parsed' ? { ...message.outcome, connections } : message.outcome));
              return;
            case 'failed': {
              this.release(thread);
              end();
              const err = new Error(message.message);
              if (message.stack) err.stack = message.stack;
              void hooks.then(() => finish(err));
              return;
            }
          }
        },
        fail: (err) => finish(err),
      };
      thread.worker.ref();
      const transfer = file.blobs.map(ownBuffer);
      try {
        this.post(
          thread,
          { type: 'parse', id, file: { ...file, blobs: transfer.map((b) => b.view) } },
          transfer.map((b) => b.buffer),
        );
      } catch (err) {
        this.release(thread);
        finish(err as Error);
      }
    });
  }

  /**
   * Terminates every thread; a job still running fails with a ParseThreadError. A thread is terminated at rest:
   * one stopped in the middle of a parse can take the whole process down (Node 20 asserts in the thread's cleanup
   * when it stopped between creating a Brotli decoder and initialising it, "close before init": a SIGABRT, seen
   * on CI). A busy thread is told to cancel its job and given CLOSE_GRACE_MS to come to rest (its next slice).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new ParseThreadError('The parse threads were closed.'));
    const busy = [...this.live].filter((t) => t.job !== null);
    for (const t of busy) {
      const job = t.job!;
      this.post(t, { type: 'cancel', id: job.id });
      job.fail(new ParseThreadError('The parse threads were closed.'));
    }
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (busy.some((t) => t.job !== null && !t.dead) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all([...this.live].map((t) => t.worker.terminate()));
  }

  private acquire(): Promise<Thread> {
    if (this.closed) return Promise.reject(new ParseThreadError('The parse threads were closed.'));
    const idle = this.idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.live.size < this.options.threads) return Promise.resolve(this.spawn());
    return new Promise((take, fail) => this.waiting.push({ take, fail }));
  }

  private release(thread: Thread): void {
    thread.job = null;
    if (thread.dead) return;
    const next = this.waiting.shift();
    if (next) return next.take(thread);
    thread.worker.unref();
    this.idle.push(thread);
  }

  private post(thread: Thread, message: ToParseThread, transfer: ArrayBuffer[] = []): void {
    if (!thread.dead) thread.worker.postMessage(message, transfer);
  }

  private spawn(): Thread {
    const worker = startWorker(this.script, this.options.workerData);
    const thread: Thread = { worker, job: null, dead: false };
    this.live.add(thread);
    worker.on('message', (message: FromParseThread) => {
      if (thread.job && message.id === thread.job.id) thread.job.settle(message);
    });
    const died = (err: Error) => {
      if (thread.dead) return;
      thread.dead = true;
      this.live.delete(thread);
      const i = this.idle.indexOf(thread);
      if (i >= 0) this.idle.splice(i, 1);
      const job = thread.job;
      thread.job = null;
      job?.fail(err);
      if (!this.closed) this.options.onThreadExit?.(err);
      // A job waiting for a thread gets a new one.
      const next = this.waiting.shift();
      if (next) {
        if (this.closed) next.fail(new ParseThreadError('The parse threads were closed.'));
        else next.take(this.spawn());
      }
    };
    worker.on('error', (err) => died(new ParseThreadError(`The parse thread failed: ${err.message}`)));
    worker.on('exit', (code) => died(new ParseThreadError(this.closed ? 'The parse threads were closed.' : `The parse thread exited (code ${code}).`)));
    worker.unref();
    return thread;
  }
}

/**
 * The blob's own ArrayBuffer when it spans exactly that buffer (transferred as it is); otherwise (a view into a
 * driver's larger packet buffer, which must not be detached) a copy of the compressed bytes alone.
 */
function ownBuffer(blob: Uint8Array): { view: Uint8Array; buffer: ArrayBuffer } {
  // By tag, not instanceof: a buffer made in another realm (a driver's, under jest) is an ArrayBuffer all the same.
  const own = Object.prototype.toString.call(blob.buffer) === '[object ArrayBuffer]' && blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength;
  if (own) return { view: blob, buffer: blob.buffer as ArrayBuffer };
  const copy = new Uint8Array(blob.byteLength);
  copy.set(blob);
  return { view: copy, buffer: copy.buffer };
}
