import { DataSource } from 'typeorm';
import { FlowHit } from '../../flow-hit/flow-hit.entity';
import { EXPORTED_COLUMNS } from '../../flow-hit/flow-hit.columns';
import { IocList } from '../../ioc/ioc-list.entity';
import { Device } from '../../device/device.entity';
import { applyHitFilter, ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { dialectOf } from '../../../db/bulk';
import { sqliteHandle } from '../../../db/sqlite-handle';
import { ANALYTICS_EXPORT_BATCH, AnalyticsFlowHits } from '../../analytics/analytics-flow-hits';
import { EXPORT_COLUMNS, ExportFormat, ExportLines, ExportRow, exportLineFormatter } from './export-format';

export { EXPORT_COLUMNS } from './export-format';

/**
 * Rows per batch (one keyset statement on SQLite, one socket write, then a turn of the event loop): at 1M hits,
 * with each statement seeking to its cursor, 1000 to 5000 measured alike on SQLite (10000 was no faster and holds
 * twice the memory). The batch is also how long other requests wait during an export on SQLite: the loop's
 * median stall was 26 ms at 5000 rows and 14 ms at 2000, for the same total time.
 */
export const EXPORT_BATCH = 2_000;

/** A batch of raw rows as arrays, and the column names in their order. */
interface RowArrays {
  columns: string[];
  rows: ExportRow[];
}

/** The export's SQL for the first batch (`after` null) or the batch after a (first_seen_at, id) cursor. */
type ExportQuery = (after: { at: number; id: number } | null) => [string, unknown[]];

/**
 * SQLite: keyset batches on the service's connection, each a better-sqlite3 raw-mode statement (a 23-key object
 * per row took as long as the query) in a transaction, so it takes its turn like any other statement
 * (sqlite-serializer.ts). A statement held open across the export would need a connection of its own (an
 * in-memory database has none) and would pin one WAL snapshot for the whole download, so no checkpoint could
 * get past it while hits are ingested.
 */
async function* sqliteBatches(dataSource: DataSource, query: ExportQuery, batchSize: number): AsyncGenerator<RowArrays> {
  const db = sqliteHandle(dataSource)!;
  let after: { at: number; id: number } | null = null;
  for (;;) {
    const [sql, params] = query(after);
    dataSource.logger.logQuery(sql, params);
    const { columns, rows } = await dataSource.transaction(async () => {
      const stmt = db.prepare(sql).raw(true);
      return { columns: stmt.columns().map((c) => c.name), rows: stmt.all(...params) as ExportRow[] };
    });
    if (rows.length > 0) yield { columns, rows };
    if (rows.length < batchSize) return;
    const last = rows[rows.length - 1];
    after = { at: Number(last[columns.indexOf('first_seen_at')]), id: Number(last[columns.indexOf('id')]) };
  }
}
/**
 * How long a download may wait on a client that takes nothing before it is cut (export-route.ts), so that its slot,
 * and on MySQL its connection, are given back; and MySQL on the stalled statement (its default is 60 s).
 */
export const EXPORT_STALL_MS = 3_600_000;
const MYSQL_WRITE_TIMEOUT_S = EXPORT_STALL_MS / 1000;

/**
 * MySQL: ONE statement for the whole window, its rows read as they arrive (mysql2 rowsAsArray) and handed out
 * in batches of `batchSize`. Keyset batches re-planned every LIMIT: MariaDB 10.11 then picked `ref` on
 * account_id alone for the ORDER BY ... LIMIT and walked the index from the account's first hit each time
 * (~4x the server CPU of one pass at 1M hits). Backpressure: the connection is paused (mysql2 holds the
 * packets, the server blocks on its socket) while a batch is read ahead and not yet taken; net_write_timeout
 * is raised so a slow client does not make the server drop the statement after a minute.
 * The connection comes from the pool; one left mid-result (client gone, error) is destroyed, not released.
 */
async function* mysqlBatches(dataSource: DataSource, [sql, params]: [string, unknown[]], batchSize: number): AsyncGenerator<RowArrays> {
  const conn = await (dataSource.driver as unknown as { obtainMasterConnection(): Promise<MysqlPoolConnection> }).obtainMasterConnection();
  let finished = false;
  try {
    await conn.promise().query(`SET SESSION net_write_timeout = ${MYSQL_WRITE_TIMEOUT_S}`);
    dataSource.logger.logQuery(sql, params);
    let columns: string[] = [];
    let current: ExportRow[] = [];
    const ready: ExportRow[][] = [];
    let ended = false;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    conn
      .query({ sql, rowsAsArray: true }, params)
      .on('fields', (fields: Array<{ name: string }>) => (columns = fields.map((f) => f.name)))
      .on('result', (row: ExportRow) => {
        current.push(row);
        if (current.length < batchSize) return;
        ready.push(current);
        current = [];
        // A full batch waits while the consumer formats and sends the one before: the socket pauses until it is taken.
        conn.pause();
        notify();
      })
      .on('error', (err: Error) => {
        failure = err;
        notify();
      })
      .on('end', () => {
        ended = true;
        notify();
      });
    for (;;) {
      while (ready.length === 0 && !ended && !failure) await new Promise<void>((resolve) => (wake = resolve));
      if (failure) throw failure;
      const rows = ready.shift() ?? (ended ? current.splice(0) : []);
      if (ready.length === 0 && !ended) conn.resume();
      if (rows.length > 0) yield { columns, rows };
      if (ended && ready.length === 0 && current.length === 0) break;
    }
    finished = true;
    await conn.promise().query('SET SESSION net_write_timeout = DEFAULT');
  } finally {
    if (finished) conn.release();
    else {
      // destroy() alone only half-closes the paused socket: the server would stay blocked sending the rest of the
      // result (for up to net_write_timeout). Resetting the socket makes it abandon the statement at once.
      conn.destroy();
      conn.stream.destroy();
    }
  }
}
interface MysqlQuery {
  on(event: string, listener: (...args: never[]) => void): MysqlQuery;
}
interface MysqlPoolConnection {
  query(options: { sql: string; rowsAsArray: boolean }, params: unknown[]): MysqlQuery;
  promise(): { query(sql: string): Promise<unknown> };
  pause(): void;
  resume(): void;
  release(): void;
  destroy(): void;
  stream: { destroy(): void };
}

/** One export: the CSV header line (empty for NDJSON), then the formatted lines batch by batch. */
export interface HitExport {
  header: string;
  batches: AsyncGenerator<{ lines: Buffer; rows: number }>;
}

/**
 * Every hit of the account matching the filter, in (first_seen_at, id) order, formatted as export-format.ts
 * says, in batches of `batchSize` read with backpressure (keyset statements on SQLite, one statement read as it
 * arrives on MySQL; keyset statements on ClickHouse with `analytics`), so memory stays flat however many rows there are. End the generator (return()) to let go
 * of the reader early.
 */
export async function exportHits(
  dataSource: DataSource,
  accountId: number,
  filter: ResolvedHitFilter,
  format: ExportFormat,
  batchSize = EXPORT_BATCH,
  analytics: AnalyticsFlowHits | null = null,
): Promise<HitExport> {
  const [devices, lists] = await Promise.all([
    dataSource.getRepository(Device).find({ where: { accountId }, select: { id: true, nickname: true } }),
    dataSource.getRepository(IocList).find({ where: { accountId }, select: { id: true, name: true } }),
  ]);
  const names = { Device: new Map(devices.map((d) => [d.id, d.nickname])), IocList: new Map(lists.map((l) => [l.id, l.name])) };
  const sqlite = dialectOf(dataSource.manager) === 'sqlite';
  // Raw rows, not entities: hydrating FlowHit cost more than the query itself.
  const query: ExportQuery = (after) => {
    // After a batch the window starts at the cursor's instant: one lower bound on first_seen_at, which the
    // (account, first_seen_at, id) index seeks to. Given both `>= from` and `>= cursor`, SQLite seeks on the
    // first and walks the index from the window's start on every batch (at 1M hits: ~120 ms a batch late in
    // the window instead of ~30). The OR then settles ties at the cursor's instant.
    const qb = applyHitFilter(dataSource.getRepository(FlowHit).createQueryBuilder('h'), after ? { ...filter, from: Math.max(filter.from, after.at) } : filter);
    if (after) qb.andWhere('(h.firstSeenAt > :afterAt OR h.id > :afterId)', { afterAt: after.at, afterId: after.id });
    const [first, ...rest] = EXPORTED_COLUMNS;
    qb.select(`h.${first.key}`, first.sql);
    for (const c of rest) qb.addSelect(`h.${c.key}`, c.sql);
    qb.orderBy('h.firstSeenAt', 'ASC').addOrderBy('h.id', 'ASC');
    if (sqlite) qb.limit(batchSize);
    return qb.getQueryAndParameters();
  };
  // With the analytics tier, from ClickHouse in its own keyset batches (ANALYTICS_EXPORT_BATCH: flat memory); a
  // caller's own size (a test's) applies as given.
  const rows = analytics
    ? analytics.exportRows(filter, batchSize === EXPORT_BATCH ? ANALYTICS_EXPORT_BATCH : batchSize)
    : sqlite
      ? sqliteBatches(dataSource, query, batchSize)
      : mysqlBatches(dataSource, query(null), batchSize);
  async function* batches(): AsyncGenerator<{ lines: Buffer; rows: number }> {
    let lines: ExportLines | null = null;
    try {
      for await (const batch of rows) {
        lines ??= exportLineFormatter(format, names, batch.columns);
        yield 'tsv' in batch ? { lines: lines.tsv(batch.tsv), rows: batch.rows } : { lines: lines.lines(batch.rows), rows: batch.rows.length };
      }
    } finally {
      await rows.return(undefined);
    }
  }
  return { header: format === 'csv' ? `${EXPORT_COLUMNS.join(',')}\n` : '', batches: batches() };
}
