import type { ClickHouseClient } from '@clickhouse/client';
import { Direction } from '../../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { IocCategory } from '../../ioc/ioc.enums';
import { CommittedAttempt } from '../../analytics/analytics-hits';
import { TimeBucket } from '../report.enums';
import { ThreatRow, TimelineBucketRow } from '../report.types';
import { localBuckets, SLOT_MS, slotsToBuckets } from '../timeline';
import { ReportExecutor, severityLevels } from './executor';
import { compareRows, COUNTED_DIRECTION, DISTINCT_OF, Grouping, GroupingOptions, isInstant, KEY_COLUMNS, KeyName, Measure, withAlwaysRows } from './grouping';
import { ChParams, chRows, HITS_TABLE, hitWhere, keyConditions } from './clickhouse-source';
import { ANALYTICS_ROLLUP_TABLE, DAY_MS, EXTERNAL32, EXTERNAL32_EXACT, HOST_IP, ROLLUP_DIMENSIONS, ROLLUP_STATES } from '../../analytics/analytics-rollup';
import { COMMITTED_READ, committedParams } from '../../analytics/analytics-hits';
import { TRIAGE_TABLE } from '../../analytics/analytics-triage-schema';
import { TriageStatus } from '../../flow-hit/hit-triage.enums';

type Raw = Record<string, string | number | null>;
const num = (v: string | number | null | undefined) => (v == null ? 0 : Number(v));
const snake = (property: string) => property.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A measure's aggregate over flow_hit rows in ClickHouse; distinct counts are exact (uniqExact). Hosts and
 * external addresses are counted as numbers where their text maps to one and back (IPv4), and as text otherwise
 * (IPv6): a host or address is always on the same side, so the two counts add up exactly. uniqExact of text
 * hashes every row's string: at 2.5M rows a byIoc grouping took 1.1-1.9 s that way, 0.35-0.44 s this way. Hosts
 * are told apart by the number each hit stores (HOST_IP; 0, counted by text, for an IPv6 host) instead of by parsing
 * their text.
 */
export function chAggregate(m: Measure): string {
  switch (m) {
    case 'hits':
      return 'count()';
    case 'packets':
      return 'sum(packets_forward + packets_reverse)';
    case 'bytes':
      return 'sum(bytes_forward + bytes_reverse)';
    case 'firstSeen':
      return 'min(first_seen_at)';
    case 'lastSeen':
      return 'max(last_seen_at)';
    case 'worstSeverity':
      return 'max(severity)';
    case 'inboundHits':
    case 'outboundHits':
      return `countIf(direction = '${COUNTED_DIRECTION[m]}')`;
    case 'distinctHosts':
      return `(uniqExactIf(${HOST_IP}, ${HOST_IP} != 0) + uniqExactIf(device_id, internal_ip, ${HOST_IP} = 0))`;
    case 'distinctExternals':
      return `(uniqExactIf(${EXTERNAL32}, ${EXTERNAL32_EXACT}) + uniqExactIf(external_ip, NOT ${EXTERNAL32_EXACT}))`;
    case 'distinctEntries':
    case 'distinctDevices':
      return `uniqExact(${DISTINCT_OF[m].map(snake).join(', ')})`;
  }
}

/**
 * A measure's aggregate over rows with the roll-up's columns (analytics-rollup.ts: the roll-up's own, and flow_hit
 * rows aggregated alike), merged into the same numbers as chAggregate() gives over the hits.
 */
export function chRollupAggregate(m: Measure): string {
  switch (m) {
    case 'hits':
      return 'sum(hits)';
    case 'packets':
      return 'sum(packets)';
    case 'bytes':
      return 'sum(bytes)';
    case 'firstSeen':
      return 'min(first_seen)';
    case 'lastSeen':
      return 'max(last_seen)';
    case 'worstSeverity':
      return 'max(severity)';
    case 'inboundHits':
    case 'outboundHits':
      return `sumIf(hits, direction = '${COUNTED_DIRECTION[m]}')`;
    case 'distinctHosts':
      return '(uniqExactIfMerge(hosts_ip) + uniqExactIfMerge(hosts_text))';
    case 'distinctExternals':
      return '(uniqExactIfMerge(externals_ip) + uniqExactIfMerge(externals_text))';
    case 'distinctEntries':
      return 'uniqExactMerge(entries)';
    case 'distinctDevices':
      return 'uniqExact(device_id)';
  }
}

