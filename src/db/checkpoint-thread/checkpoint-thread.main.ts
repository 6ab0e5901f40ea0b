// The SQLite checkpoint thread (sqlite-checkpointer.ts): its own connection to the database file moves committed
// pages from the -wal file into the database file, so that the main thread's commits never do (with SQLite's
// automatic checkpoints, the commit that crosses 1,000 WAL pages copies and fsyncs them on the event loop).
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointThreadData {
  file: string;
  intervalMs: number;
}

export type CheckpointThreadMessage =
  { type: 'ready' } | { type: 'checkpointed'; log: number; checkpointed: number; busy: number } | { type: 'failed'; message: string };

const { file, intervalMs } = workerData as CheckpointThreadData;
const db = new Database(file, { fileMustExist: true });
// FULL: the database file is synced after each checkpoint, as the main connection syncs the WAL at each commit.
db.pragma('synchronous = FULL');
// This connection never checkpoints on its own commit (it commits nothing) and never waits: PASSIVE checkpoints
// copy what no reader still needs and return.
db.pragma('busy_timeout = 0');

let last = -1;
let lastError: string | null = null;
const timer = setInterval(() => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    lastError = null;
    if (r && (r.log !== last || r.checkpointed !== r.log)) {
      last = r.log;
      parentPort?.postMessage({ type: 'checkpointed', ...r } satisfies CheckpointThreadMessage);
    }
  } catch (err) {
    // A full disk, an I/O error: the pages stay in the WAL, committed, and the next turn tries again. Said once
    // per new message.
    const message = err instanceof Error ? err.message : String(err);
    if (message !== lastError) parentPort?.postMessage({ type: 'failed', message } satisfies CheckpointThreadMessage);
    lastError = message;
  }
}, intervalMs);

parentPort?.on('message', (m: { type: string }) => {
  if (m.type !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
parentPort?.postMessage({ type: 'ready' } satisfies CheckpointThreadMessage);
