import { DataSource, SelectQueryBuilder } from 'typeorm';
import { DnsHit } from '../../dns-hit/dns-hit.entity';
import { applyHitDimensions, ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { TriageStatus } from '../../flow-hit/hit-triage.enums';
import { HitTable, RollupSource, Sql, SourceOptions } from './sql-source';

/**
 * DNS hits as a row source of the SQL executor, under flow hits' column names: the matched domain entry is the
 * entry (`iocId`, `matchedCidr` its name), `packets` are the queries a hit counts, a DNS hit has no external
 * address (NULL: distinct counts skip it) and no bytes. DNS hits live in SQL on every install (with the
 * analytics tier too), and are few beside flow hits (one per upload, querying host, name and type), so they
 * have no roll-ups: every report reads dns_hit through its (account, first_seen_at) index.
 */
const COLUMN: Record<string, string> = {
  deviceId: 'h.device_id',
  internalIp: 'h.internal_ip',
  direction: 'h.direction',
  iocId: 'h.ioc_domain_id',
  iocListId: 'h.ioc_list_id',
  matchedCidr: 'h.matched_name',
  severity: 'h.severity',
  category: 'h.category',
  externalIp: 'NULL',
  qname: 'h.qname',
};

/** The conditions of a DNS filter (resolveHitFilter refused the ones only flow hits have) on a query over dns_hit `h`. */
export function applyDnsConditions<T extends DnsHit>(qb: SelectQueryBuilder<T>, f: ResolvedHitFilter): void {
  qb.andWhere('h.accountId = :accountId AND h.firstSeenAt >= :from AND h.firstSeenAt < :to', { accountId: f.accountId, from: f.from, to: f.to });
  // Devices, directions, severities, lists, categories: dns_hit names these properties as flow_hit does.
  applyHitDimensions(qb, { ...f, triageStatuses: undefined, internal: undefined });
  if (f.internalIp !== undefined) {
    // An IPv4-mapped client (stored as captured, `::ffff:a.b.c.d`) is its IPv4 host, as in flow hits' keys; the
    // filter's address is canonical (unmapped), so an IPv4 one matches both texts.
    const forms = f.internalIp.includes(':') ? [f.internalIp] : [f.internalIp, `::ffff:${f.internalIp}`];
    qb.andWhere('h.internalIp IN (:...fInternalIps)', { fInternalIps: forms });
  }
  // Nobody triages a DNS hit: each is OPEN.
  if (f.triageStatuses !== undefined && !f.triageStatuses.includes(TriageStatus.OPEN)) qb.andWhere('1 = 0');
}

function dnsSource(dataSource: DataSource, f: ResolvedHitFilter, _rollup: RollupSource | null, columns: readonly string[], options: SourceOptions = {}): Sql {
  const qb = dataSource.getRepository(DnsHit).createQueryBuilder('h');
  const list = columns.map((c) => {
    const expr = COLUMN[c];
    if (!expr) throw new Error(`DNS hits have no column ${c}`);
    return `${expr} AS ${c}`;
  });
  list.push('1 AS hits', 'h.hit_count AS packets', '0 AS bytes', 'h.first_seen_at AS first_at', 'h.last_seen_at AS last_at');
  if (options.at) list.push('h.first_seen_at AS at_ms');
  qb.select(list.join(', ')).where('1 = 1');
  applyDnsConditions(qb, f);
  options.where?.(qb);
  const [sql, params] = qb.getQueryAndParameters();
  return { sql, params };
}

export const DNS_HITS: HitTable = { rollups: [], prunes: false, source: dnsSource };
