import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { GiveWay } from '../../../common/threads/give-way';
import { startWorker } from '../../../common/threads/start-worker';
import type { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { type AccountHits, blockId } from '../hit-memory';
import type { ReportExecutor } from '../groupings/executor';
import type { Grouping, GroupingOptions } from '../groupings/grouping';
import type { TimeBucket } from '../report.enums';
import type { ThreatRow, TimelineBucketRow } from '../report.types';
import type { FromReportThread, InternedTable, InternerTails, ReportCall, SnapshotMessage, ToReportThread } from './report-thread.messages';

/** A report thread stopped (threw, exited, or was closed) while it computed a report's grouping. */
export class ReportThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportThreadError';
  }
}

export interface ReportThreadsOptions {
  /** Threads (REPORT_THREADS, at least 1). */
  threads: number;
  /** The thread's entry module; report-thread.main beside this file unless given (tests give a faulty one). */
  script?: string;
  /** Data for the entry module (worker_threads' workerData). */
  workerData?: unknown;
  /**
   * Largest heap of a thread, in MB (default 1024): a report that would need more ends its thread (its calls fail
   * with ERR_WORKER_OUT_OF_MEMORY), not the process. The store's columns are shared memory, outside this heap.
   */
  maxHeapMb?: number;
  /** A thread died; its calls failed, and the next report starts another. */
  onThreadExit?: (err: Error) => void;
  /**
   * Work the threads give way to (uploads parsing, REPORT_GIVE_WAY_MS): before each call a thread waits while it runs,
   * at most `maxWaitMs` in all per request; `onWaited` hears each call's wait.
   */
  giveWay?: { signal: GiveWay; maxWaitMs: number; onWaited?: (ms: number) => void };
  /**
   * Nice increment of each thread (REPORT_THREAD_NICE; Linux): a lower CPU priority than the event loop's and the
   * parse threads', so that reports take the cores they leave rather than slow them down. 0: the same priority.
   */
  nice?: number;
}

type Sizes = Record<InternedTable, number>;

/** What a thread holds of an account (report-thread.ts keeps the same): the store object its tables mirror, how much of each table it has, the blocks of the last snapshot it was sent. */
interface Held {
  source: AccountHits;
  sizes: Sizes;
  blocks: Set<number>;
}

interface Thread {
  worker: Worker;
  dead: boolean;
  accounts: Map<number, Held>;
  calls: Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error, gone: boolean) => void }>;
  /** Requests open on it, to spread new ones. */
  open: number;
}

/** Every interned table, checked by the compiler: a table added to AccountHits must be named here. */
const TABLE_SET: Record<InternedTable, true> = { hosts: true, externals: true, groups: true, directions: true, protocols: true, foundBys: true, triages: true };
const TABLES = Object.keys(TABLE_SET) as InternedTable[];

/**
 * Report threads (REPORT_THREADS): the memory executor's work (every grouping, threats, the timeline) runs on
 * worker threads, so the event loop keeps answering uploads, probes and small queries while reports compute, and
 * a second core computes them. The store stays on the main thread, which alone follows the change log; a report
 * request opens its snapshot on one thread, sending the blocks that thread has not seen yet (their columns are in
 * shared memory: nothing is copied) and the interned values it lacks. The thread computes exactly what the memory
 * executor computes on the main thread, from the same snapshot (report-thread.ts runs that executor).
 *
 * A thread that dies fails the calls it had (the request answers an internal error); the next report starts
 * another thread. Closing fails the calls still running.
 */
export class ReportThreads {
  private readonly slots: Array<Thread | null>;
  private readonly script: string;
  private nextRequest = 1;
  private nextCall = 1;
  private closed = false;

  constructor(private readonly options: ReportThreadsOptions) {
    if (!(options.threads >= 1)) throw new Error('ReportThreads needs at least one thread');
    this.slots = Array.from({ length: options.threads }, () => null);
    this.script = options.script ?? path.join(__dirname, `report-thread.main${path.extname(__filename)}`);
  }

