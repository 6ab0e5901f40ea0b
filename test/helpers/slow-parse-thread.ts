// A parse thread that stalls after each parsed slice for `delayMs` (workerData), so that a shutdown test finds a
// job in progress however busy the main thread is; the main thread stays free to handle the signal.
import { parentPort, workerData } from 'node:worker_threads';
import { serveParseJobs } from '../../src/modules/log-upload/parse-thread/parse-thread';

const { delayMs } = workerData as { delayMs: number };
const pause = new Int32Array(new SharedArrayBuffer(4));

serveParseJobs(parentPort!, {
  afterSlice: () => {
    Atomics.wait(pause, 0, 0, delayMs);
  },
});
