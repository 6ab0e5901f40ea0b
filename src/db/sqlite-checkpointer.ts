import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { DataSource } from 'typeorm';
import { startWorker } from '../common/threads/start-worker';
import { sqliteHandle } from './sqlite-handle';
import type { CheckpointThreadData, CheckpointThreadMessage } from './checkpoint-thread/checkpoint-thread.main';

/** SQLite's own default: a commit that leaves this many pages in the WAL checkpoints them. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

/**
 * WAL checkpoints on a thread of their own. With SQLite's automatic checkpoints, the commit that crosses 1,000
 * WAL pages copies them into the database file and fsyncs it, on the one connection TypeORM has, on the event
 * loop: uploads and reports waited behind it. Once the thread is up, the main connection stops checkpointing
 * (`wal_autocheckpoint = 0`); if the thread stops, for any reason, the main connection checkpoints again as
 * before, so the WAL never grows without bound.
 */
export class SqliteCheckpointer {
  private worker: Worker | null = null;
  private stopping = false;
  private checkpoints = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: {
      intervalMs: number;
      onExit?: (err: Error | null) => void;
      /** A checkpoint failed (a full disk): the pages stay in the WAL and the next one tries again. Once per new message. */
      onFailure?: (message: string) => void;
      /** Tests: the thread's script (default: the sibling checkpoint-thread.main). */
      script?: string;
    },
  ) {}

  /** Starts the thread; resolves once it has opened the database and the main connection has stopped checkpointing. */
  async start(): Promise<void> {
    const file = this.file();
    if (!file || this.worker) return;
    const script = this.options.script ?? path.join(__dirname, 'checkpoint-thread', `checkpoint-thread.main${path.extname(__filename)}`);
    const worker = startWorker(script, { file, intervalMs: this.options.intervalMs } satisfies CheckpointThreadData);
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        worker.off('message', onMessage);
        reject(err);
      };
      const onMessage = (m: CheckpointThreadMessage) => {
        if (m.type !== 'ready') return;
        worker.off('error', onError);
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('error', onError);
      worker.on('message', onMessage);
    }).catch((err) => {
      this.worker = null;
      void worker.terminate();
      throw err;
    });
    worker.on('message', (m: CheckpointThreadMessage) => {
      if (m.type === 'checkpointed') this.checkpoints++;
      else if (m.type === 'failed') this.options.onFailure?.(m.message);
    });
    let failure: Error | null = null;
    worker.on('error', (err) => (failure = err));
    worker.once('exit', () => {
      if (this.worker === worker) this.worker = null;
      this.autocheckpoint(SQLITE_AUTOCHECKPOINT_PAGES);
      if (!this.stopping) this.options.onExit?.(failure ?? new Error('the SQLite checkpoint thread stopped'));
    });
    this.autocheckpoint(0);
  }

  /** Whether the thread is checkpointing (the main connection is not). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Checkpoints the thread has reported that moved pages or saw the WAL change. */
  get reported(): number {
    return this.checkpoints;
  }

  /** Stops the thread; the main connection checkpoints again (the shutdown's own TRUNCATE checkpoint follows). */
  async close(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'stop' });
    const timer = setTimeout(() => void worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }

  /** The database file, or null for an in-memory database or MySQL (nothing to checkpoint). */
  private file(): string | null {
    if (this.dataSource.options.type !== 'better-sqlite3') return null;
    const file = this.dataSource.options.database;
    return typeof file === 'string' && file !== ':memory:' ? file : null;
  }

  private autocheckpoint(pages: number): void {
    const db = sqliteHandle(this.dataSource);
    if (db?.open) db.pragma(`wal_autocheckpoint = ${pages}`);
  }
}