  /** Threads running now. */
  get size(): number {
    return this.slots.filter((t) => t && !t.dead).length;
  }

  /** Starts every thread now, so that the first report does not wait for one to load. */
  start(): void {
    for (let i = 0; i < this.slots.length; i++) this.thread(i);
  }

  /** An executor over a snapshot of `source` (the store's account; taken now unless given), computing on one thread. */
  executor(source: AccountHits, snapshot: AccountHits = source.snapshot()): ReportExecutor {
    return new ThreadedExecutor(this, source, snapshot);
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.slots.filter((t): t is Thread => !!t);
    this.slots.fill(null);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  /** The thread with the fewest open requests (starting any slot that has none). */
  pick(): Thread {
    if (this.closed) throw new ReportThreadError('The report threads were closed.');
    let best: Thread | null = null;
    for (let i = 0; i < this.slots.length; i++) {
      const t = this.thread(i);
      if (!best || t.open < best.open) best = t;
    }
    return best!;
  }

  /** Opens a request on `thread` over `snapshot`, sending what the thread lacks of it. */
  open(thread: Thread, source: AccountHits, snapshot: AccountHits, filter: ResolvedHitFilter): number {
    const request = this.nextRequest++;
    let held = thread.accounts.get(source.accountId);
    const fresh = !held || held.source !== source;
    if (!held || fresh) {
      held = { source, sizes: Object.fromEntries(TABLES.map((t) => [t, 0])) as Sizes, blocks: new Set() };
      thread.accounts.set(source.accountId, held);
    }
    const tails = {} as InternerTails;
    for (const t of TABLES) {
      const values = source[t].values as unknown[];
      (tails as unknown as Record<string, unknown[]>)[t] = values.slice(held.sizes[t]);
      held.sizes[t] = values.length;
    }
    const blocks: SnapshotMessage['blocks'] = [];
    const ids = new Set<number>();
    for (const b of snapshot.blocks()) {
      const id = blockId(b);
      ids.add(id);
      blocks.push(held.blocks.has(id) ? id : { id, block: b });
    }
    held.blocks = ids;
    thread.open++;
    this.post(thread, { type: 'open', request, accountId: source.accountId, fresh, version: snapshot.version, hits: snapshot.hits, blocks, tails, filter });
    return request;
  }

  call(thread: Thread, request: number, what: ReportCall): Promise<unknown[]> {
    if (thread.dead) return Promise.reject(new ReportThreadError('The report thread stopped.'));
    const call = this.nextCall++;
    return new Promise((resolve, reject) => {
      if (thread.calls.size === 0) thread.worker.ref();
      thread.calls.set(call, { resolve, reject: (err, gone) => reject(Object.assign(err, { gone })) });
      this.post(thread, { type: 'call', request, call, what });
    });
  }

  closeRequest(thread: Thread, request: number): void {
    thread.open--;
    this.post(thread, { type: 'close', request });
  }

  private post(thread: Thread, message: ToReportThread): void {
    if (!thread.dead) thread.worker.postMessage(message);
  }

  private thread(i: number): Thread {
    const t = this.slots[i];
    if (t && !t.dead) return t;
    const worker = startWorker(this.script, this.options.workerData, { maxOldGenerationSizeMb: this.options.maxHeapMb ?? 1024 });
    const thread: Thread = { worker, dead: false, accounts: new Map(), calls: new Map(), open: 0 };
    this.slots[i] = thread;
    const giveWay = this.options.giveWay;
    if (giveWay) this.post(thread, { type: 'giveWay', buffer: giveWay.signal.buffer, maxWaitMs: giveWay.maxWaitMs });
    if (this.options.nice) this.post(thread, { type: 'priority', nice: this.options.nice });
    worker.on('message', (m: FromReportThread) => {
      const c = thread.calls.get(m.call);
      if (!c) return;
      thread.calls.delete(m.call);
      if (thread.calls.size === 0) worker.unref();
      if (m.type === 'result') {
        if (m.waitedMs > 0) this.options.giveWay?.onWaited?.(m.waitedMs);
        return c.resolve(m.rows.map(ownDates));
      }
      const err = new ReportThreadError(m.message);
      if (m.stack) err.stack = m.stack;
      c.reject(err, m.gone === true);
    });
    const died = (err: Error) => {
      if (thread.dead) return;
      thread.dead = true;
      if (this.slots[i] === thread) this.slots[i] = null;
      for (const c of thread.calls.values()) c.reject(err, false);
      thread.calls.clear();
      if (!this.closed) this.options.onThreadExit?.(err);
    };
    worker.on('error', (err) => died(new ReportThreadError(`The report thread failed: ${err.message}`)));
    worker.on('exit', (code) => died(new ReportThreadError(this.closed ? 'The report threads were closed.' : `The report thread exited (code ${code}).`)));
    // Idle threads do not keep the process alive; a call in flight does (its promise is awaited by a request).
    worker.unref();
    return thread;
  }
}

/**
 * A row with its instants as Dates of this realm: a Date cloned from a thread is made by the main realm, which the
 * realm a test runs in (jest's vm context) does not take for one of its own (instanceof, as the DateTime scalar asks).
 */
function ownDates(row: unknown): unknown {
  if (row === null || typeof row !== 'object') return row;
  const r = row as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (v !== null && typeof v === 'object' && !(v instanceof Date) && Object.prototype.toString.call(v) === '[object Date]')
      r[k] = new Date((v as Date).getTime());
  }
  return r;
}

