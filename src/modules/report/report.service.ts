import { DataSource, SelectQueryBuilder } from 'typeorm';
import { dialectOf } from '../../db/bulk';
import { Direction } from '../flow-hit/flow-hit.enums';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { IocCategory } from '../ioc/ioc.enums';
import { applyHitFilter, ResolvedHitFilter } from './hit-filter';
import { TimeBucket } from './report.enums';
import {
  CategoryRow,
  DeviceRow,
  DirectionRow,
  HitTotals,
  InternalHostRow,
  IocListRow,
  IocRow,
  SeverityRow,
  ThreatRow,
  TimelineBucketRow,
} from './report.types';
import { bucketIndex, localBuckets, SLOT_MS } from './timeline';

type Raw = Record<string, string | number | null>;

// mysql2 returns SUM/COUNT as strings; SQLite as numbers.
const n = (v: string | number | null | undefined) => (v == null ? 0 : Number(v));
const date = (v: string | number | null | undefined) => new Date(n(v));

// An internal address is only meaningful with its device (10.0.0.5 at two sites are two hosts).
const HOST = "h.deviceId || '/' || h.internalIp";
const HOST_MYSQL = "CONCAT(h.deviceId, '/', h.internalIp)";

/**
 * Read models over flow hits, each grouping one SQL query run only when its field is selected. Every query
 * starts from the (account, first_seen_at) window of the filter, so the index on it bounds the scan; the
 * groupings then aggregate what is in the window.
 */
export class ReportService {
  constructor(private readonly dataSource: DataSource) {}

  private base(f: ResolvedHitFilter): SelectQueryBuilder<FlowHit> {
    return applyHitFilter(this.dataSource.getRepository(FlowHit).createQueryBuilder('h'), f);
  }

  private host(): string {
    return dialectOf(this.dataSource.manager) === 'mysql' ? HOST_MYSQL : HOST;
  }

  private measures(qb: SelectQueryBuilder<FlowHit>): SelectQueryBuilder<FlowHit> {
    return qb
      .addSelect('COUNT(*)', 'hits')
      .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
      .addSelect(`COUNT(DISTINCT ${this.host()})`, 'hosts')
      .addSelect('MIN(h.firstSeenAt)', 'first')
      .addSelect('MAX(h.lastSeenAt)', 'last');
  }

  private group = (r: Raw) => ({ hits: n(r.hits), packets: n(r.packets), internalHosts: n(r.hosts), firstSeenAt: date(r.first), lastSeenAt: date(r.last) });

  async totals(f: ResolvedHitFilter): Promise<HitTotals> {
    const r: Raw = (await this.base(f)
      .select('COUNT(*)', 'hits')
      .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
      .addSelect('SUM(h.bytesForward + h.bytesReverse)', 'bytes')
      .addSelect(`COUNT(DISTINCT ${this.host()})`, 'hosts')
      .addSelect('COUNT(DISTINCT h.externalIp)', 'externals')
      .addSelect('COUNT(DISTINCT h.deviceId)', 'devices')
      .getRawOne()) ?? {};
    return { hits: n(r.hits), packets: n(r.packets), bytes: n(r.bytes), internalHosts: n(r.hosts), externalAddresses: n(r.externals), devices: n(r.devices) };
  }

  async byDirection(f: ResolvedHitFilter): Promise<DirectionRow[]> {
    const rows: Raw[] = await this.base(f)
      .select('h.direction', 'direction')
      .addSelect('COUNT(*)', 'hits')
      .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
      .addSelect('SUM(h.bytesForward + h.bytesReverse)', 'bytes')
      .groupBy('h.direction')
      .getRawMany();
    const by = new Map(rows.map((r) => [r.direction, r]));
    // Both directions always present, so charts need no special case.
    return [Direction.INBOUND, Direction.OUTBOUND].map((direction) => {
      const r = by.get(direction);
      return { direction, hits: n(r?.hits), packets: n(r?.packets), bytes: n(r?.bytes) };
    });
  }

  async byIoc(f: ResolvedHitFilter, first: number): Promise<IocRow[]> {
    const rows: Raw[] = await this.measures(
      this.base(f)
        .select('h.iocId', 'ioc')
        .addSelect('h.iocListId', 'list')
        .addSelect('h.matchedCidr', 'cidr')
        .addSelect('h.severity', 'severity')
        .addSelect('h.category', 'category'),
    )
      .groupBy('h.iocId')
      .addGroupBy('h.iocListId')
      .addGroupBy('h.matchedCidr')
      .addGroupBy('h.severity')
      .addGroupBy('h.category')
      .orderBy('hits', 'DESC')
      .addOrderBy('h.iocId', 'ASC')
      .limit(first)
      .getRawMany();
    return rows.map((r) => ({ ...this.group(r), iocId: n(r.ioc), iocListId: n(r.list), matchedCidr: String(r.cidr), severity: n(r.severity), category: r.category as IocCategory }));
  }

  async byIocList(f: ResolvedHitFilter, first: number): Promise<IocListRow[]> {
    const rows: Raw[] = await this.measures(this.base(f).select('h.iocListId', 'list').addSelect('COUNT(DISTINCT h.iocId)', 'iocs'))
      .groupBy('h.iocListId')
      .orderBy('hits', 'DESC')
      .addOrderBy('h.iocListId', 'ASC')
      .limit(first)
      .getRawMany();
    return rows.map((r) => ({ ...this.group(r), iocListId: n(r.list), iocs: n(r.iocs) }));
  }

