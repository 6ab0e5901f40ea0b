import { DataSource, In } from 'typeorm';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage, SortKey } from '../../common/pagination/keyset';
import { applyHitFilter, ResolvedHitFilter } from './hit-filter';
import { FlowHitOrder } from './flow-hit.enums';
import { FlowHit } from './flow-hit.entity';
import type { AnalyticsFlowHits } from '../analytics/analytics-flow-hits';

const ORDERS: Record<FlowHitOrder, SortKey<FlowHit>[]> = {
  [FlowHitOrder.FIRST_SEEN_DESC]: [
    { expression: 'h.firstSeenAt', direction: 'DESC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'h.id', direction: 'DESC', value: (h) => h.id },
  ],
  [FlowHitOrder.FIRST_SEEN_ASC]: [
    { expression: 'h.firstSeenAt', direction: 'ASC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'h.id', direction: 'ASC', value: (h) => h.id },
  ],
  [FlowHitOrder.PACKETS_DESC]: [
    { expression: '(h.packetsForward + h.packetsReverse)', direction: 'DESC', value: (h) => h.packetsForward + h.packetsReverse },
    { expression: 'h.id', direction: 'DESC', value: (h) => h.id },
  ],
  [FlowHitOrder.SEVERITY_DESC]: [
    { expression: 'h.severity', direction: 'DESC', value: (h) => h.severity },
    { expression: 'h.firstSeenAt', direction: 'DESC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'h.id', direction: 'DESC', value: (h) => h.id },
  ],
};

/** With the analytics tier (ANALYTICS_URL) the hits are read from ClickHouse (analytics-flow-hits.ts). */
export class FlowHitService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly analytics: AnalyticsFlowHits | null = null,
  ) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(FlowHit | null)[]> {
    if (this.analytics) return this.analytics.findMany(accountId, ids);
    const rows = ids.length ? await this.dataSource.getRepository(FlowHit).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /**
   * The drill-down: hits matching a filter, a keyset page at a time (no OFFSET, so page 50 costs what page
   * 1 does). The cursor is tagged with the ordering, so it cannot be replayed under another one.
   * The page's IDs come first and its rows by key: for one device (and a severity floor) the keyset scan then
   * reads the (account, device, time, id, severity) index alone, whatever the planner's choice of range or ref,
   * and 101 rows are read instead of every row the filter passes over (MariaDB does not push the filter into a
   * descending scan: page 50 read ~9,000 rows).
   */
  async search(f: ResolvedHitFilter, order: FlowHitOrder, page: KeysetPage): Promise<ConnectionData<FlowHit>> {
    if (this.analytics) return this.analytics.search(f, order, page);
    const qb = applyHitFilter(this.dataSource.getRepository(FlowHit).createQueryBuilder('h'), f);
    return keysetPaginate(qb, `hits:${order}`, ORDERS[order], page, { rowsByKey: true });
  }

  /** The hits of one upload, in capture order. */
  async ofUpload(accountId: number, uploadId: number, page: KeysetPage): Promise<ConnectionData<FlowHit>> {
    if (this.analytics) return this.analytics.ofUpload(accountId, uploadId, page);
    const qb = this.dataSource
      .getRepository(FlowHit)
      .createQueryBuilder('h')
      .where('h.accountId = :accountId AND h.uploadId = :uploadId', { accountId, uploadId });
    return keysetPaginate(
      qb,
      'uploadhits',
      [
        { expression: 'h.firstSeenAt', direction: 'ASC', value: (h) => h.firstSeenAt.getTime() },
        { expression: 'h.id', direction: 'ASC', value: (h) => h.id },
      ],
      page,
    );
  }
}
