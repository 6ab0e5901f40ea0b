import { DataSource } from 'typeorm';
import { LogUpload } from '../log-upload/log-upload.entity';
import { LiveFeed } from './live-feed';
import { HitKind } from '../flow-hit/flow-hit.enums';
import type { AnalyticsFlowHits } from '../analytics/analytics-flow-hits';

export interface HitsFoundFilterData {
  deviceIds?: Array<number | null> | null;
  minSeverity?: number | null;
  directions?: string[] | null;
  /** IP, DNS; none given: both. */
  kinds?: readonly HitKind[] | null;
}

/** What hitsFound sends: an upload's hits that pass the filter. */
export interface HitsFoundData {
  uploadId: number;
  hitCount: number;
  ipHitCount: number;
  dnsHitCount: number;
  maxSeverity: number;
}

interface Found {
  hits: number;
  maxSeverity: number | null;
}

/** The subscriptions' rules: what each one yields, scoped to the caller's account. */
export class LiveService {
  constructor(
    private readonly dataSource: DataSource,
    readonly feed: LiveFeed,
    /** With ANALYTICS_URL the hits are in ClickHouse: counted there. */
    private readonly analyticsHits: AnalyticsFlowHits | null = null,
  ) {}

  uploadProgress(accountId: number, uploadId: number | null): AsyncGenerator<LogUpload> {
    return this.feed.uploadProgress(accountId, uploadId);
  }

  /** Each upload in which hits were found (live-feed.ts), when its hits (IP, DNS or both) include some that pass the filter, with their counts. */
  async *hitsFound(accountId: number, filter: HitsFoundFilterData | null | undefined): AsyncGenerator<HitsFoundData> {
    const kinds = filter?.kinds?.length ? new Set(filter.kinds) : new Set([HitKind.IP, HitKind.DNS]);
    for await (const change of this.feed.hitsChanged(accountId)) {
      const ip = kinds.has(HitKind.IP) ? await this.flowHitsOf(accountId, change.uploadId, filter) : NONE;
      // DNS hits live in SQL on every install, the analytics tier's included.
      const dns = kinds.has(HitKind.DNS) ? await this.count('dns_hit', accountId, change.uploadId, filter) : NONE;
      const hitCount = ip.hits + dns.hits;
      if (hitCount === 0) continue;
      yield {
        uploadId: change.uploadId,
        hitCount,
        ipHitCount: ip.hits,
        dnsHitCount: dns.hits,
        maxSeverity: Math.max(ip.maxSeverity ?? 0, dns.maxSeverity ?? 0),
      };
    }
  }

  /** The upload's flow hits that pass the filter: in ClickHouse with the analytics tier, else in SQL. */
  private async flowHitsOf(accountId: number, uploadId: number, filter: HitsFoundFilterData | null | undefined): Promise<Found> {
    if (!this.analyticsHits) return this.count('flow_hit', accountId, uploadId, filter);
    const deviceIds = filter?.deviceIds ? filter.deviceIds.filter((d): d is number => d != null) : null;
    return this.analyticsHits.uploadSummary(accountId, uploadId, { minSeverity: filter?.minSeverity, deviceIds, directions: filter?.directions });
  }

  /** Hits of one upload in a SQL table of hits (flow_hit, dns_hit: the same column names) that pass the filter. */
  private async count(table: 'flow_hit' | 'dns_hit', accountId: number, uploadId: number, filter: HitsFoundFilterData | null | undefined): Promise<Found> {
    const where = ['account_id = ?', 'upload_id = ?'];
    const params: unknown[] = [accountId, uploadId];
    if (filter?.minSeverity != null) {
      where.push('severity >= ?');
      params.push(filter.minSeverity);
    }
    if (filter?.deviceIds) {
      const ids = filter.deviceIds.filter((d): d is number => d != null);
      where.push(ids.length ? `device_id IN (${ids.map(() => '?').join(',')})` : '1 = 0');
      params.push(...ids);
    }
    if (filter?.directions?.length) {
      where.push(`direction IN (${filter.directions.map(() => '?').join(',')})`);
      params.push(...filter.directions);
    }
    const [row] = (await this.dataSource.query(`SELECT COUNT(*) AS n, MAX(severity) AS s FROM ${table} WHERE ${where.join(' AND ')}`, params)) as Array<{
      n: string | number;
      s: string | number | null;
    }>;
    return { hits: Number(row.n), maxSeverity: row.s == null ? null : Number(row.s) };
  }
}

const NONE: Found = { hits: 0, maxSeverity: null };
