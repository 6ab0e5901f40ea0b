// A checkpoint thread (src/db/checkpoint-thread/) that fails. It gets the checkpointer's own workerData, whose
// interval says how: 1 ms, it fails before it says it is ready; 2 ms, it reports a failed checkpoint (as on a full
// disk) and goes on; any other, it fails that long after it said it was ready.
import { parentPort, workerData } from 'node:worker_threads';

const { intervalMs } = workerData as { intervalMs: number };
if (intervalMs === 1) throw new Error('checkpoint thread failed before it was ready');
// Listening keeps the thread alive, as the real one's interval does, until it is told to stop.
parentPort?.on('message', (m: { type: string }) => {
  if (m.type === 'stop') parentPort?.close();
});
parentPort?.postMessage({ type: 'ready' });
if (intervalMs === 2) parentPort?.postMessage({ type: 'failed', message: 'database or disk is full' });
else
  setTimeout(() => {
    throw new Error('checkpoint thread failed on purpose');
  }, intervalMs);
