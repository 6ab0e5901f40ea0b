import pino, { Logger } from 'pino';

export type { Logger };

/**
 * JSON lines to stdout (pino). Secrets never reach it: request logs carry the key's ID, never the header,
 * and these paths are redacted in case an object carrying them is logged by mistake.
 */
export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'pcap-defense' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', 'secret', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  });
}

/** For tests and tools that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