/** The roll-up's columns (analytics-rollup.ts) each measure merges, besides its key columns and `hits`. */
const ROLLUP_COLUMNS_OF: Record<Measure, string[]> = {
  hits: [],
  packets: ['packets'],
  bytes: ['bytes'],
  firstSeen: ['first_seen'],
  lastSeen: ['last_seen'],
  worstSeverity: [],
  inboundHits: [],
  outboundHits: [],
  distinctHosts: ['hosts_ip', 'hosts_text'],
  distinctExternals: ['externals_ip', 'externals_text'],
  distinctEntries: ['entries'],
  distinctDevices: [],
};

/** The filter's fields the roll-up answers for: the window, its key columns, and verdicts (rollupRows). */
const ROLLUP_FILTER: ReadonlySet<string> = new Set<keyof ResolvedHitFilter>([
  'accountId',
  'from',
  'to',
  'deviceIds',
  'directions',
  'minSeverity',
  'severities',
  'listIds',
  'categories',
  'triageStatuses',
]);

/**
 * Whether the roll-up can answer for `f`: conditions on its key columns only (devices, directions, severities,
 * lists, categories) and verdicts (the hits of uploads without any are all OPEN: rollupRows). Any other condition
 * (ports, protocols, addresses, found by or since, and any a later filter field adds) needs the hits.
 */
function rollupAnswers(f: ResolvedHitFilter): boolean {
  return Object.entries(f).every(([field, value]) => value === undefined || ROLLUP_FILTER.has(field) || (field === 'excludePorts' && value.length === 0));
}

/** A grouping's key: its output fields, their columns, and whether they are text. */
function keyColumns(g: Grouping<unknown>): Array<{ field: string; name: KeyName; column: string; text: boolean }> {
  return (Object.entries(g.key) as Array<[string, KeyName]>).map(([field, c]) => ({
    field,
    name: c,
    column: snake(KEY_COLUMNS[c].property),
    text: KEY_COLUMNS[c].text,
  }));
}

/**
 * A grouping's rows from ClickHouse's: its key fields (from the aliases `keyAlias`, in key order) and measures
 * (`measureAlias`: field -> alias; a skipped measure is 0), the first `first` in its order when given, then its
 * `always` rows, in its order.
 */
function finishRows<R>(g: Grouping<R>, raws: readonly Raw[], keyAlias: readonly string[], measureAlias: ReadonlyMap<string, string>, first?: number): R[] {
  const key = keyColumns(g as Grouping<unknown>);
  let rows = raws
    // Without a key, an aggregate answers one row even over no hits.
    .filter((r) => num(r.n) > 0)
    .map((r) => {
      const row: Record<string, unknown> = {};
      key.forEach((k, i) => (row[k.field] = k.text ? String(r[keyAlias[i]]) : num(r[keyAlias[i]])));
      for (const [field, m] of Object.entries(g.measures) as Array<[string, Measure]>) {
        const a = measureAlias.get(field);
        const v = a === undefined ? 0 : num(r[a]);
        row[field] = isInstant(m) && a !== undefined ? new Date(v) : v;
      }
      return row;
    });
  if (first !== undefined) rows = rows.sort((a, b) => compareRows(g.order, a, b)).slice(0, first);
  return withAlwaysRows(g, rows);
}

/** A row of the triage view as ClickHouse gives it. */
type ThreatRaw = Raw & { ports: number[]; directions: string[] };

/** The triage view's order of the pairs of one severity (threats.sql.ts). */
const THREAT_ORDER = [{ by: 'hits', desc: true }, { by: 'deviceId' }, { by: 'internalIp' }, { by: 'iocId' }, { by: 'category' }];