/**
 * One report request's executor: its snapshot, opened on one thread at its first call and closed once its calls
 * have all answered and a turn of the event loop brought no other (a later call opens it again, on the same
 * snapshot). A thread that no longer holds the request (dropped as abandoned) gets it again.
 */
export class ThreadedExecutor implements ReportExecutor {
  private opened: { thread: Thread; request: number; filter: ResolvedHitFilter } | null = null;
  private inFlight = 0;

  constructor(
    private readonly pool: ReportThreads,
    private readonly source: AccountHits,
    private readonly snapshot: AccountHits,
  ) {}

  async group<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions = {}): Promise<R[]> {
    return (await this.run(f, { kind: 'group', grouping: g as Grouping<unknown>, options })) as R[];
  }

  async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    return (await this.run(f, { kind: 'threats', first })) as ThreatRow[];
  }

  async timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    return (await this.run(f, { kind: 'timeline', bucket, zone })) as TimelineBucketRow[];
  }

  private async run(f: ResolvedHitFilter, what: ReportCall): Promise<unknown[]> {
    this.inFlight++;
    try {
      for (let attempt = 0; ; attempt++) {
        const { thread, request } = this.ensureOpen(f);
        try {
          return await this.pool.call(thread, request, what);
        } catch (err) {
          if (!(err as { gone?: boolean }).gone || attempt > 0) throw err;
          this.forget();
        }
      }
    } finally {
      if (--this.inFlight === 0) setImmediate(() => this.inFlight === 0 && this.release());
    }
  }

  private ensureOpen(f: ResolvedHitFilter): { thread: Thread; request: number } {
    const o = this.opened;
    if (o && !o.thread.dead && o.filter === f) return o;
    if (o) this.release();
    const thread = this.pool.pick();
    const request = this.pool.open(thread, this.source, this.snapshot, f);
    this.opened = { thread, request, filter: f };
    return this.opened;
  }

  private release(): void {
    const o = this.opened;
    this.opened = null;
    if (o && !o.thread.dead) this.pool.closeRequest(o.thread, o.request);
  }

  /** The thread dropped the request: count it closed there without telling it. */
  private forget(): void {
    const o = this.opened;
    this.opened = null;
    if (o && !o.thread.dead) o.thread.open--;
  }
}
