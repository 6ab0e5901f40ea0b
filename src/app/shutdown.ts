import { Logger, closeLogger } from './logger';
import { RunningServer } from './server';

/**
 * On SIGTERM or SIGINT: stop the server (readiness off, the job in progress handed back, requests finished),
 * write out every log line, and exit 0. Exits 1 if stopping hangs past SHUTDOWN_TIMEOUT_MS plus a margin.
 */
export function exitOnSignals(server: Pick<RunningServer, 'stop'>, logger: Logger, shutdownTimeoutMs: number): void {
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    // stop() cuts requests still running after SHUTDOWN_TIMEOUT_MS; this only guards against a hung close.
    setTimeout(() => process.exit(1), shutdownTimeoutMs + 5_000).unref();
    await server.stop();
    // process.exit does not wait for stdout: the lines the shutdown wrote (job.handed_back) must be out first.
    await closeLogger(logger);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