/**
 * Whether the first `first` rows read over the candidates of a ranking by a coarser number (rankedTop, threatTier)
 * are the grouping's: `coarse` is that ranking by hits, one group more than the `first` candidates asked for, and
 * `nthHits` the hits of the `first`th row over the candidates (undefined: fewer rows). Every group lies within one
 * coarse group, so its hits are at most that group's: when every coarse group was a candidate, or the `first`th row
 * has more hits than the first coarse group left out, no group outside the candidates can rank among the first.
 */
function candidatesDecide(coarse: ReadonlyArray<{ n: number | string }>, first: number, nthHits: number | undefined): boolean {
  return coarse.length <= first || (nthHits !== undefined && nthHits > num(coarse[first].n));
}

/**
 * The number a top N grouping ranked by hits first may be ranked by before its costly measures (rankedTop): a
 * column each of its groups has one value of, with many values. The host (device and address) as host_ip, where
 * the IPv6 hosts of the window all share 0; else its first numeric key column, unless its key columns are all
 * few-valued (the entry's, for byIoc). Null: none, or the grouping is not ranked by hits first.
 */
function rankColumn(g: Grouping<unknown>): { column: string; type: string } | null {
  const [head] = g.order;
  if (!head?.desc || g.measures[head.by as never] !== 'hits') return null;
  const keys = Object.values(g.key) as KeyName[];
  if (keys.every((k) => FEW_VALUED.has(k))) return null;
  if (keys.includes('deviceId') && keys.includes('internalIp')) return { column: HOST_IP, type: 'UInt64' };
  const numeric = keyColumns(g).find((k) => !k.text && !FEW_VALUED.has(k.name));
  return numeric ? { column: numeric.column, type: 'Int64' } : null;
}

/** Key columns with a handful of values per account: the groupings keyed by these alone are read together. */
const FEW_VALUED = new Set<KeyName>(['deviceId', 'direction', 'iocListId', 'severity', 'category']);

