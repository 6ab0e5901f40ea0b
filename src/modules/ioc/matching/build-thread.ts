// Builds large matcher indexes on a worker thread. At a million entries a build is long synchronous work (the
// domain index about 1.6 s, the address index 0.25-0.55 s): on the main thread it froze every request, /readyz
// included, once after each change to a big list. The entries are loaded on the main thread as before (paged, with
// turns between pages); only the build moves. The builder's columns are copied to a thread started for the build
// (a few typed arrays, no per-entry work), the thread builds and hands the index's arrays back (transferred, not
// copied), and the main thread wraps them. Small indexes build in place: a thread would cost more than it saves.
import path from 'node:path';
import type { MessagePort, Worker } from 'node:worker_threads';
import { startWorker } from '../../../common/threads/start-worker';
import { buildFromColumns, BuilderColumns, IndexData, IocIndex, IocIndexBuilder } from './ioc-index';
import { DomainBuilderColumns, DomainIndex, DomainIndexBuilder, DomainIndexData } from './domain-index';

/** Entries from which a build goes to a thread (a 50k-entry build takes about 60-80 ms in place). */
export const BUILD_THREAD_MIN_ENTRIES = 50_000;

export type BuildJob = { kind: 'ip'; columns: BuilderColumns } | { kind: 'domain'; columns: DomainBuilderColumns };
export type BuildReply = { ok: true; kind: 'ip'; data: IndexData } | { ok: true; kind: 'domain'; data: DomainIndexData } | { ok: false; message: string };

/** Buffers worth transferring rather than copying; small ones may sit in Node's shared Buffer pool, never transferred. */
function transferables(value: unknown, out = new Set<ArrayBuffer>()): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.buffer.byteLength > 8192) out.add(value.buffer);
  } else if (value !== null && typeof value === 'object' && !(value instanceof Map)) {
    for (const v of Object.values(value)) transferables(v, out);
  }
  return [...out];
}

const TYPED_ARRAYS = [
  Float64Array,
  Float32Array,
  Int32Array,
  Uint32Array,
  Int16Array,
  Uint16Array,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  BigInt64Array,
  BigUint64Array,
];

/**
 * The job with a copy of each of its typed arrays, and the copies' buffers to transfer: the builder keeps its own
 * arrays (a failed thread's build is done in place from them), and the copies move to the thread without the
 * serializer's two further copies (a million-name job took 130-160 ms of the main thread through a plain clone).
 */
function detachedCopy<T extends object>(job: T): { job: T; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const copy = (value: unknown): unknown => {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      // A byte-for-byte copy into a buffer of its own, viewed as the same element type (a Buffer as a Uint8Array:
      // Buffer's slice() is a view, not a copy).
      const bytes = new Uint8Array(value.byteLength);
      bytes.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      transfer.push(bytes.buffer);
      const Ctor = TYPED_ARRAYS.find((C) => value instanceof C) ?? Uint8Array;
      return new Ctor(bytes.buffer);
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Map)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
    }
    return value;
  };
  return { job: copy(job) as T, transfer };
}

/** The thread's side: one job, one reply, then the port closes (and the thread ends). */
export function serveBuildJob(port: MessagePort): void {
  port.once('message', (job: BuildJob) => {
    let reply: BuildReply;
    try {
      reply =
        job.kind === 'ip'
          ? { ok: true, kind: 'ip', data: buildFromColumns(job.columns).data }
          : { ok: true, kind: 'domain', data: DomainIndexBuilder.fromColumns(job.columns).build().data };
    } catch (err) {
      reply = { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply, reply.ok ? transferables(reply.data) : []);
    port.close();
  });
}

export interface BuildThreadsOptions {
  /** Entries from which a build goes to a thread (BUILD_THREAD_MIN_ENTRIES); Infinity: never. */
  minEntries?: number;
  /** The thread's entry module (tests give a faulty one). */
  script?: string;
  /** A thread failed (it could not start, threw or exited): the build was done in place instead. */
  onFailure?: (err: Error) => void;
}

/** The cache was closed while a thread built: the build's result is dropped. */
export class BuildThreadsClosedError extends Error {
  constructor() {
    super('index build threads closed');
    this.name = 'BuildThreadsClosedError';
  }
}

export class BuildThreads {
  private readonly live = new Set<{ worker: Worker; fail: (err: Error) => void }>();
  private readonly script: string;
  private readonly minEntries: number;
  private closed = false;
  /** Builds a thread finished (tests read it). */
  threadBuilds = 0;

  constructor(private readonly options: BuildThreadsOptions = {}) {
    this.script = options.script ?? path.join(__dirname, `build-thread.main${path.extname(__filename)}`);
    this.minEntries = options.minEntries ?? BUILD_THREAD_MIN_ENTRIES;
  }

  async ioc(builder: IocIndexBuilder): Promise<IocIndex> {
    if (builder.size < this.minEntries) return builder.build();
    const reply = await this.run({ kind: 'ip', columns: builder.columns() });
    return reply?.ok && reply.kind === 'ip' ? new IocIndex(reply.data) : builder.build();
  }

  async domains(builder: DomainIndexBuilder): Promise<DomainIndex> {
    if (builder.size < this.minEntries) return builder.build();
    const reply = await this.run({ kind: 'domain', columns: builder.columns() });
    if (!reply?.ok || reply.kind !== 'domain') return builder.build();
    const pool = reply.data.pool;
    // A Buffer arrives as a plain Uint8Array: the index reads names with Buffer's latin1 decoding.
    return new DomainIndex({ ...reply.data, pool: Buffer.from(pool.buffer, pool.byteOffset, pool.byteLength) });
  }

  /** Stops the threads building now (their builds reject with BuildThreadsClosedError); later builds run in place. */
  close(): void {
    this.closed = true;
    for (const t of [...this.live]) {
      t.fail(new BuildThreadsClosedError());
      void t.worker.terminate();
    }
    this.live.clear();
  }

  /** The thread's reply, or null when the thread failed (reported through onFailure: the caller builds in place). */
  private run(job: BuildJob): Promise<BuildReply | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise<BuildReply | null>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = startWorker(this.script, undefined, { maxOldGenerationSizeMb: 1024 });
      } catch (err) {
        this.options.onFailure?.(err instanceof Error ? err : new Error(String(err)));
        resolve(null);
        return;
      }
      let settled = false;
      const entry = {
        worker,
        fail: (err: Error) => {
          if (settled) return;
          settled = true;
          reject(err);
        },
      };
      this.live.add(entry);
      const done = (reply: BuildReply | null, failure?: Error) => {
        if (settled) return;
        settled = true;
        this.live.delete(entry);
        if (failure) this.options.onFailure?.(failure);
        if (reply) this.threadBuilds++;
        resolve(reply);
      };
      worker.once('message', (reply: BuildReply) => {
        if (reply.ok) done(reply);
        else done(null, new Error(`index build thread: ${reply.message}`));
      });
      worker.on('error', (err: Error) => done(null, new Error(`index build thread: ${err.message}`)));
      worker.once('exit', (code) => done(null, new Error(`index build thread exited (code ${code}) before it answered`)));
      const { job: copied, transfer } = detachedCopy(job);
      worker.postMessage(copied, transfer);
    });
  }
}
