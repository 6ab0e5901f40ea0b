import { DataSource } from 'typeorm';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { ResolvedHitFilter } from '../flow-hit/hit-filter';
import { Analytics } from '../analytics/analytics';
import { COMMITTED_READ, committedAttempts, committedParams } from '../analytics/analytics-hits';
import { syncTriage } from '../analytics/analytics-triage';
import { analyticsUnavailable, ChParams, chRows, HITS_TABLE } from './groupings/clickhouse-source';
import { rollupFrom } from '../analytics/analytics-rollup';
import { ClickHouseExecutor } from './groupings/clickhouse.executor';
import { DnsExecutor } from './groupings/dns.executor';
import { HitKind } from '../flow-hit/flow-hit.enums';
import { ReportExecutor } from './groupings/executor';
import { Grouping, GroupingOptions } from './groupings/grouping';
import { MemoryExecutor } from './groupings/memory.executor';
import { SqlExecutor } from './groupings/sql.executor';
import { AccountHits, HitMemory } from './hit-memory';
import { SharedReports, SharingExecutor } from './shared-reports';
import { ReportThreads } from './report-thread/report-threads';
import { TimeBucket } from './report.enums';
import { ThreatRow, TimelineBucketRow } from './report.types';

/**
 * Read models over hits: the groupings declared in groupings/groupings.ts, threats and the timeline, each
 * run only when its field is selected, by the executor chosen once for the request: the in-memory store's when
 * it holds the account's hits (hit-memory.ts), SQL otherwise (roll-ups and raw hits; groupings/sql.executor.ts).
 * With the analytics tier (ANALYTICS_URL) the hits live in ClickHouse, and every report is computed there
 * (groupings/clickhouse.executor.ts); ClickHouse failing is ANALYTICS_UNAVAILABLE, never a partial answer.
 * A filter of kind DNS reads DNS hits, in SQL on every install (groupings/dns.executor.ts).
 */
export class ReportService {
  private readonly sql: SqlExecutor;
  /** DNS hits (a filter of kind DNS), in SQL on every install. */
  private readonly dns: DnsExecutor;

  /** The executor of each request (one filter object per report), chosen by its first grouping. */
  private readonly chosen = new WeakMap<ResolvedHitFilter, Promise<ReportExecutor>>();

  /** Without `memory`, or with the store off, every report is computed in SQL; with `analytics`, in ClickHouse. */
  constructor(
    private readonly dataSource: DataSource,
    private readonly options: { memory?: HitMemory; threads?: ReportThreads | null; analytics?: Analytics | null; shared?: SharedReports | null } = {},
  ) {
    this.sql = new SqlExecutor(dataSource);
    this.dns = new DnsExecutor(dataSource);
  }

  /**
   * The request's executor. With the store: a snapshot of the account's hits as of every change committed
   * before the request, which all of its groupings read (blocks are never changed in place), one per turn of
   * the event loop: on a report thread (REPORT_THREADS, report-thread/), or on the main thread with none.
   */
  executor(f: ResolvedHitFilter): Promise<ReportExecutor> {
    let chosen = this.chosen.get(f);
    if (!chosen) {
      const memory = this.options.memory;
      const analytics = this.options.analytics;
      chosen =
        f.kind === HitKind.DNS
          ? Promise.resolve(this.dns)
          : analytics
            ? this.clickhouse(analytics, f)
            : memory
              ? memory.view(f.accountId).then((held) => (held ? this.memoryExecutor(held) : this.sql))
              : Promise.resolve(this.sql);
      this.chosen.set(f, chosen);
    }
    return chosen;
  }

  /** A request's executor over the store's snapshot: on a thread or here, its calls shared with other requests (REPORT_SHARING). */
  private memoryExecutor(held: AccountHits): ReportExecutor {
    const snapshot = held.snapshot();
    const threads = this.options.threads;
    const inner = threads ? threads.executor(held, snapshot) : new MemoryExecutor(snapshot);
    return this.options.shared ? new SharingExecutor(inner, snapshot, this.options.shared) : inner;
  }

  /**
   * The ClickHouse executor of one request, reading the account's committed attempts as of now (from SQL, the
   * system of record): an upload committed later is not half-seen by the request's other groupings.
   */
  private async clickhouse(analytics: Analytics, f: ResolvedHitFilter): Promise<ReportExecutor> {
    if (!analytics.ready) throw analyticsUnavailable(new Error('the analytics tables are not migrated yet'));
    // A filter on verdicts reads ClickHouse's mirror of them: brought up to SQL's first.
    if (f.triageStatuses !== undefined) await syncTriage(analytics.client, this.dataSource, f.accountId);
    return new ClickHouseExecutor(analytics.client, await committedAttempts(this.dataSource.manager, f.accountId), rollupFrom(analytics.retentionDays));
  }

  /** A grouping's rows, each with the kind of hits it counts (`kind`: row types that name an entry show it). */
  async group<R>(f: ResolvedHitFilter, g: Grouping<R>, options: GroupingOptions = {}): Promise<Array<R & { kind: HitKind }>> {
    const rows = await (await this.executor(f)).group(g, f, options);
    const kind = f.kind ?? HitKind.IP;
    for (const row of rows) (row as R & { kind: HitKind }).kind = kind;
    return rows as Array<R & { kind: HitKind }>;
  }

  async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    const rows = await (await this.executor(f)).threats(f, first);
    const kind = f.kind ?? HitKind.IP;
    for (const row of rows) row.kind = kind;
    return rows;
  }

  async timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    return (await this.executor(f)).timeline(f, bucket, zone);
  }

  /** Hit count and first/last capture time for one address (iocLookup). */
  async addressStats(accountId: number, address: string): Promise<{ hits: number; firstSeenAt: Date | null; lastSeenAt: Date | null }> {
    const analytics = this.options.analytics;
    if (analytics) {
      if (!analytics.ready) throw analyticsUnavailable();
      const p = new ChParams();
      const committed = await committedAttempts(this.dataSource.manager, accountId);
      const [r] = await chRows<Record<string, number>>(
        analytics.client,
        `SELECT count() AS hits, min(first_seen_at) AS first, max(last_seen_at) AS last FROM ${HITS_TABLE}
         WHERE account_id = ${p.add(accountId, 'UInt64')} AND matched_ip = ${p.add(address, 'String')} AND ${COMMITTED_READ}`,
        { ...p.values, ...committedParams(committed) },
      );
      const hits = Number(r?.hits ?? 0);
      return { hits, firstSeenAt: hits ? new Date(Number(r.first)) : null, lastSeenAt: hits ? new Date(Number(r.last)) : null };
    }
    const r: Record<string, string | number | null> =
      (await this.dataSource
        .getRepository(FlowHit)
        .createQueryBuilder('h')
        .select('COUNT(*)', 'hits')
        .addSelect('MIN(h.firstSeenAt)', 'first')
        .addSelect('MAX(h.lastSeenAt)', 'last')
        .where('h.accountId = :accountId AND h.matchedIp = :address', { accountId, address })
        .getRawOne()) ?? {};
    const hits = Number(r.hits ?? 0);
    return { hits, firstSeenAt: hits ? new Date(Number(r.first)) : null, lastSeenAt: hits ? new Date(Number(r.last)) : null };
  }
}