/** A grouping asked for and not yet read (ClickHouseExecutor.group batches those asked for in one turn). */
interface Pending {
  g: Grouping<unknown>;
  options: GroupingOptions;
  resolve: (rows: unknown[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Runs the groupings declared in groupings.ts on ClickHouse (ANALYTICS_URL), the third executor beside memory
 * and SQL, with the same numbers, order and ties. A grouping is one statement over the committed hits of the
 * window (clickhouse-source.ts), or shares one with the other groupings of few-valued keys asked for at once;
 * those read a window's whole days from the daily roll-up (analytics-rollup.ts), whose keys are theirs. Distinct
 * counts are exact (uniqExact, merged states in the roll-up), and text sorts by bytes, as the other executors are
 * told to. Built per request with the account's committed attempts and the first day the roll-up may answer for.
 */
export class ClickHouseExecutor implements ReportExecutor {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly committed: readonly CommittedAttempt[],
    /** The first day the daily roll-up may answer for (rollupFrom(), from RETENTION_DAYS); later than any: never. */
    private readonly rollupFrom: number = Number.MAX_SAFE_INTEGER,
  ) {}

  /** Groupings of few-valued keys asked for in this turn of the event loop, by filter (one request's). */
  private readonly pending = new Map<ResolvedHitFilter, Pending[]>();

  /**
   * A grouping's rows. Groupings keyed by few-valued columns only (totals, directions, lists, categories,
   * severities, devices), asked for with the same filter in one turn of the event loop (a hitReport's fields,
   * which GraphQL resolves together), are read in one statement (GROUP BY GROUPING SETS): the window is scanned
   * and filtered once, not once per grouping. At 10M hits (2.5M in the window) seven of them took about 0.8 s
   * that way against 2 s one by one (on a busy machine).
   */
  group<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions = {}): Promise<R[]> {
    if (!Object.values(g.key).every((k) => FEW_VALUED.has(k as KeyName))) return this.groupAlone(g, f, options);
    return new Promise<R[]>((resolve, reject) => {
      let batch = this.pending.get(f);
      if (!batch) {
        batch = [];
        this.pending.set(f, batch);
        setImmediate(() => void this.flush(f));
      }
      batch.push({ g: g as Grouping<unknown>, options, resolve: resolve as (rows: unknown[]) => void, reject });
    });
  }

  private async flush(f: ResolvedHitFilter): Promise<void> {
    const batch = this.pending.get(f) ?? [];
    this.pending.delete(f);
    try {
      if (batch.length === 1 && !this.rollupDays(f)) batch[0].resolve(await this.groupAlone(batch[0].g, f, batch[0].options));
      else {
        const results = await this.groupSets(batch, f);
        batch.forEach((b, i) => b.resolve(results[i]));
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * One grouping, one statement (ranked and cut in ClickHouse when it is a top N), or two cheaper ones when a
   * coarser number ranks it first (rankedTop).
   */
  private async groupAlone<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions): Promise<R[]> {
    const key = keyColumns(g);
    const wanted = (Object.entries(g.measures) as Array<[string, Measure]>).filter(([field]) => !options.skip?.includes(field));
    const alias = new Map(wanted.map(([field], i) => [field, `m${i}`]));
    const select = [...key.map((k, i) => `${k.column} AS k${i}`), ...wanted.map(([, m], i) => `${chAggregate(m)} AS m${i}`), 'count() AS n'];
    const order = g.order.map(({ by, desc }) => {
      const k = key.findIndex((x) => x.field === by);
      return `${k >= 0 ? `k${k}` : (alias.get(by) ?? '0')} ${desc ? 'DESC' : 'ASC'}`;
    });
    const first = g.top && options.first !== undefined ? Number(options.first) : undefined;
    const statement = (p: ChParams, condition = '') =>
      `SELECT ${select.join(', ')} FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, p)}${condition}` +
      (key.length ? ` GROUP BY ${key.map((k) => k.column).join(', ')}` : '') +
      (order.length ? ` ORDER BY ${order.join(', ')}` : '') +
      (first !== undefined ? ` LIMIT ${first}` : '');
    const rank = first !== undefined && first > 0 && wanted.some(([, m]) => m in DISTINCT_OF) ? rankColumn(g) : null;
    let raws = rank ? await this.rankedTop(f, rank, first as number, statement) : null;
    if (raws === null) {
      const p = new ChParams();
      raws = await chRows<Raw>(this.client, statement(p), p.values);
    }
    return finishRows(
      g,
      raws,
      key.map((k, i) => `k${i}`),
      alias,
    );
  }

  /**
   * A top N whose distinct counts are costly (byIoc, byInternalHost: a hash set per group over every hit of the
   * window), read in two statements: the window's groups of a coarser number (`rank`: the entry, the host as
   * host_ip) counted alone, the N first of those kept as candidates, then the grouping computed over the
   * candidates' hits only: the one statement's answer when candidatesDecide() says so. Otherwise (ties at the cut,
   * an entry's hits split across groups, IPv6 hosts, which share host_ip 0): null, and the caller reads the grouping
   * whole. At 10M hits (2.5M in the window), byIoc took 32 + 90 ms this way against 265-290 ms, byInternalHost
   * 35 + 57 ms against 250-290 ms (chDB, each alone).
   */
  private async rankedTop(
    f: ResolvedHitFilter,
    rank: { column: string; type: string },
    first: number,
    statement: (p: ChParams, condition?: string) => string,
  ): Promise<Raw[] | null> {
    const r = new ChParams();
    // As text: host_ip may pass 2^53.
    const coarse = await chRows<{ c: string; n: number | string }>(
      this.client,
      `SELECT toString(${rank.column}) AS c, count() AS n FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, r)} GROUP BY ${rank.column} ORDER BY n DESC LIMIT ${first + 1}`,
      r.values,
    );
    const candidates = coarse.slice(0, first).map((c) => c.c);
    const p = new ChParams();
    const raws = await chRows<Raw>(
      this.client,
      statement(p, ` AND ${rank.column} IN CAST(${p.add(candidates, 'Array(String)')} AS Array(${rank.type}))`),
      p.values,
    );
    return candidatesDecide(coarse, first, raws.length >= first ? num(raws[first - 1].n) : undefined) ? raws : null;
  }

  /**
   * Several groupings in one statement: a grouping set per distinct key, every measure any of them wants, each
   * row told to its set by grouping()'s mask (a bit per key column, set when the set leaves the column out, as
   * standard SQL has it). A top N is cut here, after the same order ClickHouse would have ranked by.
   */
  private async groupSets(batch: readonly Pending[], f: ResolvedHitFilter): Promise<unknown[][]> {
    const columns = [...new Set(batch.flatMap((b) => Object.values(b.g.key) as KeyName[]))];
    const wanted = batch.map((b) => (Object.entries(b.g.measures) as Array<[string, Measure]>).filter(([field]) => !b.options.skip?.includes(field)));
    const measures = [...new Set(wanted.flat().map(([, m]) => m))];
    const maskOf = (keys: readonly KeyName[]) => columns.reduce((mask, c, i) => (keys.includes(c) ? mask : mask | (1 << (columns.length - 1 - i))), 0);
    const sets = [...new Map(batch.map((b) => [maskOf(Object.values(b.g.key) as KeyName[]), Object.values(b.g.key) as KeyName[]])).entries()];
    const column = (c: KeyName) => snake(KEY_COLUMNS[c].property);
    const p = new ChParams();
    // Whole days the roll-up holds come from it, the rest of the window from the hits, aggregated alike.
    const days = this.rollupDays(f);
    const select = [
      ...(columns.length ? [`grouping(${columns.map(column).join(', ')}) AS mask`] : []),
      ...columns.map((c, i) => `${column(c)} AS k${i}`),
      ...measures.map((m, i) => `${days ? chRollupAggregate(m) : chAggregate(m)} AS m${i}`),
      days ? 'sum(hits) AS n' : 'count() AS n',
    ];
    const sql =
      (days
        ? `SELECT ${select.join(', ')} FROM (${this.rollupRows(f, days, measures, p)})`
        : `SELECT ${select.join(', ')} FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, p)}`) +
      (columns.length ? ` GROUP BY GROUPING SETS (${sets.map(([, keys]) => `(${keys.map(column).join(', ')})`).join(', ')})` : '') +
      ' SETTINGS force_grouping_standard_compatibility = 1';
    const raws = await chRows<Raw>(this.client, sql, p.values);
    return batch.map((b, i) => {
      const mask = maskOf(Object.values(b.g.key) as KeyName[]);
      const mine = columns.length ? raws.filter((r) => num(r.mask) === mask) : raws;
      const alias = new Map(wanted[i].map(([field, m]) => [field, `m${measures.indexOf(m)}`]));
      return finishRows(
        b.g,
        mine,
        keyColumns(b.g).map((k) => `k${columns.indexOf(k.name)}`),
        alias,
        b.g.top ? b.options.first : undefined,
      );
    });
  }

  /**
   * The whole days of `f`'s window the daily roll-up answers for ([from, to), UTC midnights), or null: the filter
   * needs the hits, or the window holds no whole day the roll-up may answer for (rollupFrom).
   */
  private rollupDays(f: ResolvedHitFilter): { from: number; to: number } | null {
    if (!rollupAnswers(f)) return null;
    const from = Math.max(Math.ceil(f.from / DAY_MS) * DAY_MS, this.rollupFrom);
    const to = Math.floor(f.to / DAY_MS) * DAY_MS;
    return from < to ? { from, to } : null;
  }

  /**
   * `f`'s rows with the roll-up's columns: the roll-up's of `days` (committed attempts, the filter's conditions
   * on its key columns), and the hits of the rest of the window aggregated alike (the same key, so that a row of
   * either merges into the same groups).
   */
  private rollupRows(f: ResolvedHitFilter, days: { from: number; to: number }, measures: readonly Measure[], p: ChParams): string {
    const dimensions = ROLLUP_DIMENSIONS.join(', ');
    // Only the columns the measures merge (a state read and merged for nothing costs as much as one used).
    const wanted = new Set(['hits', ...measures.flatMap((m) => ROLLUP_COLUMNS_OF[m])]);
    const states = ROLLUP_STATES.filter(([c]) => wanted.has(c));
    const aggregated = (where: string) =>
      `SELECT ${dimensions}, ${states.map(([c, , aggregate]) => `${aggregate} AS ${c}`).join(', ')} FROM ${HITS_TABLE} WHERE ${where} GROUP BY ${dimensions}`;
    const parts: string[] = [];
    // With verdicts asked for: the hits of uploads without any (`judgedIn`: the mirror's uploads) are all OPEN, so
    // those come from the roll-up when OPEN is asked for (and not at all otherwise); the hits of uploads with
    // verdicts are read one by one (the upload_id index skips the others' granules: an upload's hits are near in
    // time). The mirror's uploads are read within this statement: as a statement of their own, run before it, they
    // waited behind the dashboard's other statements (200 ms at 10M hits) and held this one back.
    const statuses = f.triageStatuses;
    const judgedIn = `upload_id IN (SELECT upload_id FROM ${TRIAGE_TABLE} WHERE account_id = ${p.add(f.accountId, 'UInt64')})`;
    const unjudged = statuses ? ` AND NOT ${judgedIn}` : '';
    const untriaged = { ...f, triageStatuses: undefined };
    if (!statuses || statuses.includes(TriageStatus.OPEN)) {
      parts.push(
        `SELECT ${dimensions}, ${states.map(([c]) => c).join(', ')} FROM ${ANALYTICS_ROLLUP_TABLE} FINAL WHERE ${this.rollupWhere(f, days, p)}${unjudged}`,
      );
      for (const [from, to] of [
        [f.from, days.from],
        [days.to, f.to],
      ]) {
        if (from < to) parts.push(aggregated(`${hitWhere({ ...untriaged, from, to }, this.committed, p)}${unjudged}`));
      }
    }
    if (statuses) parts.push(aggregated(`${hitWhere(f, this.committed, p)} AND ${judgedIn}`));
    // Nothing asked for is there (only verdicts other than OPEN, and no upload has any): an empty source.
    if (parts.length === 0) parts.push(aggregated('0'));
    return parts.join(' UNION ALL ');
  }

  /** hitWhere() over the roll-up: the account, its days, the committed attempts, the conditions on its key columns. */
  private rollupWhere(f: ResolvedHitFilter, days: { from: number; to: number }, p: ChParams): string {
    const parts = [`account_id = ${p.add(f.accountId, 'UInt64')}`, `day >= ${p.add(days.from, 'Int64')}`, `day < ${p.add(days.to, 'Int64')}`];
    Object.assign(p.values, committedParams(this.committed));
    parts.push(COMMITTED_READ);
    parts.push(...keyConditions(f, p));
    return parts.join(' AND ');
  }

  /**
   * The triage view (threats.sql.ts, threats.memory.ts): (host, entry, category) pairs ranked by severity, worst
   * first, then hits, device, host by bytes and entry; each pair's rows split by list and CIDR as its hits
   * recorded them. Each severity's pairs come from threatTier.
   */
  async threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    // Severity ranks first, so the pairs shown are those of the worst severities present: each is ranked on its
    // own, worst first, until the page is full. Ranking every pair of the window at once grouped all its rows by
    // (host, entry): at 1M hits 140-180 ms of the dashboard's ~260. The worst severity the filter allows is ranked
    // first without asking whether it is present (a statement, a scan of the window, that mostly says it is); only
    // when it is not does one statement find the severities present, and only those are ranked.
    let levels = severityLevels(f);
    let known = false;
    const shown: ThreatRaw[][] = [];
    while (levels.length > 0 && shown.length < first) {
      const severity = levels[0];
      const tier = await this.threatTier(f, severity, first - shown.length);
      levels = levels.slice(1);
      if (tier.length === 0 && !known && levels.length > 0) {
        const s = new ChParams();
        const present = await chRows<{ severity: number | string }>(
          this.client,
          `SELECT DISTINCT severity FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, s)} AND severity IN ${s.add(levels, 'Array(Int64)')}`,
          s.values,
        );
        const found = new Set(present.map((r) => num(r.severity)));
        levels = levels.filter((l) => found.has(l));
        known = true;
      }
      shown.push(...tier);
    }
    return shown.flat().map((r) => ({
      deviceId: num(r.device_id),
      internalIp: String(r.internal_ip),
      iocId: num(r.ioc_id),
      iocListId: num(r.ioc_list_id),
      matchedCidr: String(r.matched_cidr),
      severity: num(r.severity),
      category: r.category as IocCategory,
      hits: num(r.hits),
      packets: num(r.packets),
      destinationPorts: r.ports.map(Number).slice(0, 20),
      directions: [...r.directions].sort() as Direction[],
      firstSeenAt: new Date(num(r.first)),
      lastSeenAt: new Date(num(r.last)),
    }));
  }

  /**
   * The `limit` first (host, entry, category) pairs of one severity, by hits, then device, host, entry, category:
   * each pair's rows, pairs in that order. The pairs are ranked first by (host_ip, entry) alone, numbers, which
   * ClickHouse groups faster than a key of text (70 against 115 ms over the 450,000 hits of severity 5 at 10M hits,
   * chDB), and the rows of the `limit` first of those are read in the same statement that would read the chosen
   * pairs' rows, then summed into pairs here, kept when candidatesDecide() says so (each pair lies within one
   * (host_ip, entry) group; IPv6 hosts all share host_ip 0). Otherwise (a tie at the cut, an entry's hits under two
   * categories, IPv6 hosts) the pairs are ranked exactly, as one statement, and their rows read after.
   */
  private async threatTier(f: ResolvedHitFilter, severity: number, limit: number): Promise<ThreatRaw[][]> {
    const p = new ChParams();
    const coarse = await chRows<{ h: string; ioc_id: number | string; n: number | string }>(
      this.client,
      // host_ip as text: it may pass 2^53.
      `SELECT toString(${HOST_IP}) AS h, ioc_id, count() AS n FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, p)}
       AND severity = ${p.add(severity, 'Int64')} GROUP BY ${HOST_IP}, ioc_id ORDER BY n DESC LIMIT ${Number(limit) + 1}`,
      p.values,
    );
    if (coarse.length === 0) return [];
    const candidates = coarse.slice(0, limit);
    const pairs = await this.threatRows(f, severity, (q) => {
      const hosts = q.add(
        candidates.map((c) => c.h),
        'Array(String)',
      );
      const entries = q.add(
        candidates.map((c) => num(c.ioc_id)),
        'Array(Int64)',
      );
      return `${HOST_IP} IN CAST(${hosts} AS Array(UInt64)) AND ioc_id IN ${entries}
       AND (${HOST_IP}, ioc_id) IN (SELECT arrayJoin(arrayZip(CAST(${hosts} AS Array(UInt64)), ${entries})))`;
    });
    if (candidatesDecide(coarse, limit, pairs[limit - 1]?.hits)) return pairs.slice(0, limit).map((x) => x.rows);
    const r = new ChParams();
    const top = await chRows<Raw>(
      this.client,
      `SELECT device_id, internal_ip, ioc_id, category FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, r)}
       AND severity = ${r.add(severity, 'Int64')}
       GROUP BY device_id, internal_ip, ioc_id, category
       ORDER BY count() DESC, device_id, internal_ip, ioc_id, category LIMIT ${Number(limit)}`,
      r.values,
    );
    // Arrays zipped (arrays of tuples as parameters are not formatted alike by every connection).
    const exact = await this.threatRows(f, severity, (q) => {
      const column = (pick: (t: Raw) => unknown, type: string) => q.add(top.map(pick), `Array(${type})`);
      return `ioc_id IN ${column((t) => num(t.ioc_id), 'Int64')} AND device_id IN ${column((t) => num(t.device_id), 'Int64')}
       AND (device_id, internal_ip, ioc_id, category) IN (SELECT arrayJoin(arrayZip(${[
         column((t) => num(t.device_id), 'Int64'),
         column((t) => String(t.internal_ip), 'String'),
         column((t) => num(t.ioc_id), 'Int64'),
         column((t) => String(t.category), 'String'),
       ].join(', ')})))`;
    });
    return exact.map((x) => x.rows);
  }

  /**
   * The rows (pair, list, CIDR) of one severity's hits that `condition` keeps, summed into their (host, entry,
   * category) pairs, in the view's order: hits, then device, host by bytes, entry and category; a pair's rows by hits.
   */
  private async threatRows(f: ResolvedHitFilter, severity: number, condition: (q: ChParams) => string): Promise<Array<{ hits: number; rows: ThreatRaw[] }>> {
    const q = new ChParams();
    const rows = await chRows<ThreatRaw>(
      this.client,
      `SELECT severity, device_id, internal_ip, ioc_id, ioc_list_id, matched_cidr, category, count() AS hits,
              sum(packets_forward + packets_reverse) AS packets, arraySort(groupUniqArray(destination_port)) AS ports,
              arraySort(groupUniqArray(direction)) AS directions, min(first_seen_at) AS first, max(last_seen_at) AS last
       FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, q)} AND severity = ${q.add(severity, 'Int64')} AND ${condition(q)}
       GROUP BY severity, device_id, internal_ip, ioc_id, ioc_list_id, matched_cidr, category`,
      q.values,
    );
    const pairs = new Map<string, { deviceId: number; internalIp: string; iocId: number; category: string; hits: number; rows: ThreatRaw[] }>();
    for (const r of rows) {
      const key = `${num(r.device_id)}|${String(r.internal_ip)}|${num(r.ioc_id)}|${String(r.category)}`;
      let pair = pairs.get(key);
      if (!pair) {
        pair = { deviceId: num(r.device_id), internalIp: String(r.internal_ip), iocId: num(r.ioc_id), category: String(r.category), hits: 0, rows: [] };
        pairs.set(key, pair);
      }
      pair.hits += num(r.hits);
      pair.rows.push(r);
    }
    const ranked = [...pairs.values()].sort((a, b) => compareRows(THREAT_ORDER, a, b));
    for (const pair of ranked) pair.rows.sort((x, y) => num(y.hits) - num(x.hits));
    return ranked;
  }

  /**
   * Hits per 15-minute UTC slot, and how many of them inbound, summed into local buckets (timeline.ts). Keyed by
   * the slot alone: a key of the slot and the direction (a LowCardinality string) took ClickHouse's generic
   * hashing, 150 against 50 ms over 2.5M hits.
   */
  async timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    const starts = localBuckets(f.from, f.to, bucket, zone);
    const p = new ChParams();
    const slots = await chRows<Raw>(
      this.client,
      `SELECT intDiv(first_seen_at, ${SLOT_MS}) AS slot, count() AS hits, countIf(direction = ${p.add(Direction.INBOUND, 'String')}) AS inbound
       FROM ${HITS_TABLE} WHERE ${hitWhere(f, this.committed, p)} GROUP BY slot`,
      p.values,
    );
    // slotsToBuckets counts every hit not inbound as outbound, as the other executors' rows are.
    const rows = slots.flatMap((r) => [
      { slot: r.slot, direction: Direction.INBOUND, hits: num(r.inbound) },
      { slot: r.slot, direction: Direction.OUTBOUND, hits: num(r.hits) - num(r.inbound) },
    ]);
    return slotsToBuckets(starts, bucket, zone, rows);
  }
}
