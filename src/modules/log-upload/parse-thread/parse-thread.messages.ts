import type { ParseStats } from '../parsing';
import type { Connection } from '../flows/fold';
import type { StoredFile } from './parse-stored-file';
import type { DnsQueryGroup } from '../flows/dns-queries';
import type { ThreadTime } from '../../../common/threads/thread-priority';

/** Main thread -> parse thread. */
export type ToParseThread = { type: 'parse'; id: number; file: StoredFile } | { type: 'cancel'; id: number };

/** Parse thread -> main thread, all about job `id`; `done` or `failed` ends it. */
export type FromParseThread =
  | { type: 'progress'; id: number; bytes: number; lines: number }
  /** Connections in batches, each a message of its own: the main thread takes them in several short turns. */
  | { type: 'connections'; id: number; connections: Connection[] }
  | {
      type: 'done';
      id: number;
      outcome:
        | { kind: 'parsed'; stats: ParseStats; bytes: number; partial: boolean; dnsQueries: DnsQueryGroup[]; thread: ThreadTime | null }
        | { kind: 'unreadable'; message: string }
        | { kind: 'stopped' };
    }
  | { type: 'failed'; id: number; message: string; stack?: string };
