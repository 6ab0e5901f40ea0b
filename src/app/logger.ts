import pino, { DestinationStream, Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Where lines go (tests capture them); stdout otherwise. */
  destination?: DestinationStream;
  /** Human-readable lines (pino-pretty) instead of JSON: for a terminal, never for log shipping. */
  pretty?: boolean;
}

/**
 * Paths censored in case an object carrying a secret is logged by mistake. Request logs carry the key's ID,
 * never the Authorization header, the form's `token` field or a secret; these are the safety net.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'token',
  'secret',
  'apiKey',
  'metricsToken',
  '*.authorization',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.metricsToken',
];

/** JSON lines (pino) on stdout, or on `destination`; pretty lines when asked (main.ts asks when stdout is a TTY). */
export function createLogger(level = 'info', options: LoggerOptions = {}): Logger {
  const settings: pino.LoggerOptions = {
    level,
    base: { service: 'pcap-defense' },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (options.pretty) {
    // Loaded only for a terminal: JSON output never pays for it. Synchronous, so lines keep their order with stdout writes.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily, see above
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', destination: options.destination ?? 1 });
    return pino(settings, stream);
  }
  if (options.destination) return pino(settings, options.destination);
  return pino(settings);
}

/** For tests and tools that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Writes out every line still pending, then closes the log stream; resolves within `timeoutMs` whatever happens.
 * pino writes stdout asynchronously, and when the reader is slow (a full pipe) a line waits for a retry timer
 * that process.exit never runs: the last lines before an exit, a shutdown's job.handed_back among them, were
 * lost. Later log calls are dropped (level silent) rather than written to a closed stream.
 */
export function closeLogger(logger: Logger, timeoutMs = 5_000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    (NodeJS.EventEmitter & { end?: () => void; destroyed?: boolean; fd?: number }) | undefined;
  logger.level = 'silent';
  // Only pino's own asynchronous destination (SonicBoom, with an fd) holds lines back; the others write synchronously.
  if (!stream || typeof stream.end !== 'function' || typeof stream.fd !== 'number' || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    stream.once('close', done);
    stream.once('error', done);
    stream.end!();
  });
}
