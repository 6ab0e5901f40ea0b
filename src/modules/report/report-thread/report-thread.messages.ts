import type { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import type { Block, EntryGroup, ExternalInfo, HostInfo } from '../hit-memory';
import type { Grouping, GroupingOptions } from '../groupings/grouping';
import type { TimeBucket } from '../report.enums';

/** The values an account's interned tables gained since the thread last heard of them (they only grow). */
export interface InternerTails {
  hosts: HostInfo[];
  externals: ExternalInfo[];
  groups: EntryGroup[];
  directions: string[];
  protocols: string[];
}

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

export type ToReportThread = SnapshotMessage | { type: 'call'; request: number; call: number; what: ReportCall } | { type: 'close'; request: number };

/** `gone`: the thread no longer holds the request (dropped as abandoned): the caller opens it again. */
export type FromReportThread =
  { type: 'result'; call: number; rows: unknown[] } | { type: 'failed'; call: number; message: string; stack?: string; gone?: boolean };
