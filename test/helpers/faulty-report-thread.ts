// A report thread that misbehaves before a call while `faults[0]` > 0 (shared by the pool's threads, so the
// replacement of a dead thread works normally): `exit` ends the thread, `forget` drops the call's request (as an
// abandoned one is dropped), `stall` blocks the thread for a second.
import { parentPort, workerData } from 'node:worker_threads';
import { serveReports } from '../../src/modules/report/report-thread/report-thread';

export type ReportFault = 'exit' | 'forget' | 'stall' | 'hog';
const { mode, faults } = workerData as { mode: ReportFault; faults: Int32Array };

serveReports(parentPort!, {
  beforeCall: () => {
    if (Atomics.load(faults, 0) <= 0) return;
    Atomics.sub(faults, 0, 1);
    if (mode === 'exit') process.exit(3);
    if (mode === 'stall') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    if (mode === 'forget') return 'forget';
    if (mode === 'hog') {
      const held: number[][] = [];
      for (;;) held.push(Array.from({ length: 1_000_000 }, (_, i) => i));
    }
  },
});
