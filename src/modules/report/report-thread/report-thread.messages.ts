import type { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import type { AccountHits, Block, Interner } from '../hit-memory';
import type { Grouping, GroupingOptions } from '../groupings/grouping';
import type { TimeBucket } from '../report.enums';

/** The interned tables of an account's hits (hit-memory.ts): every property of AccountHits that is an Interner. */
export type InternedTable = { [K in keyof AccountHits]: AccountHits[K] extends Interner<unknown> ? K : never }[keyof AccountHits];

/** The values an account's interned tables gained since the thread last heard of them (they only grow). */
export type InternerTails = { [K in InternedTable]: AccountHits[K]['values'] };

/**
 * A report's snapshot of an account, as the thread is to hold it: every block by id (those the thread has not
 * seen yet with their columns, in shared memory, so nothing is copied), and the tables' new values. `fresh`: the
 * store rebuilt the account (new ids): the thread starts its tables again.
 */
export interface SnapshotMessage {
  type: 'open';
  request: number;
  accountId: number;
  fresh: boolean;
  version: number;
  hits: number;
  /** The snapshot's blocks, in order: an id, or a block the thread has not seen (with its id). */
  blocks: Array<number | { id: number; block: Block }>;
  tails: InternerTails;
  filter: ResolvedHitFilter;
}

export type ReportCall =
  | { kind: 'group'; grouping: Grouping<unknown>; options: GroupingOptions }
  | { kind: 'threats'; first: number }
  | { kind: 'timeline'; bucket: TimeBucket; zone: string };

/** Sent first to every thread when reports give way to uploads (ReportThreadsOptions.giveWay): the GiveWay's memory and the longest wait per request. */
export interface GiveWayMessage {
  type: 'giveWay';
  buffer: SharedArrayBuffer;
  maxWaitMs: number;
}

/** Sent first to every thread when it runs at a lower CPU priority (REPORT_THREAD_NICE): its nice increment. */
export interface PriorityMessage {
  type: 'priority';
  nice: number;
}

export type ToReportThread =
  SnapshotMessage | GiveWayMessage | PriorityMessage | { type: 'call'; request: number; call: number; what: ReportCall } | { type: 'close'; request: number };

/** `gone`: the thread no longer holds the request (dropped as abandoned): the caller opens it again. */
export type FromReportThread =
  /** `waitedMs`: how long the call waited for uploads parsing before it ran. */
  { type: 'result'; call: number; rows: unknown[]; waitedMs: number } | { type: 'failed'; call: number; message: string; stack?: string; gone?: boolean };
