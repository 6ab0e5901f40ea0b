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

