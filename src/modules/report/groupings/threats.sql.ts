import { DataSource, SelectQueryBuilder } from 'typeorm';
import { Direction } from '../../flow-hit/flow-hit.enums';
import { FlowHit } from '../../flow-hit/flow-hit.entity';
import { applyHitFilter, ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocCategory } from '../../ioc/ioc.enums';
import { ThreatRow } from '../report.types';
import { severityLevels } from './executor';
import { SqlDialect } from './sql-dialect';

type Raw = Record<string, string | number | null>;
const n = (v: string | number | null | undefined) => (v == null ? 0 : Number(v));

/**
 * The triage view in SQL (threats.memory.ts is its pair), most severe first. It asks one severity at a time,
 * from the worst down, and stops once it has `first` rows: each query reads only that severity's hits through
 * (account, severity, first_seen_at), and the worst severities are usually the fewest hits.
 */
export async function threats(dataSource: DataSource, dialect: SqlDialect, f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
  const base = (): SelectQueryBuilder<FlowHit> => applyHitFilter(dataSource.getRepository(FlowHit).createQueryBuilder('h'), f);
  const out: ThreatRow[] = [];
  for (const severity of severityLevels(f)) {
    if (out.length >= first) break;
    out.push(...(await threatsOfSeverity(base, dialect, severity, first - out.length)));
  }
  return out;
}

async function threatsOfSeverity(base: () => SelectQueryBuilder<FlowHit>, dialect: SqlDialect, severity: number, first: number): Promise<ThreatRow[]> {
  // 1. Rank (host, entry) pairs by hits from the (account, severity, first_seen_at, device, host, entry, category)
  //    index alone: no table row is read for the hits that do not make the page.
  const top: Raw[] = await base()
    .andWhere('h.severity = :threatSeverity', { threatSeverity: severity })
    .select('h.deviceId', 'device')
    .addSelect('h.internalIp', 'ip')
    .addSelect('h.iocId', 'ioc')
    .addSelect('h.category', 'category')
    .addSelect('COUNT(*)', 'hits')
    .groupBy('h.deviceId')
    .addGroupBy('h.internalIp')
    .addGroupBy('h.iocId')
    .addGroupBy('h.category')
    .orderBy('hits', 'DESC')
    .addOrderBy('h.deviceId', 'ASC')
    .addOrderBy(dialect.bytewise('h.internalIp'), 'ASC')
    .addOrderBy('h.iocId', 'ASC')
    .limit(first)
    .getRawMany();
  if (top.length === 0) return [];
  // 2. The rest of each row (packets, ports, directions, times) from the hits of those pairs only. An entry's
  //    list and CIDR never change, so a pair is one row here too.
  const params: Record<string, unknown> = { threatSeverity: severity };
  const pairs = top.map((t, i) => {
    Object.assign(params, { [`td${i}`]: n(t.device), [`ti${i}`]: String(t.ip), [`te${i}`]: n(t.ioc), [`tc${i}`]: t.category });
    return `(h.deviceId = :td${i} AND h.internalIp = :ti${i} AND h.iocId = :te${i} AND h.category = :tc${i})`;
  });
  const rows: Raw[] = await base()
    .andWhere('h.severity = :threatSeverity')
    .andWhere(`(${pairs.join(' OR ')})`, params)
    .select('h.deviceId', 'device')
    .addSelect('h.internalIp', 'ip')
    .addSelect('h.iocId', 'ioc')
    .addSelect('h.iocListId', 'list')
    .addSelect('h.matchedCidr', 'cidr')
    .addSelect('h.severity', 'severity')
    .addSelect('h.category', 'category')
    .addSelect('COUNT(*)', 'hits')
    .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
    .addSelect('GROUP_CONCAT(DISTINCT h.destinationPort)', 'ports')
    .addSelect('GROUP_CONCAT(DISTINCT h.direction)', 'directions')
    .addSelect('MIN(h.firstSeenAt)', 'first')
    .addSelect('MAX(h.lastSeenAt)', 'last')
    .groupBy('h.deviceId')
    .addGroupBy('h.internalIp')
    .addGroupBy('h.iocId')
    .addGroupBy('h.iocListId')
    .addGroupBy('h.matchedCidr')
    .addGroupBy('h.severity')
    .addGroupBy('h.category')
    .getRawMany();
  const rank = new Map(top.map((t, i) => [`${n(t.device)}|${t.ip}|${n(t.ioc)}|${t.category}`, i]));
  rows.sort(
    (x, y) =>
      (rank.get(`${n(x.device)}|${x.ip}|${n(x.ioc)}|${x.category}`) ?? 0) - (rank.get(`${n(y.device)}|${y.ip}|${n(y.ioc)}|${y.category}`) ?? 0) ||
      n(y.hits) - n(x.hits),
  );
  return rows.map((r) => ({
    deviceId: n(r.device),
    internalIp: String(r.ip),
    iocId: n(r.ioc),
    iocListId: n(r.list),
    matchedCidr: String(r.cidr),
    severity: n(r.severity),
    category: r.category as IocCategory,
    hits: n(r.hits),
    packets: n(r.packets),
    destinationPorts: splitNumbers(r.ports).slice(0, 20),
    directions: String(r.directions ?? '')
      .split(',')
      .filter(Boolean)
      .sort() as Direction[],
    firstSeenAt: new Date(n(r.first)),
    lastSeenAt: new Date(n(r.last)),
  }));
}

function splitNumbers(v: string | number | null): number[] {
  if (v == null) return [];
  return String(v)
    .split(',')
    .filter((x) => x !== '')
    .map(Number)
    .sort((a, b) => a - b);
}
