// A parse thread that fails once the parse passes `atBytes`, while `faults[0]` > 0 (shared by the pool's
// threads, so the replacement of a dead thread parses normally): `throw` fails the job inside the thread,
// `exit` ends the thread, `crash` throws outside any job (an uncaught error kills the thread).
import { parentPort, workerData } from 'node:worker_threads';
import { serveParseJobs } from '../../src/modules/log-upload/parse-thread/parse-thread';

export type FaultMode = 'throw' | 'exit' | 'crash';
const { mode, atBytes, faults } = workerData as { mode: FaultMode; atBytes: number; faults: Int32Array };

serveParseJobs(parentPort!, {
  afterSlice: (bytes) => {
    if (bytes < atBytes || Atomics.load(faults, 0) <= 0) return;
    Atomics.sub(faults, 0, 1);
    if (mode === 'throw') throw new Error('injected parse failure');
    if (mode === 'exit') process.exit(3);
    setImmediate(() => {
      throw new Error('injected uncaught error');
    });
  },
});
