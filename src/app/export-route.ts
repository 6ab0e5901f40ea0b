import { Request, Response, Router } from 'express';
import { GraphQLError } from 'graphql';
import { DataSource } from 'typeorm';
import { Direction, TransportProtocol } from '../modules/flow-hit/flow-hit.enums';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { IocCategory } from '../modules/ioc/ioc.enums';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Device } from '../modules/device/device.entity';
import { READ_ROLES } from '../modules/auth/auth.types';
import { applyHitFilter, resolveHitFilter, ResolvedHitFilter } from '../modules/report/hit-filter';
import { HitFilter } from '../modules/report/hit-filter.inputs';
import { TimeRangePreset } from '../modules/report/report.enums';
import { dialectOf } from '../db/bulk';
import { bearerToken } from './context';
import { EXPORT_COLUMNS, EXPORT_SQL_COLUMNS, ExportLines, ExportRow, exportLineFormatter } from './export-format';
import { Logger } from './logger';
import { requestLogOf } from './request-log';
import { Services } from './services';

export { EXPORT_COLUMNS } from './export-format';

/** Rows per keyset batch: at 1M hits on SQLite, 2000 was clearly slower (per-batch cost); 10000 no faster, twice the memory. */
export const EXPORT_BATCH = 5_000;

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

/**
 * One batch as arrays. SQLite: better-sqlite3's raw mode (a 23-key object per row took as long as the query),
 * in a transaction so it takes its turn like any other statement (sqlite-serializer.ts). MySQL: mysql2's
 * rowsAsArray on a pool connection of its own, so the next batch is read while this one is sent.
 */
async function queryArrays(dataSource: DataSource, sql: string, params: unknown[]): Promise<RowArrays> {
  dataSource.logger.logQuery(sql, params);
  if (dialectOf(dataSource.manager) === 'sqlite') {
    const db = (dataSource.driver as unknown as { databaseConnection: SqliteHandle }).databaseConnection;
    return dataSource.transaction(async () => {
      const stmt = db.prepare(sql).raw(true);
      return { columns: stmt.columns().map((c) => c.name), rows: stmt.all(...params) as ExportRow[] };
    });
  }
  const conn = await (dataSource.driver as unknown as { obtainMasterConnection(): Promise<MysqlPoolConnection> }).obtainMasterConnection();
  try {
    const [rows, fields] = await conn.promise().query({ sql, rowsAsArray: true }, params);
    return { columns: fields.map((f) => f.name), rows: rows as ExportRow[] };
  } finally {
    conn.release();
  }
}
interface SqliteHandle {
  prepare(sql: string): { raw(on: boolean): { columns(): Array<{ name: string }>; all(...params: unknown[]): unknown[] } };
}
interface MysqlPoolConnection {
  promise(): { query(options: { sql: string; rowsAsArray: boolean }, params: unknown[]): Promise<[unknown, Array<{ name: string }>]> };
  release(): void;
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
 * GET /export/flow-hits.csv and .ndjson: every hit matching the filter, streamed in keyset batches with
 * backpressure, so memory stays flat however many rows there are.
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
    // Raw rows, not entities: hydrating FlowHit cost more than the query itself.
    const fetchBatch = (after: { at: number; id: number } | null): Promise<RowArrays> => {
      const qb = applyHitFilter(services.dataSource.getRepository(FlowHit).createQueryBuilder('h'), filter);
      // `>=` first: the window's lower bound moves to the cursor, a range the (account, first_seen_at) index seeks to.
      if (after) qb.andWhere('h.firstSeenAt >= :afterAt AND (h.firstSeenAt > :afterAt OR h.id > :afterId)', { afterAt: after.at, afterId: after.id });
      const [first, ...rest] = EXPORT_SQL_COLUMNS;
      qb.select(`h.${first}`, first);
      for (const c of rest) qb.addSelect(`h.${c}`, c);
      qb.orderBy('h.firstSeenAt', 'ASC').addOrderBy('h.id', 'ASC').limit(batchSize);
      const [sql, params] = qb.getQueryAndParameters();
      return queryArrays(services.dataSource, sql, params);
    };
    let rows = 0;
    let pending: Promise<RowArrays> | null = null;
    let lines: ExportLines | null = null;
    try {
      pending = fetchBatch(null);
      while (pending) {
        const { columns, rows: batch } = await pending;
        pending = null;
        if (closed || batch.length === 0) break;
        lines ??= exportLineFormatter(format, deviceName, listName, columns);
        if (batch.length === batchSize) {
          // The next batch is read while this one is formatted and sent (MySQL runs it meanwhile).
          pending = fetchBatch(lines.cursor(batch[batch.length - 1]));
          // Awaited on the next turn; if the client leaves first, this keeps its failure from going unhandled.
          pending.catch(() => undefined);
        }
        let text = '';
        for (let i = 0; i < batch.length; i++) text += lines.line(batch[i]);
        rows += batch.length;
        if (!res.write(text)) await drainOrClose(res);
      }
    } catch (err) {
      logger.error({ err }, 'export failed');
      // Headers are sent: cut the stream so the client sees an incomplete download, not a short "complete" one.
      res.destroy();
      return;
    }
    logger.info({ event: 'export.finished', requestId: log?.requestId, rows, format, accountId: caller.accountId }, 'export finished');
    res.end();
  });
  return router;
}