  async byCategory(f: ResolvedHitFilter): Promise<CategoryRow[]> {
    const rows: Raw[] = await this.measures(this.base(f).select('h.category', 'category')).groupBy('h.category').orderBy('hits', 'DESC').addOrderBy('h.category', 'ASC').getRawMany();
    return rows.map((r) => ({ ...this.group(r), category: r.category as IocCategory }));
  }

  async bySeverity(f: ResolvedHitFilter): Promise<SeverityRow[]> {
    const rows: Raw[] = await this.measures(this.base(f).select('h.severity', 'severity')).groupBy('h.severity').orderBy('h.severity', 'DESC').getRawMany();
    return rows.map((r) => ({ ...this.group(r), severity: n(r.severity) }));
  }

  async byDevice(f: ResolvedHitFilter, first: number): Promise<DeviceRow[]> {
    const rows: Raw[] = await this.measures(this.base(f).select('h.deviceId', 'device').addSelect('COUNT(DISTINCT h.iocId)', 'iocs'))
      .groupBy('h.deviceId')
      .orderBy('hits', 'DESC')
      .addOrderBy('h.deviceId', 'ASC')
      .limit(first)
      .getRawMany();
    return rows.map((r) => ({ ...this.group(r), deviceId: n(r.device), iocs: n(r.iocs) }));
  }

  async byInternalHost(f: ResolvedHitFilter, first: number): Promise<InternalHostRow[]> {
    const rows: Raw[] = await this.base(f)
      .select('h.deviceId', 'device')
      .addSelect('h.internalIp', 'ip')
      .addSelect('COUNT(*)', 'hits')
      .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
      .addSelect('COUNT(DISTINCT h.iocId)', 'iocs')
      .addSelect('MAX(h.severity)', 'worst')
      .addSelect('MIN(h.firstSeenAt)', 'first')
      .addSelect('MAX(h.lastSeenAt)', 'last')
      .groupBy('h.deviceId')
      .addGroupBy('h.internalIp')
      .orderBy('hits', 'DESC')
      .addOrderBy('h.deviceId', 'ASC')
      .addOrderBy('h.internalIp', 'ASC')
      .limit(first)
      .getRawMany();
    return rows.map((r) => ({
      deviceId: n(r.device),
      internalIp: String(r.ip),
      hits: n(r.hits),
      packets: n(r.packets),
      iocs: n(r.iocs),
      worstSeverity: n(r.worst),
      firstSeenAt: date(r.first),
      lastSeenAt: date(r.last),
    }));
  }

  async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    const rows: Raw[] = await this.base(f)
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
      .orderBy('h.severity', 'DESC')
      .addOrderBy('hits', 'DESC')
      .addOrderBy('h.deviceId', 'ASC')
      .addOrderBy('h.internalIp', 'ASC')
      .addOrderBy('h.iocId', 'ASC')
      .limit(first)
      .getRawMany();
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
      firstSeenAt: date(r.first),
      lastSeenAt: date(r.last),
    }));
  }

  /**
   * Hits per local hour or day in `zone`, split by direction, every bucket present. SQL counts per
   * 15-minute UTC slot (every zone offset is a multiple of 15 minutes, so a slot never straddles a local
   * bucket), and the slots are summed into local buckets here.
   */
  async timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    const slot = dialectOf(this.dataSource.manager) === 'mysql' ? `(h.firstSeenAt DIV ${SLOT_MS})` : `(h.firstSeenAt / ${SLOT_MS})`;
    const rows: Raw[] = await this.base(f).select(slot, 'slot').addSelect('h.direction', 'direction').addSelect('COUNT(*)', 'hits').groupBy('slot').addGroupBy('h.direction').getRawMany();
    const starts = localBuckets(f.from, f.to, bucket, zone);
    const out = starts.map((start, i) => ({ start: new Date(start), end: new Date(i + 1 < starts.length ? starts[i + 1] : nextStart(start, bucket, zone)), hits: 0, inbound: 0, outbound: 0 }));
    for (const r of rows) {
      const i = bucketIndex(starts, n(r.slot) * SLOT_MS);
      if (i < 0) continue;
      const count = n(r.hits);
      out[i].hits += count;
      if (r.direction === Direction.INBOUND) out[i].inbound += count;
      else out[i].outbound += count;
    }
    return out;
  }

  /** Hit count and first/last capture time for one address (iocLookup). */
  async addressStats(accountId: number, address: string): Promise<{ hits: number; firstSeenAt: Date | null; lastSeenAt: Date | null }> {
    const r: Raw =
      (await this.dataSource
        .getRepository(FlowHit)
        .createQueryBuilder('h')
        .select('COUNT(*)', 'hits')
        .addSelect('MIN(h.firstSeenAt)', 'first')
        .addSelect('MAX(h.lastSeenAt)', 'last')
        .where('h.accountId = :accountId AND h.matchedIp = :address', { accountId, address })
        .getRawOne()) ?? {};
    const hits = n(r.hits);
    return { hits, firstSeenAt: hits ? date(r.first) : null, lastSeenAt: hits ? date(r.last) : null };
  }
}

function nextStart(start: number, bucket: TimeBucket, zone: string): number {
  const [, second] = localBuckets(start, start + 26 * 3600_000, bucket, zone);
  return second;
}

function splitNumbers(v: string | number | null): number[] {
  if (v == null) return [];
  return String(v)
    .split(',')
    .filter((x) => x !== '')
    .map(Number)
    .sort((a, b) => a - b);
}
