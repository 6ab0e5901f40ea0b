import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { TimeBucket } from '../report.enums';
import { ThreatRow, TimelineBucketRow } from '../report.types';
import { Grouping, GroupingOptions } from './grouping';

/**
 * What computes a report: any grouping declared in groupings.ts, plus the two hand-written ones. The memory
 * executor serves an account whose hits the store holds, the SQL executor every other; ReportService picks one
 * per request. An executor for another engine implements this, and no grouping changes.
 */
export interface ReportExecutor {
  group<R>(g: Grouping<R>, f: ResolvedHitFilter, options?: GroupingOptions): Promise<R[]>;
  /** The triage view: (host, entry) rows, most severe first, then most hits (threats.*.ts). */
  threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]>;
  /** Hits per local hour or day in `zone`, every bucket present (timeline.*.ts). */
  timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]>;
}

/** The severities a filter admits, worst first: the order threats are ranked in. */
export function severityLevels(f: ResolvedHitFilter): number[] {
  const levels = (f.severities ?? [5, 4, 3, 2, 1, 0]).filter((s) => f.minSeverity === undefined || s >= f.minSeverity);
  return [...new Set(levels)].sort((a, b) => b - a);
}
