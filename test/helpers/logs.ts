import { DestinationStream } from 'pino';
import { createLogger, Logger } from '../../src/app/logger';

export interface CapturedLog {
  logger: Logger;
  /** Every line, parsed. */
  lines: Array<Record<string, any>>;
  /** Every line as written (for searching the raw text). */
  text(): string;
  /** Lines whose `event` is the given one. */
  events(event: string): Array<Record<string, any>>;
}

/** A real pino logger writing JSON lines into memory. */
export function captureLog(level = 'trace'): CapturedLog {
  const raw: string[] = [];
  const lines: Array<Record<string, any>> = [];
  const destination: DestinationStream = {
    write(line: string) {
      raw.push(line);
      lines.push(JSON.parse(line));
    },
  };
  return {
    logger: createLogger(level, { destination }),
    lines,
    text: () => raw.join(''),
    events: (event) => lines.filter((l) => l.event === event),
  };
}
