import { Request, Response, Router } from 'express';
import { GraphQLError } from 'graphql';
import { DataSource } from 'typeorm';
import { Direction, TimeRangePreset, TransportProtocol } from '../modules/flow-hit/flow-hit.enums';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { IocCategory } from '../modules/ioc/ioc.enums';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Device } from '../modules/device/device.entity';
import { READ_ROLES } from '../modules/auth/auth.types';
import { applyHitFilter, resolveHitFilter, ResolvedHitFilter } from '../modules/flow-hit/hit-filter';
import { HitFilter } from '../modules/flow-hit/hit-filter.inputs';
import { dialectOf } from '../db/bulk';
import { bearerToken } from './context';
import { EXPORT_COLUMNS, EXPORT_SQL_COLUMNS, ExportLines, ExportRow, exportLineFormatter } from './export-format';
import { nextTurn } from '../common/async/next-turn';
import { Logger } from './logger';
import { requestLogOf } from './request-log';
import { Services } from './services';
import { sqliteHandle } from '../db/sqlite-handle';

export { EXPORT_COLUMNS } from './export-format';

/**
 * Rows per batch (one keyset statement on SQLite, one socket write, then a turn of the event loop): at 1M hits,
 * with each statement seeking to its cursor, 1000 to 5000 measured alike on SQLite (10000 was no faster and holds
 * twice the memory). The batch is also how long other requests wait during an export on SQLite: the loop's
 * median stall was 26 ms at 5000 rows and 14 ms at 2000, for the same total time.
 */
export const EXPORT_BATCH = 2_000;

/**
 * Resolves on 'drain' or 'close', whichever comes first, and then removes both listeners: a long export waits
 * thousands of times, and `once` on both would leave one listener behind per wait.
 */
function drainOrClose(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

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
/** How long MySQL may wait on a stalled download before it gives up the statement (its default is 60 s). */
const MYSQL_WRITE_TIMEOUT_S = 3600;

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

const many = (v: unknown): string[] | undefined => (v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String));
const ints = (v: unknown, name: string): number[] | undefined => {
  const list = many(v);
  if (!list) return undefined;
  return list.map((x) => {
    if (!/^\d+$/.test(x)) throw new GraphQLError(`${name}: "${x.slice(0, 20)}" is not a whole number.`, { extensions: { code: 'BAD_USER_INPUT' } });
    return Number(x);
  });
};
const date = (v: unknown, name: string): Date | undefined => {
  if (v === undefined) return undefined;
  const d = new Date(String(v));
  if (Number.isNaN(d.getTime())) throw new GraphQLError(`${name}: "${String(v).slice(0, 40)}" is not an ISO date-time.`, { extensions: { code: 'BAD_USER_INPUT' } });
  return d;
};
const oneOf = <T extends string>(values: Record<string, T>, v: unknown, name: string): T[] | undefined =>
  many(v)?.map((x) => {
    if (!Object.values(values).includes(x as T)) throw new GraphQLError(`${name}: must be one of ${Object.values(values).join(', ')}.`, { extensions: { code: 'BAD_USER_INPUT' } });
    return x as T;
  });

/** The HitFilter from query parameters (same names as the GraphQL input, singular names repeatable). */
export function filterFromQuery(q: Request['query']): HitFilter {
  const preset = oneOf(TimeRangePreset, q.preset, 'preset')?.[0];
  const one = (v: unknown) => (v === undefined ? undefined : String(Array.isArray(v) ? v[0] : v));
  return {
    from: date(q.from, 'from'),
    to: date(q.to, 'to'),
    preset,
    devices: many(q.device),
    directions: oneOf(Direction, q.direction, 'direction'),
    minSeverity: ints(q.minSeverity, 'minSeverity')?.[0],
    severities: ints(q.severity, 'severity'),
    iocLists: many(q.iocList),
    categories: oneOf(IocCategory, q.category, 'category'),
    internalAddress: one(q.internal),
    externalAddress: one(q.external),
    destinationPorts: ints(q.port, 'port'),
    excludeDestinationPorts: ints(q.excludePort, 'excludePort'),
    protocols: oneOf(TransportProtocol, q.protocol, 'protocol'),
  };
}

/**
 * GET /export/flow-hits.csv and .ndjson: every hit matching the filter, streamed in batches with backpressure
 * (keyset statements on SQLite, one statement read as it arrives on MySQL), so memory stays flat however many
 * rows there are.
 */
