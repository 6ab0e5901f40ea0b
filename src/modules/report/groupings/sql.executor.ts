import { DataSource, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { FlowHit } from '../../flow-hit/flow-hit.entity';
import { applyHitFilter, ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { TimeBucket } from '../report.enums';
import { ThreatRow, TimelineBucketRow } from '../report.types';
import { ReportExecutor, severityLevels } from './executor';
import {
  compareRows,
  COUNTED_DIRECTION,
  DISTINCT_OF,
  DistinctMeasure,
  Grouping,
  GroupingOptions,
  isDistinct,
  isInstant,
  KEY_COLUMNS,
  KeyName,
  Measure,
  withAlwaysRows,
} from './grouping';
import { SqlDialect, sqlDialect } from './sql-dialect';
import { FLOW_HITS, HitTable, rollupFor } from './sql-source';
import { threats } from './threats.sql';
import { timeline } from './timeline.sql';

type Raw = Record<string, string | number | null>;

/** Beyond this many values of the first key column, a pruned ranking groups every hit at once. */
const MAX_PRUNED_VALUES = 512;

// mysql2 returns SUM/COUNT as strings; SQLite as numbers.
export const num = (v: string | number | null | undefined) => (v == null ? 0 : Number(v));

/** A measure's aggregate over a row source `u` (hits, packets, bytes, first_at, last_at and the key columns). */
function aggregate(m: Exclude<Measure, DistinctMeasure>): string {
  switch (m) {
    case 'hits':
      return 'SUM(u.hits)';
    case 'packets':
      return 'SUM(u.packets)';
    case 'bytes':
      return 'SUM(u.bytes)';
    case 'firstSeen':
      return 'MIN(u.first_at)';
    case 'lastSeen':
      return 'MAX(u.last_at)';
    case 'worstSeverity':
      return 'MAX(u.severity)';
    case 'inboundHits':
    case 'outboundHits':
      return `SUM(CASE WHEN u.direction = '${COUNTED_DIRECTION[m]}' THEN u.hits ELSE 0 END)`;
  }
}

/** The columns a measure reads besides the source's sums. */
const measureColumns = (m: Measure): string[] =>
  isDistinct(m) ? DISTINCT_OF[m] : m === 'worstSeverity' ? ['severity'] : COUNTED_DIRECTION[m] ? ['direction'] : [];

/**
 * Runs the groupings in SQL, on SQLite and MySQL/MariaDB alike (sql-dialect.ts holds their differences). Each
 * grouping reads the coarsest source that has its key and measures: the hourly roll-up, the daily per-host
 * roll-up, or the raw hits (sql-source.ts); a distinct count the main source cannot give is its own query, on
 * the coarsest source that has what it counts, and for the rows shown only.
 */
export class SqlExecutor implements ReportExecutor {
  readonly dialect: SqlDialect;

  constructor(
    protected readonly dataSource: DataSource,
    protected readonly table: HitTable = FLOW_HITS,
  ) {
    this.dialect = sqlDialect(dataSource);
  }

  threats(f: ResolvedHitFilter, first: number): Promise<ThreatRow[]> {
    return threats(this.dataSource, this.dialect, f, first);
  }

  timeline(f: ResolvedHitFilter, bucket: TimeBucket, zone: string): Promise<TimelineBucketRow[]> {
    return timeline(this.dataSource, this.dialect, f, bucket, zone, this.table);
  }

  async group<R>(g: Grouping<R>, f: ResolvedHitFilter, options: GroupingOptions = {}): Promise<R[]> {
    const key = (Object.entries(g.key) as Array<[string, KeyName]>).map(([field, c]) => ({ field, ...KEY_COLUMNS[c] }));
    const keyProps = key.map((k) => k.property);
    const wanted = (Object.entries(g.measures) as Array<[string, Measure]>).filter(([field]) => !options.skip?.includes(field));
    const sums = wanted.filter((w): w is [string, Exclude<Measure, DistinctMeasure>] => !isDistinct(w[1]));
    const mainColumns = [...new Set([...keyProps, ...sums.flatMap(([, m]) => measureColumns(m))])];
    const main = rollupFor(
      f,
      mainColumns,
      sums.some(([, m]) => m === 'bytes'),
      this.table.rollups,
    );
    const mainHas = (columns: string[]) => main === null || columns.every((c) => main.columns.includes(c));
    // Distinct counts the main source can give are counted with it; the others afterwards, for the rows shown.
    const distinct = wanted.filter((w): w is [string, DistinctMeasure] => isDistinct(w[1]));
    const folded = distinct.filter(([, m]) => mainHas(DISTINCT_OF[m]));
    const later = distinct.filter(([, m]) => !mainHas(DISTINCT_OF[m]));

    const columns = [...new Set([...mainColumns, ...folded.flatMap(([, m]) => DISTINCT_OF[m])])];
    const select = [
      ...key.map((k, i) => `u.${k.property} AS k${i}`),
      ...sums.map(([, m], i) => `${aggregate(m)} AS s${i}`),
      ...folded.map(([, m], i) => `COUNT(DISTINCT ${this.distinctOf(m)}) AS d${i}`),
    ];
    const measureAlias = new Map<string, string>([
      ...sums.map(([field], i) => [field, `s${i}`] as const),
      ...folded.map(([field], i) => [field, `d${i}`] as const),
    ]);
    const order = g.order.map(({ by, desc }) => {
      const k = key.find((x) => x.field === by);
      const term = k ? (k.text ? this.dialect.bytewise(`u.${k.property}`) : `u.${k.property}`) : (measureAlias.get(by) ?? '0');
      return `${term} ${desc ? 'DESC' : 'ASC'}`;
    });
    const toRow = (r: Raw) => {
      const row: Record<string, unknown> = {};
      key.forEach((k, i) => (row[k.field] = k.text ? String(r[`k${i}`]) : num(r[`k${i}`])));
      for (const [field, m] of Object.entries(g.measures) as Array<[string, Measure]>) {
        const alias = measureAlias.get(field);
        const v = alias === undefined ? 0 : num(r[alias]);
        row[field] = isInstant(m) && alias !== undefined ? new Date(v) : v;
      }
      return row;
    };
    /** The grouping's rows, of all keys or of those whose first key column is among `only`. */
    const query = async (only?: number[]): Promise<Array<Record<string, unknown>>> => {
      const where = only
        ? <T extends ObjectLiteral>(qb: SelectQueryBuilder<T>) => void qb.andWhere(`h.${key[0].property} IN (:...prunedKeys)`, { prunedKeys: only })
        : undefined;
      const src = this.table.source(this.dataSource, f, main, columns, { where });
      const sql =
        `SELECT ${select.join(', ')} FROM (${src.sql}) u` +
        (key.length ? ` GROUP BY ${key.map((k) => `u.${k.property}`).join(', ')}` : '') +
        (order.length ? ` ORDER BY ${order.join(', ')}` : '') +
        (g.top && options.first !== undefined ? ` LIMIT ${Number(options.first)}` : '');
      const raws: Raw[] = await this.dataSource.query(sql, src.params);
      // Without a key, SQL answers one row even over no hits (its sums null).
      return (key.length ? raws : raws.filter((r) => num(r.s0) > 0 || !sums.length)).map(toRow);
    };
    const rows = this.prunable(g, f, main === null, key, options) ? await this.pruned(g, f, key[0].property, options.first!, query) : await query();
    for (const [field, m] of later) await this.countDistinct(f, key, rows, field, m, g.top);
    // In the declared order (SQL ordered them already; `always` rows are added, and ties SQL saw in another collation).
    return withAlwaysRows(g, rows);
  }

  /**
   * Whether a top grouping over the raw hits can rank from its first key column alone: ordered by hits first, a
   * key of several columns whose first is an integer, and a filter the (account, severity, time, device, host,
   * entry, category) index can apply whole, so the ranking reads no table row (byIoc).
   */
  private prunable(
    g: Grouping<unknown>,
    f: ResolvedHitFilter,
    raw: boolean,
    key: Array<{ field: string; property: string; text: boolean }>,
    options: GroupingOptions,
  ): boolean {
    const first = g.order[0];
    return (
      this.table.prunes &&
      raw &&
      g.top &&
      options.first !== undefined &&
      key.length > 1 &&
      !key[0].text &&
      first !== undefined &&
      g.measures[first.by as never] === 'hits' &&
      first.desc === true &&
      !f.directions &&
      !f.listIds &&
      !f.protocols &&
      !f.internal &&
      !f.external &&
      f.ports === undefined &&
      !f.excludePorts?.length
    );
  }

  /**
   * The `first` rows of a grouping without grouping every hit: hits are first counted per value of the first
   * key column from an index alone (an integer sort), and the rows are computed only for the heaviest values,
   * in growing batches, until the next value has fewer hits than the `first`-th row found: no row of it (its
   * hits are split among its rows) or of any lighter value can make the list. Nearly always one batch.
   */
  private async pruned(
    g: Grouping<unknown>,
    f: ResolvedHitFilter,
    column: string,
    first: number,
    query: (only?: number[]) => Promise<Array<Record<string, unknown>>>,
  ): Promise<Array<Record<string, unknown>>> {
    const hitsField = g.order[0].by;
    const qb = this.dataSource.getRepository(FlowHit).createQueryBuilder('h');
    applyHitFilter(qb, f);
    if (f.severities === undefined) qb.andWhere('h.severity IN (:...allLevels)', { allLevels: severityLevels(f) });
    const ranked: Raw[] = await qb
      .select(`h.${column}`, 'c')
      .addSelect('COUNT(*)', 'hits')
      .groupBy(`h.${column}`)
      .orderBy('hits', 'DESC')
      .addOrderBy(`h.${column}`, 'ASC')
      .getRawMany();
    let best: Array<Record<string, unknown>> = [];
    let next = 0;
    for (let batch = first; next < ranked.length; batch *= 2) {
      // Past this many values, each batch re-reading the window's index costs more than grouping every hit once.
      if (next + batch > MAX_PRUNED_VALUES) return query();
      const values = ranked.slice(next, next + batch).map((r) => num(r.c));
      next += values.length;
      best = [...best, ...(await query(values))].sort((a, b) => compareRows(g.order, a, b)).slice(0, first);
      if (best.length === first && next < ranked.length && num(ranked[next].hits) < Number(best[first - 1][hitsField])) break;
    }
    return best;
  }

  /** One instance of what a distinct count counts, as one SQL value over `u`. */
  private distinctOf(m: DistinctMeasure): string {
    const cols = DISTINCT_OF[m].map((c) => `u.${c}`);
    return cols.length === 1 ? cols[0] : this.dialect.concat(cols);
  }

  /**
   * A distinct count per key for `rows`, from the coarsest source that has the key and what is counted: all keys
   * of a grouping without `top`, else those shown only.
   */
  private async countDistinct(
    f: ResolvedHitFilter,
    key: Array<{ field: string; property: string; text: boolean }>,
    rows: Array<Record<string, unknown>>,
    field: string,
    m: DistinctMeasure,
    onlyShown: boolean,
  ): Promise<void> {
    if (rows.length === 0) return;
    const keyProps = key.map((k) => k.property);
    const counted = DISTINCT_OF[m];
    const rollup = rollupFor(f, [...keyProps, ...counted], false, this.table.rollups);
    const where = <T extends ObjectLiteral>(qb: SelectQueryBuilder<T>) => {
      if (!rollup && f.severities === undefined) {
        // On the raw hits, naming the severities lets the (account, severity, time, device, host, entry, ...)
        // index answer alone, one severity range at a time, instead of every hit's row.
        qb.andWhere('h.severity IN (:...allLevels)', { allLevels: severityLevels(f) });
      }
      // A key of one column (a list, a device: few) is counted for every key: a condition on it would walk that
      // column's index and read every hit's row; finer keys (hosts) only for the rows shown.
      if (!onlyShown || key.length < 2) return;
      const params: Record<string, unknown> = {};
      const match = rows.map((r, i) => `(${key.map((k, j) => ((params[`r${i}_${j}`] = r[k.field]), `h.${k.property} = :r${i}_${j}`)).join(' AND ')})`);
      qb.andWhere(`(${match.join(' OR ')})`, params);
    };
    const src = this.table.source(this.dataSource, f, rollup, [...new Set([...keyProps, ...counted])], { where });
    const inner = [...new Set([...keyProps, ...counted])].map((c) => `u.${c}`).join(', ');
    const outer = keyProps.map((p, i) => `d.${p} AS k${i}`);
    const sql = `SELECT ${[...outer, 'COUNT(*) AS n'].join(', ')} FROM (SELECT DISTINCT ${inner} FROM (${src.sql}) u) d${keyProps.length ? ` GROUP BY ${keyProps.map((p) => `d.${p}`).join(', ')}` : ''}`;
    const raws: Raw[] = await this.dataSource.query(sql, src.params);
    const id = (values: unknown[]) => values.map(String).join('\u0000');
    const byKey = new Map(raws.map((r) => [id(key.map((k, i) => (k.text ? String(r[`k${i}`]) : num(r[`k${i}`])))), num(r.n)]));
    for (const row of rows) row[field] = byKey.get(id(key.map((k) => row[k.field]))) ?? 0;
  }
}
