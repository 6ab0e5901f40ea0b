import { DataSource } from 'typeorm';
import { Device } from '../../device/device.entity';
import { DnsHit } from '../../dns-hit/dns-hit.entity';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocList } from '../../ioc/ioc-list.entity';
import { toGlobalId } from '../../../common/ids/global-id';
import { applyDnsConditions } from '../groupings/dns-source';
import { csvCell, ExportFormat } from './export-format';
import type { HitExport } from './hit-export';

/** The DNS hit export's header (CSV) and NDJSON keys, in order: scripts depend on them. */
export const DNS_EXPORT_COLUMNS = [
  'id',
  'first_seen_at',
  'last_seen_at',
  'device_id',
  'device',
  'upload_id',
  'direction',
  'internal_ip',
  'qname',
  'qtype',
  'queries',
  'answers',
  'matched_name',
  'ioc_domain_id',
  'ioc_list_id',
  'ioc_list',
  'severity',
  'category',
] as const;

type Row = Record<(typeof DNS_EXPORT_COLUMNS)[number], string | number | string[] | null>;

/**
 * Every DNS hit of the account matching the filter (kind DNS), in (first_seen_at, id) order, as CSV or NDJSON with
 * the flow hit export's conventions (ISO instants, global IDs, names beside IDs, csvCell quoting). `answers` is
 * an array in NDJSON and `;`-joined in CSV. Read in keyset batches of `batchSize`: DNS hits are one per upload,
 * querying host, name and type, far fewer than flow hits, so the plain batches of both databases do.
 */
export async function exportDnsHits(
  dataSource: DataSource,
  accountId: number,
  filter: ResolvedHitFilter,
  format: ExportFormat,
  batchSize: number,
): Promise<HitExport> {
  const [devices, lists] = await Promise.all([
    dataSource.getRepository(Device).find({ where: { accountId }, select: { id: true, nickname: true } }),
    dataSource.getRepository(IocList).find({ where: { accountId }, select: { id: true, name: true } }),
  ]);
  const deviceName = new Map(devices.map((d) => [d.id, d.nickname]));
  const listName = new Map(lists.map((l) => [l.id, l.name]));
  const toRow = (h: DnsHit): Row => ({
    id: toGlobalId('DnsHit', h.id),
    first_seen_at: h.firstSeenAt.toISOString(),
    last_seen_at: h.lastSeenAt.toISOString(),
    device_id: toGlobalId('Device', h.deviceId),
    device: deviceName.get(h.deviceId) ?? null,
    upload_id: toGlobalId('LogUpload', h.uploadId),
    direction: h.direction,
    internal_ip: h.internalIp,
    qname: h.qname,
    qtype: h.qtype,
    queries: h.hitCount,
    answers: JSON.parse(h.answers) as string[],
    matched_name: h.matchedName,
    ioc_domain_id: toGlobalId('IocDomain', h.iocDomainId),
    ioc_list_id: toGlobalId('IocList', h.iocListId),
    ioc_list: listName.get(h.iocListId) ?? null,
    severity: h.severity,
    category: h.category,
  });
  const line =
    format === 'csv'
      ? (r: Row) => `${DNS_EXPORT_COLUMNS.map((c) => csvCell(Array.isArray(r[c]) ? (r[c] as string[]).join(';') : r[c])).join(',')}\n`
      : (r: Row) => `${JSON.stringify(r)}\n`;
  async function* batches(): AsyncGenerator<{ lines: Buffer; rows: number }> {
    let after: { at: number; id: number } | null = null;
    for (;;) {
      const qb = dataSource.getRepository(DnsHit).createQueryBuilder('h').where('1 = 1');
      // After a batch the window starts at the cursor's instant (one lower bound for the index), ties settled by id.
      applyDnsConditions(qb, after ? { ...filter, from: Math.max(filter.from, after.at) } : filter);
      if (after) qb.andWhere('(h.firstSeenAt > :afterAt OR h.id > :afterId)', { afterAt: after.at, afterId: after.id });
      const hits = await qb.orderBy('h.firstSeenAt', 'ASC').addOrderBy('h.id', 'ASC').take(batchSize).getMany();
      if (hits.length > 0) yield { lines: Buffer.from(hits.map((h) => line(toRow(h))).join(''), 'utf8'), rows: hits.length };
      if (hits.length < batchSize) return;
      const last = hits[hits.length - 1];
      after = { at: last.firstSeenAt.getTime(), id: last.id };
    }
  }
  return { header: format === 'csv' ? `${DNS_EXPORT_COLUMNS.join(',')}\n` : '', batches: batches() };
}
