import { createHash } from 'node:crypto';
import type { ResolvedHitFilter } from '../flow-hit/hit-filter';
import type { ReportExecutor } from './groupings/executor';
import type { Grouping, GroupingOptions } from './groupings/grouping';
import { type AccountHits, blockId } from './hit-memory';
import type { TimeBucket } from './report.enums';
import type { ThreatRow, TimelineBucketRow } from './report.types';

export interface SharedReportsOptions {
  /** Results kept after they are computed (0: only computations running at once are shared). */
  maxEntries: number;
  /** Rows kept over all results; a result larger than this is shared while it runs, not kept. */
  maxRows: number;
  /** Told how each request got its result (metrics). */
  onResult?: (outcome: keyof SharedReportsStats) => void;
}

export interface SharedReportsStats {
  /** Computations run. */
  computed: number;
  /** Requests that joined a computation already running. */
  joined: number;
  /** Requests answered from a result kept. */
  kept: number;
}

interface Entry {
  rows: unknown[];
}

/**
 * Report results shared between requests that ask the same thing of the same hits (REPORT_SHARED_RESULTS): a
 * dashboard open on twenty screens, an analyst's refresh of a past week, a script polling a report. A memory-store
 * report is a pure function of its filter, what it asks and the store's blocks in the filter's window (blocks are
 * never changed in place, hit-memory.ts; the tables their ids point into only grow). So the key names exactly
 * those, and a request with the same key joins the computation running or takes the result kept: its answer is
 * the one it would have computed. A hit written, purged, re-judged or triaged in the window changes the window's
 * blocks, and so the key; a change outside it does not. Failures are not kept. Each taker gets its own copy.
 *
 * Kept results are bounded by count and by rows (least recently used first out); they hold no block.
 */
export class SharedReports {
  private readonly running = new Map<string, Promise<unknown[]>>();
  /** Kept results by key; a Map's order is its insertion order, so a read re-inserts to mark it recent. */
  private readonly results = new Map<string, Entry>();
  private rows = 0;
  readonly stats: SharedReportsStats = { computed: 0, joined: 0, kept: 0 };

  constructor(private readonly options: SharedReportsOptions) {}

  /** The result of `key`: kept, running, or computed now by `compute`; always a copy of its own. */
  async get<T>(key: string, compute: () => Promise<T[]>): Promise<T[]> {
    const kept = this.results.get(key);
    if (kept) {
      this.results.delete(key);
      this.results.set(key, kept);
      this.count('kept');
      return copyRows(kept.rows) as T[];
    }
    let run = this.running.get(key);
    if (run) this.count('joined');
    else {
      this.count('computed');
      run = compute();
      this.running.set(key, run);
      // Settled either way before any taker reads it: a failure is not kept, and the next request computes again.
      const settled = run.then(
        (rows) => this.keep(key, rows),
        () => undefined,
      );
      void settled.finally(() => {
        if (this.running.get(key) === run) this.running.delete(key);
      });
    }
    return copyRows(await run) as T[];
  }

  private count(outcome: keyof SharedReportsStats): void {
    this.stats[outcome]++;
    this.options.onResult?.(outcome);
  }

  /** Results kept now (tests). */
  get size(): number {
    return this.results.size;
  }

  private keep(key: string, rows: unknown[]): void {
    if (this.options.maxEntries <= 0 || rows.length > this.options.maxRows) return;
    const old = this.results.get(key);
    if (old) {
      this.rows -= old.rows.length;
      this.results.delete(key);
    }
    this.results.set(key, { rows });
    this.rows += rows.length;
    for (const [k, e] of this.results) {
      if (this.results.size <= this.options.maxEntries && this.rows <= this.options.maxRows) break;
      this.results.delete(k);
      this.rows -= e.rows.length;
    }
  }
}

/**
 * A copy of result rows: plain objects and arrays copied, Dates made anew (a taker may add a field, as
 * ReportService adds `kind`), everything else (numbers, strings, null) as is.
 */
export function copyRows(rows: readonly unknown[]): unknown[] {
  return rows.map(copyValue);
}

function copyValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Date || Object.prototype.toString.call(v) === '[object Date]') return new Date((v as Date).getTime());
  if (Array.isArray(v)) return v.map(copyValue);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = copyValue(x);
  return out;
}

/**
 * What a filter's report reads of a snapshot: the blocks that have hits in the filter's window (the only blocks a
 * selection reads, hit-memory.report.ts), as a digest of their ids in order. Block ids are never reused, and a
 * reloaded account has blocks of its own.
 */
export function windowKey(snapshot: AccountHits, f: ResolvedHitFilter): string {
  const blocks = snapshot.blocks();
  // Snapshots of one version share their list of blocks (AccountHits.snapshot): its keys are kept with it.
  let known = Array.isArray(blocks) ? windowKeys.get(blocks) : undefined;
  if (Array.isArray(blocks) && !known) windowKeys.set(blocks, (known = new Map()));
  const window = `${f.from}|${f.to}`;
  const hit = known?.get(window);
  if (hit !== undefined) return hit;
  const ids: number[] = [];
  for (const b of blocks) if (!(b.maxAt < f.from || b.minAt >= f.to)) ids.push(blockId(b));
  const digest = createHash('sha256')
    .update(new Uint8Array(Float64Array.from(ids).buffer))
    .digest('base64');
  const key = `${ids.length}:${digest}`;
  if (known && known.size < MAX_WINDOWS_PER_VERSION) known.set(window, key);
  return key;
}

/** Window keys by a version's list of blocks (dropped with it), at most MAX_WINDOWS_PER_VERSION windows each. */
const windowKeys = new WeakMap<object, Map<string, string>>();
const MAX_WINDOWS_PER_VERSION = 1_000;

/** A grouping's text (declared groupings are constants; the whole declaration is keyed, not only its name). */
const groupingKeys = new WeakMap<Grouping<unknown>, string>();
function groupingKey(g: Grouping<unknown>): string {
  let k = groupingKeys.get(g);
  if (k === undefined) groupingKeys.set(g, (k = JSON.stringify(g)));
  return k;
}

/**
 * An executor over a memory-store snapshot whose calls go through `shared`: each call's key is the window's
 * blocks (windowKey, once per filter), the filter and the call with its arguments.
 */
export class SharingExecutor implements ReportExecutor {
  private readonly windows = new WeakMap<ResolvedHitFilter, string>();

  constructor(
    /** The executor that computes what no other request has. */
    readonly inner: ReportExecutor,
    private readonly snapshot: AccountHits,
    private readonly shared: SharedReports,
  ) {}

  private key(f: ResolvedHitFilter, call: string): string {
    let w = this.windows.get(f);
    if (w === undefined) this.windows.set(f, (w = windowKey(this.snapshot, f)));
    return `${w}|${JSON.stringify(f)}|${call}`;
  }

  group<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions = {}): Promise<R[]> {
    const call = `group|${groupingKey(g as Grouping<unknown>)}|${JSON.stringify({ first: options.first ?? null, skip: options.skip ?? null })}`;
    return this.shared.get(this.key(f, call), () => this.inner.group(g, f, options));
  }

  threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    return this.shared.get(this.key(f, `threats|${first}`), () => this.inner.threats(f, first));
  }

  timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    return this.shared.get(this.key(f, `timeline|${bucket}|${zone}`), () => this.inner.timeline(f, bucket, zone));
  }
}
