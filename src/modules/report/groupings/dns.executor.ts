import { DataSource } from 'typeorm';
import { DnsHit } from '../../dns-hit/dns-hit.entity';
import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocCategory } from '../../ioc/ioc.enums';
import { ThreatRow } from '../report.types';
import { severityLevels } from './executor';
import { applyDnsConditions, DNS_HITS } from './dns-source';
import { num, SqlExecutor } from './sql.executor';

/**
 * Reports over DNS hits (a filter of kind DNS): every declared grouping and the timeline run by the SQL
 * executor over dns_hit (dns-source.ts); the triage view is its own query here. DNS hits are in SQL whatever
 * executor serves the account's flow hits (the store, SQL or ClickHouse).
 */
export class DnsExecutor extends SqlExecutor {
  constructor(dataSource: DataSource) {
    super(dataSource, DNS_HITS);
  }

  /**
   * (host, entry) rows as for flow hits, in the same order: most severe, then most hits, then device, host (byte
   * order) and entry. A DNS hit's packets are its queries; it has no destination port; an entry's name never
   * changes, so a (host, entry, category) is one row.
   */
  override async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    const levels = severityLevels(f);
    if (levels.length === 0) return [];
    const qb = this.dataSource.getRepository(DnsHit).createQueryBuilder('h').where('h.severity IN (:...threatLevels)', { threatLevels: levels });
    applyDnsConditions(qb, f);
    const rows: Array<Record<string, string | number | null>> = await qb
      .select('h.deviceId', 'device')
      .addSelect('h.internalIp', 'ip')
      .addSelect('h.iocDomainId', 'ioc')
      .addSelect('h.iocListId', 'list')
      .addSelect('h.matchedName', 'name')
      .addSelect('h.severity', 'severity')
      .addSelect('h.category', 'category')
      .addSelect('COUNT(*)', 'hits')
      .addSelect('SUM(h.hitCount)', 'packets')
      .addSelect('SUM(CASE WHEN h.direction = :inbound THEN 1 ELSE 0 END)', 'inbound')
      .addSelect('SUM(CASE WHEN h.direction = :outbound THEN 1 ELSE 0 END)', 'outbound')
      .addSelect('MIN(h.firstSeenAt)', 'first')
      .addSelect('MAX(h.lastSeenAt)', 'last')
      .setParameters({ inbound: Direction.INBOUND, outbound: Direction.OUTBOUND })
      .groupBy('h.deviceId')
      .addGroupBy('h.internalIp')
      .addGroupBy('h.iocDomainId')
      .addGroupBy('h.iocListId')
      .addGroupBy('h.matchedName')
      .addGroupBy('h.severity')
      .addGroupBy('h.category')
      .orderBy('h.severity', 'DESC')
      .addOrderBy('hits', 'DESC')
      .addOrderBy('h.deviceId', 'ASC')
      .addOrderBy(this.dialect.bytewise('h.internalIp'), 'ASC')
      .addOrderBy('h.iocDomainId', 'ASC')
      .addOrderBy(this.dialect.bytewise('h.category'), 'ASC')
      .limit(first)
      .getRawMany();
    return rows.map((r) => ({
      deviceId: num(r.device),
      internalIp: String(r.ip),
      iocId: num(r.ioc),
      iocListId: num(r.list),
      matchedCidr: String(r.name),
      severity: num(r.severity),
      category: r.category as IocCategory,
      hits: num(r.hits),
      packets: num(r.packets),
      destinationPorts: [],
      directions: [...(num(r.inbound) > 0 ? [Direction.INBOUND] : []), ...(num(r.outbound) > 0 ? [Direction.OUTBOUND] : [])],
      firstSeenAt: new Date(num(r.first)),
      lastSeenAt: new Date(num(r.last)),
    }));
  }
}