export function exportRouter(services: Services, logger: Logger, batchSize = EXPORT_BATCH): Router {
  const router = Router();
  router.get(/^\/export\/flow-hits\.(csv|ndjson)$/, async (req: Request, res: Response) => {
    const format = (req.params as Record<string, string>)[0] === 'csv' ? 'csv' : 'ndjson';
    const token = bearerToken(req.headers.authorization);
    const caller = token ? await services.accounts.authenticate(token) : null;
    if (!caller) return void res.status(401).json({ error: 'A valid API key is required: send "Authorization: Bearer <key>".', code: 'UNAUTHENTICATED' });
    const log = requestLogOf(res);
    if (log) Object.assign(log, { accountId: caller.accountId, apiKeyId: caller.apiKeyId });
    if (!READ_ROLES.includes(caller.role)) return void res.status(403).json({ error: "Your API key's role may not do this.", code: 'FORBIDDEN' });
    let filter: ResolvedHitFilter;
    try {
      filter = resolveHitFilter(caller.accountId, filterFromQuery(req.query));
    } catch (err) {
      if (err instanceof GraphQLError) return void res.status(400).json({ error: err.message, code: 'BAD_USER_INPUT' });
      throw err;
    }
    const [devices, lists] = await Promise.all([
      services.dataSource.getRepository(Device).find({ where: { accountId: caller.accountId }, select: { id: true, nickname: true } }),
      services.dataSource.getRepository(IocList).find({ where: { accountId: caller.accountId }, select: { id: true, name: true } }),
    ]);
    const deviceName = new Map(devices.map((d) => [d.id, d.nickname]));
    const listName = new Map(lists.map((l) => [l.id, l.name]));
    res.status(200);
    res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="flow-hits.${format}"`);
    let closed = false;
    res.on('close', () => (closed = true));
    if (format === 'csv') res.write(`${EXPORT_COLUMNS.join(',')}\n`);
    const sqlite = dialectOf(services.dataSource.manager) === 'sqlite';
    // Raw rows, not entities: hydrating FlowHit cost more than the query itself.
    const query: ExportQuery = (after) => {
      // After a batch the window starts at the cursor's instant: one lower bound on first_seen_at, which the
      // (account, first_seen_at, id) index seeks to. Given both `>= from` and `>= cursor`, SQLite seeks on the
      // first and walks the index from the window's start on every batch (at 1M hits: ~120 ms a batch late in
      // the window instead of ~30). The OR then settles ties at the cursor's instant.
      const qb = applyHitFilter(services.dataSource.getRepository(FlowHit).createQueryBuilder('h'), after ? { ...filter, from: Math.max(filter.from, after.at) } : filter);
      if (after) qb.andWhere('(h.firstSeenAt > :afterAt OR h.id > :afterId)', { afterAt: after.at, afterId: after.id });
      const [first, ...rest] = EXPORT_SQL_COLUMNS;
      qb.select(`h.${first}`, first);
      for (const c of rest) qb.addSelect(`h.${c}`, c);
      qb.orderBy('h.firstSeenAt', 'ASC').addOrderBy('h.id', 'ASC');
      if (sqlite) qb.limit(batchSize);
      return qb.getQueryAndParameters();
    };
    const batches = sqlite ? sqliteBatches(services.dataSource, query, batchSize) : mysqlBatches(services.dataSource, query(null), batchSize);
    let rows = 0;
    let lines: ExportLines | null = null;
    // The next batch is read while this one is formatted and sent (MySQL runs it meanwhile).
    let pending = batches.next();
    try {
      for (;;) {
        const next = await pending;
        if (next.done || closed) break;
        pending = batches.next();
        // Awaited on the next turn; if the client leaves first, this keeps its failure from going unhandled.
        pending.catch(() => undefined);
        const { columns, rows: batch } = next.value;
        lines ??= exportLineFormatter(format, deviceName, listName, columns);
        rows += batch.length;
        if (!res.write(lines.lines(batch))) await drainOrClose(res);
        // A turn of the event loop per batch. SQLite's batches are synchronous, and a socket that takes a write
        // at once emits 'drain' on process.nextTick: without this the whole download ran in one turn (8 s at 1M
        // rows, measured), and no other request was read or answered until it ended.
        await nextTurn();
      }
    } catch (err) {
      logger.error({ err }, 'export failed');
      // Headers are sent: cut the stream so the client sees an incomplete download, not a short "complete" one.
      res.destroy();
      return;
    } finally {
      // Client gone or an error: end the reader (after the batch it may be reading), so MySQL's connection is let go.
      void batches.return(undefined).catch(() => undefined);
    }
    logger.info({ event: 'export.finished', requestId: log?.requestId, rows, format, accountId: caller.accountId }, 'export finished');
    res.end();
  });
  return router;
}
