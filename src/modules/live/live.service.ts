import { DataSource } from 'typeorm';
import { LogUpload } from '../log-upload/log-upload.entity';
import { LiveFeed } from './live-feed';
import type { AnalyticsFlowHits } from '../analytics/analytics-flow-hits';

export interface HitsFoundFilterData {
  deviceIds?: Array<number | null> | null;
  minSeverity?: number | null;
  directions?: string[] | null;
}

/** What hitsFound sends: an upload's hits that pass the filter. */
export interface HitsFoundData {
  uploadId: number;
  hitCount: number;
  maxSeverity: number;
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

  /** Each upload whose newly written hits include some that pass the filter, with their count. */
  async *hitsFound(accountId: number, filter: HitsFoundFilterData | null | undefined): AsyncGenerator<HitsFoundData> {
    for await (const change of this.feed.hitsChanged(accountId)) {
      if (this.analyticsHits) {
        const deviceIds = filter?.deviceIds ? filter.deviceIds.filter((d): d is number => d != null) : null;
        const found = await this.analyticsHits.uploadSummary(accountId, change.uploadId, {
          minSeverity: filter?.minSeverity,
          deviceIds,
          directions: filter?.directions,
        });
        if (found.hits > 0) yield { uploadId: change.uploadId, hitCount: found.hits, maxSeverity: found.maxSeverity ?? 0 };
        continue;
      }
      const where = ['account_id = ?', 'upload_id = ?'];
      const params: unknown[] = [accountId, change.uploadId];
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
      const [row] = (await this.dataSource.query(`SELECT COUNT(*) AS n, MAX(severity) AS s FROM flow_hit WHERE ${where.join(' AND ')}`, params)) as Array<{
        n: string | number;
        s: string | number | null;
      }>;
      const hitCount = Number(row.n);
      if (hitCount > 0) yield { uploadId: change.uploadId, hitCount, maxSeverity: Number(row.s) };
    }
  }
}
