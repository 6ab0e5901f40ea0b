import { DataSource, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { dialectOf } from '../../db/bulk';
import { Direction } from '../flow-hit/flow-hit.enums';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { IocCategory } from '../ioc/ioc.enums';
import { applyHitDimensions, applyHitFilter, ResolvedHitFilter, rollupCanFilter } from '../flow-hit/hit-filter';
import { DAY_MS, HOUR_MS } from './hit-rollup';
import { HitDayHost, HitHour } from './hit-rollup.entity';
import { AccountHits, HitMemory } from './hit-memory';
import * as held from './hit-memory.report';
import { TimeBucket } from './report.enums';
import { nextTurn } from '../../common/async/next-turn';
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


const snake = (property: string) => property.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** An internal host with a list it hit, and the severity and category of those hits (see hostDims). */
export interface HostDim {
  deviceId: number;
  internalIp: string;
  iocListId: number;
  severity: number;
  category: string;
}

/** A request's one read of hostDims, shared by the groupings that count hosts. */
export type SharedHosts = () => Promise<HostDim[]>;

/** An internal address is only meaningful with its device (10.0.0.5 at two sites are two hosts). */
const hostKey = (d: HostDim) => `${d.deviceId}/${d.internalIp}`;

/** Where a union's rows come from: the hourly roll-up, the daily per-host roll-up, or only the raw hits. */
type Grain = 'hour' | 'dayHost';

interface Sql {
  sql: string;
  params: unknown[];
}

/**
 * [from, to) split into the whole buckets of `grain` it contains (read from a roll-up) and the partial ones at
 * its edges (read from the raw hits). Buckets are UTC-aligned multiples of the grain.
 */
export function splitWindow(from: number, to: number, grainMs: number): { whole: [number, number] | null; edges: Array<[number, number]> } {
  const a = Math.ceil(from / grainMs) * grainMs;
  const b = Math.floor(to / grainMs) * grainMs;
  if (a >= b) return { whole: null, edges: [[from, to]] };
  const edges: Array<[number, number]> = [];
  if (from < a) edges.push([from, a]);
  if (b < to) edges.push([b, to]);
  return { whole: [a, b], edges };
}

/**
 * Read models over flow hits, each grouping run only when its field is selected.
 *
 * Most groupings read a union of a roll-up (hit-rollup.entity.ts: whole UTC hours or days of the window,
 * already summed per device, direction, list, severity, category and protocol, or per internal host) and the
 * raw hits of the partial buckets at the window's edges, so a 30-day report sums thousands of rows, not
 * hundreds of thousands. A filter on addresses or ports, which the roll-ups do not keep, sends the same query
 * to the raw hits over the whole window: the answers are identical either way (a test compares them).
 * Groupings by IOC entry, the triage view and distinct external addresses or entries read the raw hits: at
 * their grain a roll-up row would hold barely more than one hit.
 */
export class ReportService {
  /**
   * `rollups: false` reads only the raw hits (the reference the other paths are tested against). With `memory`,
   * every grouping but iocLookup's is computed from the account's hits in memory when they are held
   * (hit-memory.ts), and from SQL otherwise.
   */
  constructor(
    private readonly dataSource: DataSource,
    private readonly options: { rollups?: boolean; memory?: HitMemory } = {},
  ) {}

  /** The groupings of one request (one filter object) still to compute from memory: their snapshot and turn chain. */
  private readonly turns = new WeakMap<ResolvedHitFilter, { data: AccountHits; tail: Promise<void>; pending: number }>();

  /**
   * The account's hits in memory, or null: use SQL. Each caller computes its grouping synchronously right after.
   * The groupings of one request compute one per turn of the event loop, not all in one: between two of them
   * other requests' I/O (uploads, probes, other reports) gets its turn, so the loop stalls for one grouping at a
   * time instead of a whole report. They all read one snapshot taken by the first (blocks are never changed in
   * place), so one report never mixes data from before and after a change.
   */
  private async held(f: ResolvedHitFilter): Promise<AccountHits | null> {
    const memory = this.options.rollups === false ? undefined : this.options.memory;
    if (!memory) return null;
    let turn = this.turns.get(f);
    if (!turn) {
      const data = await memory.view(f.accountId);
      if (!data) return null;
      // Another grouping of this request may have started the chain while this one waited.
      turn = this.turns.get(f);
      if (!turn) this.turns.set(f, (turn = { data: data.snapshot(), tail: Promise.resolve(), pending: 0 }));
    }
    const mine = (turn.tail = turn.tail.then(nextTurn));
    turn.pending++;
    await mine;
    // After the caller's synchronous computation: the request's last grouping ends the chain.
    const ending = turn;
    setImmediate(() => {
      if (--ending.pending === 0 && this.turns.get(f) === ending) this.turns.delete(f);
    });
    return turn.data;
  }

  private base(f: ResolvedHitFilter): SelectQueryBuilder<FlowHit> {
    return applyHitFilter(this.dataSource.getRepository(FlowHit).createQueryBuilder('h'), f);
  }

  private mysql(): boolean {
    return dialectOf(this.dataSource.manager) === 'mysql';
  }


  /**
   * The hits matching `f` as one row source `u` with columns `columns` (entity property names, alike in flow_hit
   * and the roll-ups) plus hits, packets, bytes (not for dayHost), first_at, last_at and, with `at`, the bucket
   * or capture instant. Rows come from the roll-up of `grain` for whole buckets when it can apply the filter.
   */
  private source(f: ResolvedHitFilter, grain: Grain | null, columns: string[], options: { at?: boolean } = {}): Sql {
    const canRoll = grain !== null && this.options.rollups !== false && rollupCanFilter(f, grain === 'hour');
    const split = canRoll ? splitWindow(f.from, f.to, grain === 'hour' ? HOUR_MS : DAY_MS) : { whole: null, edges: [[f.from, f.to]] as Array<[number, number]> };
    const parts: Sql[] = [];
    const finish = <T extends ObjectLiteral>(qb: SelectQueryBuilder<T>) => {
      const [sql, params] = applyHitDimensions(qb, f).getQueryAndParameters();
      parts.push({ sql, params });
    };
    if (split.whole && grain) {
      const qb = this.dataSource
        .getRepository<ObjectLiteral>(grain === 'hour' ? HitHour : HitDayHost)
        .createQueryBuilder('h')
        .where('h.accountId = :accountId AND h.bucketAt >= :wFrom AND h.bucketAt < :wTo', { accountId: f.accountId, wFrom: split.whole[0], wTo: split.whole[1] });
      // One select expression in a fixed order: TypeORM moves selected entity properties ahead of other
      // expressions, and a UNION matches columns by position.
      const list = [...columns.map((c) => `h.${snake(c)} AS ${c}`), 'h.hits AS hits', 'h.packets AS packets'];
      if (grain === 'hour') list.push('h.bytes AS bytes');
      list.push('h.first_seen_at AS first_at', 'h.last_seen_at AS last_at');
      if (options.at) list.push('h.bucket_at AS at_ms');
      qb.select(list.join(', '));
      finish(qb);
    }
    if (split.edges.length) {
      const qb = this.dataSource.getRepository(FlowHit).createQueryBuilder('h');
      const list = [...columns.map((c) => `h.${snake(c)} AS ${c}`), '1 AS hits', 'h.packets_forward + h.packets_reverse AS packets'];
      if (grain !== 'dayHost') list.push('h.bytes_forward + h.bytes_reverse AS bytes');
      list.push('h.first_seen_at AS first_at', 'h.last_seen_at AS last_at');
      if (options.at) list.push('h.first_seen_at AS at_ms');
      qb.select(list.join(', '));
      qb.where('h.accountId = :accountId', { accountId: f.accountId });
      const ranges = split.edges.map((_, i) => `(h.firstSeenAt >= :e${i}a AND h.firstSeenAt < :e${i}b)`).join(' OR ');
      qb.andWhere(`(${ranges})`, Object.fromEntries(split.edges.flatMap(([a, b], i) => [[`e${i}a`, a], [`e${i}b`, b]])));
      finish(qb);
    }
    return { sql: parts.map((p) => p.sql).join(' UNION ALL '), params: parts.flatMap((p) => p.params) };
  }

  private async over(src: Sql, select: (from: string) => string, extraParams: unknown[] = []): Promise<Raw[]> {
    return this.dataSource.query(select(`(${src.sql}) u`), [...src.params, ...extraParams]);
  }

  /**
   * One internal host of a flow hit as an SQL value, for COUNT(DISTINCT): an internal address is only
   * meaningful with its device (10.0.0.5 at two sites are two hosts).
   */
  private hostOf(): string {
    return this.mysql() ? `CONCAT(h.deviceId, '/', h.internalIp)` : `h.deviceId || '/' || h.internalIp`;
  }

  /**
   * The distinct (internal host, list, severity, category) combinations of the window's hits, from the daily
   * per-host roll-up. Every distinct-host count (totals, per list, category, severity and device) is taken from
   * these rows in code: a few thousand rows (hosts x the lists they hit) where each count used to be its own
   * DISTINCT over the roll-up's ~86k rows for the bench's 30 days, five of them in a full hitReport. Pass
   * `hosts` to share one read between the groupings of a request (loaders.ts).
   */
  async hostDims(f: ResolvedHitFilter): Promise<HostDim[]> {
    const rows = await this.over(
      this.source(f, 'dayHost', ['deviceId', 'internalIp', 'iocListId', 'severity', 'category']),
      (u) => `SELECT DISTINCT u.deviceId AS device, u.internalIp AS ip, u.iocListId AS list, u.severity AS severity, u.category AS category FROM ${u}`,
    );
    return rows.map((r) => ({ deviceId: n(r.device), internalIp: String(r.ip), iocListId: n(r.list), severity: n(r.severity), category: String(r.category) }));
  }

  /** Distinct internal hosts per value of `key`. */
  private async hostsBy(f: ResolvedHitFilter, key: 'deviceId' | 'iocListId' | 'severity' | 'category', shared?: SharedHosts): Promise<Map<string, number>> {
    const sets = new Map<string, Set<string>>();
    for (const d of await (shared ?? (() => this.hostDims(f)))()) {
      const k = String(d[key]);
      let set = sets.get(k);
      if (!set) sets.set(k, (set = new Set()));
      set.add(hostKey(d));
    }
    return new Map([...sets].map(([k, set]) => [k, set.size]));
  }

  /**
   * Names the severities explicitly (all six when the filter does not narrow them), so a distinct-entry count
   * reads the (account, severity, time, device, host, entry, ...) index alone, one severity range at a time,
   * instead of every hit's row: 3-5x on the 1M-hit bench.
   */
  private byLevels(qb: SelectQueryBuilder<FlowHit>, f: ResolvedHitFilter): SelectQueryBuilder<FlowHit> {
    return f.severities === undefined ? qb.andWhere('h.severity IN (:...allLevels)', { allLevels: severityLevels(f) }) : qb;
  }

  /**
   * Distinct IOC entries per value of `key` (raw hits), for some values. Counted for every value and picked
   * here: a condition on the device would make the database walk the (account, device, time) index and read
   * every hit's row, where the severity index holds device, entry and list and answers alone (on the bench's
   * 291k hits, 185 ms for byDevice and 400 ms for byIocList before; lists and devices are few).
   */
  private async iocsBy(f: ResolvedHitFilter, key: 'iocListId' | 'deviceId', only: number[]): Promise<Map<string, number>> {
    if (only.length === 0) return new Map();
    const [sql, params] = this.byLevels(this.base(f), f).select(`h.${key}`, 'k').addSelect('h.iocId', 'ioc').distinct(true).getQueryAndParameters();
    const rows: Raw[] = await this.dataSource.query(`SELECT d.k AS k, COUNT(*) AS iocs FROM (${sql}) d GROUP BY d.k`, params);
    const wanted = new Set(only.map(String));
    return new Map(rows.filter((r) => wanted.has(String(r.k))).map((r) => [String(r.k), n(r.iocs)]));
  }

  /** hits, packets and first/last per value of `key`, from the hourly roll-up; with `first`, the top ones by hits. */
  private async measuredBy(f: ResolvedHitFilter, key: string, order: 'hits' | 'key', first?: number): Promise<Raw[]> {
    const src = this.source(f, 'hour', [key]);
    const orderBy = order === 'hits' ? `hits DESC, u.${key} ASC` : `u.${key} DESC`;
    return this.over(
      src,
      (u) => `SELECT u.${key} AS k, SUM(u.hits) AS hits, SUM(u.packets) AS packets, MIN(u.first_at) AS first, MAX(u.last_at) AS last FROM ${u} GROUP BY u.${key} ORDER BY ${orderBy}${first ? ` LIMIT ${first}` : ''}`,
    );
  }

  /** The measures of a raw grouping (byIoc). */
  private measures(qb: SelectQueryBuilder<FlowHit>): SelectQueryBuilder<FlowHit> {
    return qb
      .addSelect('COUNT(*)', 'hits')
      .addSelect('SUM(h.packetsForward + h.packetsReverse)', 'packets')
      .addSelect(`COUNT(DISTINCT ${this.hostOf()})`, 'hosts')
      .addSelect('MIN(h.firstSeenAt)', 'first')
      .addSelect('MAX(h.lastSeenAt)', 'last');
  }

  private group = (r: Raw) => ({ hits: n(r.hits), packets: n(r.packets), internalHosts: n(r.hosts), firstSeenAt: date(r.first), lastSeenAt: date(r.last) });

  private measured = (r: Raw, hosts: Map<string, number>) => ({
    hits: n(r.hits),
    packets: n(r.packets),
    internalHosts: hosts.get(String(r.k)) ?? 0,
    firstSeenAt: date(r.first),
    lastSeenAt: date(r.last),
  });

  /** Totals, plus the hits of each direction (the dashboard shows those beside the totals: one query for both). */
  async totals(f: ResolvedHitFilter, options: { externalAddresses?: boolean; hosts?: SharedHosts } = {}): Promise<HitTotals & { inbound: number; outbound: number }> {
    const m = await this.held(f);
    if (m) return held.totals(m, f, options.externalAddresses !== false);
    const [sums] = await this.over(
      this.source(f, 'hour', ['deviceId', 'direction']),
      (u) =>
        `SELECT SUM(u.hits) AS hits, SUM(u.packets) AS packets, SUM(u.bytes) AS bytes, COUNT(DISTINCT u.deviceId) AS devices,
                SUM(CASE WHEN u.direction = '${Direction.INBOUND}' THEN u.hits ELSE 0 END) AS inbound,
                SUM(CASE WHEN u.direction = '${Direction.OUTBOUND}' THEN u.hits ELSE 0 END) AS outbound FROM ${u}`,
    );
    // A report's groupings share hostDims; alone (the dashboard), a DISTINCT of the host is cheaper (26 vs 63 ms
    // on the bench's 30 days: fewer distinct rows to keep).
    const hosts = options.hosts
      ? new Set((await options.hosts()).map(hostKey)).size
      : n((await this.over(this.source(f, 'dayHost', ['deviceId', 'internalIp']), (u) => `SELECT COUNT(*) AS hosts FROM (SELECT DISTINCT u.deviceId, u.internalIp FROM ${u}) d`))[0]?.hosts);
    let externals = 0;
    if (options.externalAddresses !== false) {
      const r: Raw = (await this.base(f).select('COUNT(DISTINCT h.externalIp)', 'externals').getRawOne()) ?? {};
      externals = n(r.externals);
    }
    return {
      hits: n(sums?.hits),
      packets: n(sums?.packets),
      bytes: n(sums?.bytes),
      internalHosts: hosts,
      externalAddresses: externals,
      devices: n(sums?.devices),
      inbound: n(sums?.inbound),
      outbound: n(sums?.outbound),
    };
  }

  async byDirection(f: ResolvedHitFilter): Promise<DirectionRow[]> {
    const m = await this.held(f);
    if (m) return held.byDirection(m, f);
    const rows = await this.over(
      this.source(f, 'hour', ['direction']),
      (u) => `SELECT u.direction AS direction, SUM(u.hits) AS hits, SUM(u.packets) AS packets, SUM(u.bytes) AS bytes FROM ${u} GROUP BY u.direction`,
    );
    const by = new Map(rows.map((r) => [r.direction, r]));
    // Both directions always present, so charts need no special case.
    return [Direction.INBOUND, Direction.OUTBOUND].map((direction) => {
      const r = by.get(direction);
      return { direction, hits: n(r?.hits), packets: n(r?.packets), bytes: n(r?.bytes) };
    });
  }

  /**
   * IOC entries by hits. Grouping every hit of the window by (entry, list, CIDR, severity, category) with its
   * measures reads each hit's row and sorts them all: ~0.8 s for the 291k hits of the bench's 30 days. Instead,
   * when the filter is one the (account, severity, time, device, host, entry, category) index can apply, hits
   * are first counted per entry from that index alone (an integer sort), and the measures are read only for the
   * heaviest entries, in growing batches, until the next entry has fewer hits than the `first`-th group found:
   * no group of it (an entry's groups split its hits) or of any lighter entry can make the list. Nearly always
   * one batch. `rollups: false` (the reference the tests compare with) groups every hit at once.
   */
  async byIoc(f: ResolvedHitFilter, first: number): Promise<IocRow[]> {
    const m = await this.held(f);
    if (m) return held.byIoc(m, f, first);
    const rows = this.options.rollups === false || !severityIndexApplies(f) ? await this.iocGroups(f, { first }) : await this.topIocGroups(f, first);
    return rows.map((r) => ({ ...this.group(r), iocId: n(r.ioc), iocListId: n(r.list), matchedCidr: String(r.cidr), severity: n(r.severity), category: r.category as IocCategory }));
  }

  private async topIocGroups(f: ResolvedHitFilter, first: number): Promise<Raw[]> {
    const entries: Raw[] = await this.byLevels(this.base(f), f).select('h.iocId', 'ioc').addSelect('COUNT(*)', 'hits').groupBy('h.iocId').orderBy('hits', 'DESC').addOrderBy('h.iocId', 'ASC').getRawMany();
    let best: Raw[] = [];
    let next = 0;
    for (let batch = first; next < entries.length; batch *= 2) {
      if (next + batch > MAX_PRUNED_ENTRIES) return this.iocGroups(f, { first });
      const ids = entries.slice(next, next + batch).map((e) => n(e.ioc));
      next += ids.length;
      best = [...best, ...(await this.iocGroups(f, { entries: ids }))].sort(byIocRank).slice(0, first);
      if (best.length === first && next < entries.length && n(entries[next].hits) < n(best[first - 1].hits)) break;
    }
    return best;
  }

  /** byIoc's groups with their measures: of some entries, or the top `first` of all in byIocRank's order. */
  private iocGroups(f: ResolvedHitFilter, only: { entries?: number[]; first?: number }): Promise<Raw[]> {
    let qb = this.measures(
      this.base(f)
        .select('h.iocId', 'ioc')
        .addSelect('h.iocListId', 'list')
        .addSelect('h.matchedCidr', 'cidr')
        .addSelect('h.severity', 'severity')
        .addSelect('h.category', 'category'),
    );
    // Naming the severities lets the entry condition be checked on the severity index before any row is read.
    if (only.entries) qb = this.byLevels(qb, f).andWhere('h.iocId IN (:...groupEntries)', { groupEntries: only.entries });
    qb.groupBy('h.iocId').addGroupBy('h.iocListId').addGroupBy('h.matchedCidr').addGroupBy('h.severity').addGroupBy('h.category');
    if (only.first !== undefined) {
      const bin = this.binary();
      qb.orderBy('hits', 'DESC')
        .addOrderBy('h.iocId', 'ASC')
        .addOrderBy('h.iocListId', 'ASC')
        .addOrderBy(`h.matchedCidr${bin}`, 'ASC')
        .addOrderBy('h.severity', 'DESC')
        .addOrderBy(`h.category${bin}`, 'ASC')
        .limit(only.first);
    }
    return qb.getRawMany();
  }

  /**
   * A collation clause ordering text by bytes on MySQL (the column collation would put ':' before digits), as
   * SQLite and JavaScript do: a ranking finished in code picks the same rows as one finished in SQL.
   */
  private binary(): string {
    return this.mysql() ? ' COLLATE utf8mb4_bin' : '';
  }

  async byIocList(f: ResolvedHitFilter, first: number, options: { iocs?: boolean; hosts?: SharedHosts } = {}): Promise<IocListRow[]> {
    const m = await this.held(f);
    if (m) return held.byIocList(m, f, first, options.iocs !== false);
    const rows = await this.measuredBy(f, 'iocListId', 'hits', first);
    const keys = rows.map((r) => n(r.k));
    const hosts = await this.hostsBy(f, 'iocListId', options.hosts);
    const iocs = options.iocs === false ? new Map<string, number>() : await this.iocsBy(f, 'iocListId', keys);
    return rows.map((r) => ({ ...this.measured(r, hosts), iocListId: n(r.k), iocs: iocs.get(String(r.k)) ?? 0 }));
  }

  async byCategory(f: ResolvedHitFilter, options: { hosts?: SharedHosts } = {}): Promise<CategoryRow[]> {
    const m = await this.held(f);
    if (m) return held.byCategory(m, f);
    const rows = await this.measuredBy(f, 'category', 'hits');
    const hosts = await this.hostsBy(f, 'category', options.hosts);
    // Ties in hits: category ascending, as SQL would order the text.
    rows.sort((a, b) => n(b.hits) - n(a.hits) || (String(a.k) < String(b.k) ? -1 : 1));
    return rows.map((r) => ({ ...this.measured(r, hosts), category: r.k as IocCategory }));
  }

  async bySeverity(f: ResolvedHitFilter, options: { hosts?: SharedHosts } = {}): Promise<SeverityRow[]> {
    const m = await this.held(f);
    if (m) return held.bySeverity(m, f);
    const rows = await this.measuredBy(f, 'severity', 'key');
    const hosts = await this.hostsBy(f, 'severity', options.hosts);
    return rows.map((r) => ({ ...this.measured(r, hosts), severity: n(r.k) }));
  }

  async byDevice(f: ResolvedHitFilter, first: number, options: { iocs?: boolean; hosts?: SharedHosts } = {}): Promise<DeviceRow[]> {
    const m = await this.held(f);
    if (m) return held.byDevice(m, f, first, options.iocs !== false);
    const rows = await this.measuredBy(f, 'deviceId', 'hits', first);
    const keys = rows.map((r) => n(r.k));
    const hosts = await this.hostsBy(f, 'deviceId', options.hosts);
    const iocs = options.iocs === false ? new Map<string, number>() : await this.iocsBy(f, 'deviceId', keys);
    return rows.map((r) => ({ ...this.measured(r, hosts), deviceId: n(r.k), iocs: iocs.get(String(r.k)) ?? 0 }));
  }

  async byInternalHost(f: ResolvedHitFilter, first: number, options: { iocs?: boolean } = {}): Promise<InternalHostRow[]> {
    const m = await this.held(f);
    if (m) return held.byInternalHost(m, f, first, options.iocs !== false);
    const rows = await this.over(
      this.source(f, 'dayHost', ['deviceId', 'internalIp', 'severity']),
      (u) =>
        `SELECT u.deviceId AS device, u.internalIp AS ip, SUM(u.hits) AS hits, SUM(u.packets) AS packets, MAX(u.severity) AS worst, MIN(u.first_at) AS first, MAX(u.last_at) AS last
           FROM ${u} GROUP BY u.deviceId, u.internalIp ORDER BY hits DESC, u.deviceId ASC, u.internalIp ASC LIMIT ${first}`,
    );
    const iocs = new Map<string, number>();
    if (options.iocs !== false && rows.length) {
      // Distinct entries need the raw hits, but only of the hosts shown.
      const qb = this.byLevels(this.base(f), f).select('h.deviceId', 'device').addSelect('h.internalIp', 'ip').addSelect('COUNT(DISTINCT h.iocId)', 'iocs');
      const params: Record<string, unknown> = {};
      const match = rows.map((r, i) => ((params[`hd${i}`] = n(r.device)), (params[`hi${i}`] = String(r.ip)), `(h.deviceId = :hd${i} AND h.internalIp = :hi${i})`));
      const counted: Raw[] = await qb.andWhere(`(${match.join(' OR ')})`, params).groupBy('h.deviceId').addGroupBy('h.internalIp').getRawMany();
      for (const c of counted) iocs.set(`${n(c.device)}/${c.ip}`, n(c.iocs));
    }
    return rows.map((r) => ({
      deviceId: n(r.device),
      internalIp: String(r.ip),
      hits: n(r.hits),
      packets: n(r.packets),
      iocs: iocs.get(`${n(r.device)}/${r.ip}`) ?? 0,
      worstSeverity: n(r.worst),
      firstSeenAt: date(r.first),
      lastSeenAt: date(r.last),
    }));
  }

  /**
   * The triage view, most severe first. It asks one severity at a time, from the worst down, and stops once it
   * has `first` rows: each query reads only that severity's hits through (account, severity, first_seen_at),
   * and the worst severities are usually the fewest hits.
   */
  async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    const m = await this.held(f);
    if (m) return held.threats(m, f, first, severityLevels(f));
    const out: ThreatRow[] = [];
    for (const severity of severityLevels(f)) {
      if (out.length >= first) break;
      out.push(...(await this.threatsOfSeverity(f, severity, first - out.length)));
    }
    return out;
  }

  private async threatsOfSeverity(f: ResolvedHitFilter, severity: number, first: number): Promise<ThreatRow[]> {
    // 1. Rank (host, entry) pairs by hits from the (account, severity, first_seen_at, device, host, entry, category)
    //    index alone: no table row is read for the hits that do not make the page.
    const top: Raw[] = await this.base(f)
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
      .addOrderBy('h.internalIp', 'ASC')
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
    const rows: Raw[] = await this.base(f)
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
    rows.sort((x, y) => (rank.get(`${n(x.device)}|${x.ip}|${n(x.ioc)}|${x.category}`) ?? 0) - (rank.get(`${n(y.device)}|${y.ip}|${n(y.ioc)}|${y.category}`) ?? 0) || n(y.hits) - n(x.hits));
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
    const m = await this.held(f);
    if (m) return held.timeline(m, f, bucket, zone, (start) => nextStart(start, bucket, zone));
    const starts = localBuckets(f.from, f.to, bucket, zone);
    // Hourly roll-ups serve zones whose buckets start on UTC hours (nearly all); a zone offset by :30 or :45
    // (India, Nepal, parts of Australia) splits hours, so its timeline counts raw hits per 15-minute slot.
    const hourly = starts.every((s) => s % HOUR_MS === 0);
    const slot = this.mysql() ? `(u.at_ms DIV ${SLOT_MS})` : `(u.at_ms / ${SLOT_MS})`;
    const rows = await this.over(
      this.source(f, hourly ? 'hour' : null, ['direction'], { at: true }),
      (u) => `SELECT ${slot} AS slot, u.direction AS direction, SUM(u.hits) AS hits FROM ${u} GROUP BY ${slot}, u.direction`,
    );
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

/** Beyond this many entries, a pruned ranking groups every hit at once (each batch re-reads the window's index). */
const MAX_PRUNED_ENTRIES = 512;

/** byIoc's order: hits, then entry, list, CIDR ascending, severity descending, category ascending. */
function byIocRank(a: Raw, b: Raw): number {
  return n(b.hits) - n(a.hits) || n(a.ioc) - n(b.ioc) || n(a.list) - n(b.list) || byteOrder(a.cidr, b.cidr) || n(b.severity) - n(a.severity) || byteOrder(a.category, b.category);
}

function byteOrder(x: unknown, y: unknown): number {
  const a = String(x);
  const b = String(y);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether the (account, severity, time, device, host, entry, category) index can apply the whole filter, so
 * a count over it reads no table row. Direction, list, protocol, addresses and ports are not in it.
 */
function severityIndexApplies(f: ResolvedHitFilter): boolean {
  return !f.directions && !f.listIds && !f.protocols && !f.internal && !f.external && f.ports === undefined && !f.excludePorts?.length;
}

/** The severities a filter admits, worst first. */
function severityLevels(f: ResolvedHitFilter): number[] {
  const levels = (f.severities ?? [5, 4, 3, 2, 1, 0]).filter((s) => f.minSeverity === undefined || s >= f.minSeverity);
  return [...new Set(levels)].sort((a, b) => b - a);
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
