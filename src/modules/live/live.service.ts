import { DataSource } from 'typeorm';
import { LogUpload } from '../log-upload/log-upload.entity';
import { HitsChanged, LiveFeed } from './live-feed';
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

  /** `apiKeyId`: only an upload that key made (an UPLOADER sees no other). */
  uploadProgress(accountId: number, uploadId: number | null, apiKeyId: number | null = null, signal?: AbortSignal): AsyncGenerator<LogUpload> {
    return this.feed.uploadProgress(accountId, uploadId, apiKeyId, signal);
  }

  /** Each upload in which hits were found (live-feed.ts), when its hits (IP, DNS or both) include some that pass the filter, with their counts. */
  async *hitsFound(accountId: number, filter: HitsFoundFilterData | null | undefined, signal?: AbortSignal): AsyncGenerator<HitsFoundData> {
    const kinds = filter?.kinds?.length ? new Set(filter.kinds) : new Set([HitKind.IP, HitKind.DNS]);
    for await (const change of this.feed.hitsChanged(accountId, signal)) {
      const ip = kinds.has(HitKind.IP) ? await this.shared(change, 'ip', filter, () => this.flowHitsOf(accountId, change.uploadId, filter)) : NONE;
      // DNS hits live in SQL on every install, the analytics tier's included.
      const dns = kinds.has(HitKind.DNS) ? await this.shared(change, 'dns', filter, () => this.count('dns_hit', accountId, change.uploadId, filter)) : NONE;
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

  /**
   * One count per hit change, kind and filter, however many subscriptions ask it: every subscriber of the account
   * wakes at the same change, and those with the same filter share the statement (a thousand subscriptions were a
   * thousand statements on the event loop per upload). A change's revision is one write of the upload's hits, so a
   * count kept for it is never stale; kept until a moment after it settles.
   */
  private shared(change: HitsChanged, kind: 'ip' | 'dns', filter: HitsFoundFilterData | null | undefined, count: () => Promise<Found>): Promise<Found> {
    const key = `${change.revision}|${change.accountId}|${change.uploadId}|${kind}|${JSON.stringify(filter ?? null)}`;
    let found = this.counts.get(key);
    if (!found) {
      found = count();
      this.counts.set(key, found);
      const forget = () => setTimeout(() => this.counts.delete(key), SHARED_COUNT_MS).unref();
      found.then(forget, forget);
    }
    return found;
  }

  private readonly counts = new Map<string, Promise<Found>>();

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
/** How long a shared count is kept after it settles: the subscribers woken by its change have all asked by then. */
const SHARED_COUNT_MS = 5_000;
