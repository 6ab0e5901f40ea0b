// A real server process for crash tests: the same startServer as src/main.ts, plus a test-only hook that
// SIGKILLs the process once the worker has parsed CRASH_AT_BYTES of an upload (as a power cut would).
import 'reflect-metadata';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/app/logger';
import { startServer } from '../../src/app/server';

const crashAt = Number(process.env.CRASH_AT_BYTES ?? 0);

startServer(loadConfig(), silentLogger(), {
  onProgress: (_uploadId, bytes) => {
    if (crashAt > 0 && bytes >= crashAt) process.kill(process.pid, 'SIGKILL');
  },
})
  .then((server) => {
    process.stdout.write(`READY ${server.port} ${server.bootstrapSecret ?? '-'}\n`);
    process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
  })
  .catch((err) => {
    process.stderr.write(`child server failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
