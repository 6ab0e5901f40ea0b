import { DataSource } from 'typeorm';
import { badUserInput } from '../../common/errors/graphql-errors';
import { ConnectionData } from '../../common/pagination/connection';
import { CursorValue, decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { KeysetPage, pageSize } from '../../common/pagination/keyset';
import { EXPORTED_COLUMNS, HIT_COLUMNS } from '../flow-hit/flow-hit.columns';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { FlowHitOrder } from '../flow-hit/flow-hit.enums';
import { ResolvedHitFilter } from '../flow-hit/hit-filter';
import { syncTriage } from './analytics-triage';
import { analyticsUnavailable, ChParams, chRows, HITS_TABLE, hitWhere } from '../report/groupings/clickhouse-source';
import type { Analytics } from './analytics';
import { COMMITTED_READ, CommittedAttempt, committedAttempt, committedAttempts, committedParams } from './analytics-hits';

/** A sort key of the drill-down in ClickHouse: its expression and how to read it from a hit (the cursor). */
interface ChSortKey {
  expression: string;
  direction: 'ASC' | 'DESC';
  value: (h: FlowHit) => CursorValue;
  /** What ORDER BY names for it, when not `expression` (the same order, spelled as the table's sort key). */
  orderBy?: string;
}

/**
 * `id` in ORDER BY, spelled as the table's sort key spells it (analytics-schema.ts: account_id, first_seen_at,
 * upload_id, attempt, seq). An id is upload_id * HIT_ID_UPLOAD_STRIDE + seq with seq below the stride, and a read
 * keeps one attempt per upload (its committed one), so (upload_id, attempt, seq) orders the rows read exactly as
 * id does. Ordered by (first_seen_at, id), ClickHouse sorted every row of the window past the cursor to take a
 * batch (a top-N: at 1M hits 173 ms a 50,000-row batch, growing with the window); by the sort key, led by the
 * account every statement fixes, it reads the parts in order and stops at the limit (46 ms).
 */
const ID_ORDER = { ASC: 'upload_id, attempt, seq', DESC: 'upload_id DESC, attempt DESC, seq DESC' } as const;

/** A statement's ORDER BY over `keys`, led by account_id (fixed by every statement's WHERE) when the first key is first_seen_at. */
function orderByOf(keys: readonly ChSortKey[]): string {
  const spelled = keys.map((k) => k.orderBy ?? `${k.expression} ${k.direction}`);
  return (keys[0].expression === 'first_seen_at' ? [`account_id ${keys[0].direction}`, ...spelled] : spelled).join(', ');
}

/** flow-hit.service.ts's orders, over ClickHouse's columns; cursors carry the same values under the same tags. */
const ORDERS: Record<FlowHitOrder, ChSortKey[]> = {
  [FlowHitOrder.FIRST_SEEN_DESC]: [
    { expression: 'first_seen_at', direction: 'DESC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'id', direction: 'DESC', value: (h) => h.id, orderBy: ID_ORDER.DESC },
  ],
  [FlowHitOrder.FIRST_SEEN_ASC]: [
    { expression: 'first_seen_at', direction: 'ASC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'id', direction: 'ASC', value: (h) => h.id, orderBy: ID_ORDER.ASC },
  ],
  [FlowHitOrder.PACKETS_DESC]: [
    { expression: '(packets_forward + packets_reverse)', direction: 'DESC', value: (h) => h.packetsForward + h.packetsReverse },
    { expression: 'id', direction: 'DESC', value: (h) => h.id },
  ],
  [FlowHitOrder.SEVERITY_DESC]: [
    { expression: 'severity', direction: 'DESC', value: (h) => h.severity },
    { expression: 'first_seen_at', direction: 'DESC', value: (h) => h.firstSeenAt.getTime() },
    { expression: 'id', direction: 'DESC', value: (h) => h.id },
  ],
};

const SELECT = HIT_COLUMNS.map((c) => c.sql).join(', ');

/** A ClickHouse row as a FlowHit (instants as Dates, as the entity has them). */
function toHit(r: Record<string, unknown>): FlowHit {
  const hit = new FlowHit();
  const target = hit as unknown as Record<string, unknown>;
  for (const c of HIT_COLUMNS) {
    const v = r[c.sql];
    target[c.key] = v == null ? null : c.codec === 'instant' ? new Date(Number(v)) : c.codec === 'text' ? String(v) : Number(v);
  }
  return hit;
}

/**
 * Rows per ClickHouse statement of the export: each a keyset batch, so memory stays flat. A batch arrives whole as
 * text (two at once: the next is read while one is formatted), so its size bounds the export's memory. At 1M hits
 * (bench/analytics.bench.ts, 250k rows exported) 20,000 grew the process by 115 MB at 207k rows/s; 5,000 by less
 * but each statement's fixed cost (~15 ms on chDB) then weighed 3 us a row (in a standalone run 184-230k rows/s
 * against 263-339k).
 */
export const ANALYTICS_EXPORT_BATCH = 20_000;

/**
 * The reads of individual hits with the analytics tier (ANALYTICS_URL): the drill-down (flowHits), a hit by ID,
 * an upload's hits and the export, from ClickHouse's flow_hit, each statement restricted to the account and to
 * the committed attempts (clickhouse-source.ts). ClickHouse failing is ANALYTICS_UNAVAILABLE.
 */
export class AnalyticsFlowHits {
  constructor(
    private readonly analytics: Analytics,
    private readonly dataSource: DataSource,
  ) {}

  /** The account's committed attempts; with a filter on verdicts, the mirror of them brought up to SQL's first. */
  private async committed(accountId: number, f?: ResolvedHitFilter): Promise<CommittedAttempt[]> {
    if (!this.analytics.ready) throw analyticsUnavailable(new Error('the analytics tables are not migrated yet'));
    if (f?.triageStatuses !== undefined) await syncTriage(this.analytics.client, this.dataSource, accountId);
    return committedAttempts(this.dataSource.manager, accountId);
  }

  /** One upload's committed attempt (none or one), not the account's every upload's: a read of one upload. */
  private async committedOf(uploadId: number): Promise<CommittedAttempt[]> {
    if (!this.analytics.ready) throw analyticsUnavailable(new Error('the analytics tables are not migrated yet'));
    const attempt = await committedAttempt(this.dataSource.manager, uploadId);
    return attempt === null ? [] : [{ uploadId, attempt }];
  }

  /** The drill-down, a keyset page at a time (no OFFSET: page 50 costs what page 1 does), as FlowHitService.search. */
  async search(f: ResolvedHitFilter, order: FlowHitOrder, page: KeysetPage): Promise<ConnectionData<FlowHit>> {
    const committed = await this.committed(f.accountId, f);
    return this.paginate(`hits:${order}`, ORDERS[order], page, (p) => hitWhere(f, committed, p));
  }

  /** The hits of one upload, in capture order (LogUpload.hits). */
  async ofUpload(accountId: number, uploadId: number, page: KeysetPage): Promise<ConnectionData<FlowHit>> {
    const committed = await this.committedOf(uploadId);
    return this.paginate('uploadhits', ORDERS[FlowHitOrder.FIRST_SEEN_ASC], page, (p) => {
      Object.assign(p.values, committedParams(committed));
      return `account_id = ${p.add(accountId, 'UInt64')} AND upload_id = ${p.add(uploadId, 'UInt64')} AND ${COMMITTED_READ}`;
    });
  }

  /**
   * How many hits of one upload's committed attempt pass `where` (column conditions of the hitsFound filter), and
   * their worst severity: the hitsFound subscription's event with the tier on.
   */
  async uploadSummary(
    accountId: number,
    uploadId: number,
    where: { minSeverity?: number | null; deviceIds?: number[] | null; directions?: string[] | null },
  ): Promise<{ hits: number; maxSeverity: number | null }> {
    const committed = await this.committedOf(uploadId);
    if (committed.length === 0) return { hits: 0, maxSeverity: null };
    const p = new ChParams();
    const terms = [
      `account_id = ${p.add(accountId, 'UInt64')}`,
      `upload_id = ${p.add(uploadId, 'UInt64')}`,
      `attempt = ${p.add(committed[0].attempt, 'UInt32')}`,
    ];
    if (where.minSeverity != null) terms.push(`severity >= ${p.add(where.minSeverity, 'Int32')}`);
    if (where.deviceIds) terms.push(where.deviceIds.length ? `device_id IN ${p.add(where.deviceIds, 'Array(UInt64)')}` : '0');
    if (where.directions?.length) terms.push(`direction IN ${p.add(where.directions, 'Array(String)')}`);
    const [row] = await chRows<{ n: number | string; s: number | string | null }>(
      this.analytics.client,
      `SELECT count() AS n, if(count() = 0, NULL, max(severity)) AS s FROM ${HITS_TABLE} WHERE ${terms.join(' AND ')}`,
      p.values,
    );
    return { hits: Number(row?.n ?? 0), maxSeverity: row?.s == null ? null : Number(row.s) };
  }

  /** Hits by ID, in the order asked (null: not this account's, or not of a committed attempt). */
  async findMany(accountId: number, ids: readonly number[]): Promise<(FlowHit | null)[]> {
    if (ids.length === 0) return [];
    const committed = await this.committed(accountId);
    const p = new ChParams();
    Object.assign(p.values, committedParams(committed));
    const rows = await chRows<Record<string, unknown>>(
      this.analytics.client,
      `SELECT ${SELECT} FROM ${HITS_TABLE} WHERE account_id = ${p.add(accountId, 'UInt64')} AND id IN ${p.add([...ids], 'Array(UInt64)')} AND ${COMMITTED_READ}`,
      p.values,
    );
    const byId = new Map(rows.map((r) => [Number(r.id), toHit(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  private async paginate(tag: string, keys: ChSortKey[], page: KeysetPage, where: (p: ChParams) => string): Promise<ConnectionData<FlowHit>> {
    const limit = pageSize(page.first);
    const p = new ChParams();
    const conditions = [where(p)];
    if (page.after != null) {
      const values = decodeCursor(page.after, tag, keys.length);
      if (!values) throw badUserInput('"after" is not a cursor from this list.');
      const v = values.map((x) => p.add(x, typeof x === 'number' ? 'Int64' : 'String'));
      conditions.push(
        `(${keys
          .map((_, i) => {
            const equal = keys.slice(0, i).map((k, j) => `${k.expression} = ${v[j]}`);
            return `(${[...equal, `${keys[i].expression} ${keys[i].direction === 'ASC' ? '>' : '<'} ${v[i]}`].join(' AND ')})`;
          })
          .join(' OR ')})`,
        // The first key bounded alone as well: a plain range on the table's order.
        `${keys[0].expression} ${keys[0].direction === 'ASC' ? '>=' : '<='} ${v[0]}`,
      );
    }
    const orderBy = orderByOf(keys);
    // One statement: ClickHouse reads the table in the page's order (the sort key after account_id) and stops at
    // the limit, reading the other columns only for the rows the filter keeps (PREWHERE). Two statements (the
    // page's keys, then its rows by id) took twice as long at 1M hits: 32 ms p50 against 21 for page 1, 36 against
    // 23 for a one-device, severity >= 4 page (bench/analytics.bench.ts).
    const rows = await chRows<Record<string, unknown>>(
      this.analytics.client,
      `SELECT ${SELECT} FROM ${HITS_TABLE} WHERE ${conditions.join(' AND ')} ORDER BY ${orderBy} LIMIT ${limit + 1}`,
      p.values,
    );
    const hits = rows.map(toHit);
    const hasNextPage = hits.length > limit;
    const edges = (hasNextPage ? hits.slice(0, limit) : hits).map((node) => ({
      node,
      cursor: encodeCursor(
        tag,
        keys.map((k) => k.value(node)),
      ),
    }));
    const countWhere = (q: ChParams) => where(q);
    return {
      edges,
      pageInfo: { hasNextPage, hasPreviousPage: page.after != null, startCursor: edges[0]?.cursor ?? null, endCursor: edges[edges.length - 1]?.cursor ?? null },
      countTotal: async () => {
        const q = new ChParams();
        const [r] = await chRows<{ n: number }>(this.analytics.client, `SELECT count() AS n FROM ${HITS_TABLE} WHERE ${countWhere(q)}`, q.values);
        return Number(r?.n ?? 0);
      },
    };
  }

  /**
   * The export's rows (hit-export.ts formats them): every committed hit of the account matching `f`, in
   * (first_seen_at, id) order, as ClickHouse's TabSeparated text of the exported columns (`columns`, in order), in
   * keyset batches of `batchSize` rows (one statement each, so memory stays flat however many rows there are).
   * Text, not parsed rows: the formatter turns fields into cells without decoding most of them (ExportLines.tsv),
   * where JSONCompactEachRow's per-row parse was about a third of the export's time.
   */
  async *exportRows(f: ResolvedHitFilter, batchSize = ANALYTICS_EXPORT_BATCH): AsyncGenerator<{ columns: string[]; tsv: string; rows: number }> {
    const committed = await this.committed(f.accountId, f);
    const columns = EXPORTED_COLUMNS.map((c) => c.sql);
    const at = columns.indexOf('first_seen_at');
    const idAt = columns.indexOf('id');
    const batch = (after: { at: number; id: number } | null): Promise<string> => {
      const p = new ChParams();
      // After a batch the window starts at the cursor's instant: one range on the table's order.
      const where = hitWhere(after ? { ...f, from: Math.max(f.from, after.at) } : f, committed, p);
      const cursor = after ? ` AND (first_seen_at > ${p.add(after.at, 'Int64')} OR id > ${p.add(after.id, 'UInt64')})` : '';
      const text = this.tsvText(
        `SELECT ${columns.join(', ')} FROM ${HITS_TABLE} WHERE ${where}${cursor} ORDER BY account_id, first_seen_at, ${ID_ORDER.ASC} LIMIT ${Number(batchSize)}`,
        p.values,
      );
      // Awaited below, or dropped when the caller stops early: never an unhandled rejection.
      text.catch(() => undefined);
      return text;
    };
    let next: Promise<string> | null = batch(null);
    while (next) {
      const tsv: string = await next;
      next = null;
      const rows = lineCount(tsv);
      // The next batch is asked for before this one is handed over: ClickHouse reads it (in its own threads) while
      // the caller formats and sends this one. One batch ahead, so memory stays that of two batches.
      if (rows === batchSize) {
        const last = tsv.slice(tsv.lastIndexOf('\n', tsv.length - 2) + 1, -1).split('\t');
        next = batch({ at: Number(last[at]), id: Number(last[idAt]) });
      }
      if (rows > 0) yield { columns, tsv, rows };
    }
  }

  /**
   * A statement's rows as TabSeparated text. A server answers only once the statement has finished
   * (wait_end_of_query), so a failure part-way is an error, never rows followed by an error message.
   */
  private async tsvText(query: string, params: Record<string, unknown>): Promise<string> {
    try {
      const result = await this.analytics.client.query({
        query,
        query_params: params,
        format: 'TabSeparated',
        clickhouse_settings: { wait_end_of_query: 1 },
      });
      return await result.text();
    } catch (err) {
      throw analyticsUnavailable(err);
    }
  }
}

/** The lines of a TabSeparated result (each ends with a newline; values escape theirs). */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
