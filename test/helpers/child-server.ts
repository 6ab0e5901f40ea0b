// A real server process for crash and shutdown tests: the same startServer as src/main.ts, plus test-only hooks:
// CRASH_AT_BYTES SIGKILLs the process once the worker has parsed that much of an upload (as a power cut would).
import 'reflect-metadata';
import path from 'node:path';
import { loadConfig } from '../../src/config/config';
import { createLogger, silentLogger } from '../../src/app/logger';
import { startServer } from '../../src/app/server';
import { exitOnSignals } from '../../src/app/shutdown';

// PROGRESS_DELAY_MS stalls the worker after each parsed chunk, so that a shutdown test finds a job in progress: in
// the parse thread (slow-parse-thread.ts), or on the main thread when uploads parse there (PARSE_THREADS=0). The
// main thread sees a thread's progress coalesced (parse-pool.ts), so a stall there would not slow the job.
const crashAt = Number(process.env.CRASH_AT_BYTES ?? 0);
const progressDelayMs = Number(process.env.PROGRESS_DELAY_MS ?? 0);
const pause = new Int32Array(new SharedArrayBuffer(4));

// LOG_STDOUT=1: the server's JSON log lines on stdout, as main.ts writes them (after the READY line).
const logger = process.env.LOG_STDOUT === '1' ? createLogger(process.env.LOG_LEVEL ?? 'info') : silentLogger();

const config = loadConfig();

// START_AT (epoch ms) holds the start until then, so that processes spawned together start at one moment
// (module loading alone spreads them over a second or more).
const startAt = Number(process.env.START_AT ?? 0);

new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())))
  .then(() =>
    startServer(config, logger, {
      onProgress: (_uploadId, bytes) => {
        if (crashAt > 0 && bytes >= crashAt) process.kill(process.pid, 'SIGKILL');
        if (progressDelayMs > 0 && config.worker.parseThreads === 0) Atomics.wait(pause, 0, 0, progressDelayMs);
      },
      ...(progressDelayMs > 0 && config.worker.parseThreads > 0
        ? { parseThread: { script: path.join(__dirname, `slow-parse-thread${path.extname(__filename)}`), workerData: { delayMs: progressDelayMs } } }
        : {}),
    }),
  )
  .then((server) => {
    process.stdout.write(`READY ${server.port} ${server.bootstrapSecret ?? '-'}\n`);
    // As src/main.ts does: stop, write out the log, exit.
    exitOnSignals(server, logger, config.shutdownTimeoutMs);
  })
  .catch((err) => {
    process.stderr.write(`child server failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
