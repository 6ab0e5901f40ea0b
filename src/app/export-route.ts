import { Request, Response, Router } from 'express';
import { GraphQLError } from 'graphql';
import { toGlobalId } from '../common/ids/global-id';
import { Direction, TransportProtocol } from '../modules/flow-hit/flow-hit.enums';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { IocCategory } from '../modules/ioc/ioc.enums';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Device } from '../modules/device/device.entity';
import { READ_ROLES } from '../modules/auth/auth.types';
import { applyHitFilter, resolveHitFilter, ResolvedHitFilter } from '../modules/report/hit-filter';
import { HitFilter } from '../modules/report/hit-filter.inputs';
import { TimeRangePreset } from '../modules/report/report.enums';
import { bearerToken } from './context';
import { Logger } from './logger';
import { requestLogOf } from './request-log';
import { Services } from './services';

/** Stable column names: scripts depend on them. Add at the end, never rename. */
export const EXPORT_COLUMNS = [
  'id',
  'first_seen_at',
  'last_seen_at',
  'device_id',
  'device',
  'upload_id',
  'direction',
  'protocol',
  'internal_ip',
  'internal_port',
  'external_ip',
  'external_port',
  'destination_port',
  'matched_side',
  'matched_ip',
  'matched_cidr',
  'ioc_id',
  'ioc_list_id',
  'ioc_list',
  'severity',
  'category',
  'packets_sent',
  'packets_received',
  'bytes_sent',
  'bytes_received',
] as const;

const BATCH = 2_000;

function csvCell(v: unknown): string {
  if (v == null) return '';
  const s = String(v);
  // Quote when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
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
export function exportRouter(services: Services, logger: Logger): Router {
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
    let after: { at: number; id: number } | null = null;
    let rows = 0;
    try {
      while (!closed) {
        const qb = applyHitFilter(services.dataSource.getRepository(FlowHit).createQueryBuilder('h'), filter);
        // `>=` first: the window's lower bound moves to the cursor, a range the (account, first_seen_at) index seeks to.
        if (after) qb.andWhere('h.firstSeenAt >= :afterAt AND (h.firstSeenAt > :afterAt OR h.id > :afterId)', { afterAt: after.at, afterId: after.id });
        const batch = await qb.orderBy('h.firstSeenAt', 'ASC').addOrderBy('h.id', 'ASC').limit(BATCH).getMany();
        if (batch.length === 0) break;
        const out = batch.map((h) => {
          const record = {
            id: toGlobalId('FlowHit', h.id),
            first_seen_at: h.firstSeenAt.toISOString(),
            last_seen_at: h.lastSeenAt.toISOString(),
            device_id: toGlobalId('Device', h.deviceId),
            device: deviceName.get(h.deviceId) ?? null,
            upload_id: toGlobalId('LogUpload', h.uploadId),
            direction: h.direction,
            protocol: h.protocol,
            internal_ip: h.internalIp,
            internal_port: h.internalPort,
            external_ip: h.externalIp,
            external_port: h.externalPort,
            destination_port: h.destinationPort,
            matched_side: h.matchedSide,
            matched_ip: h.matchedIp,
            matched_cidr: h.matchedCidr,
            ioc_id: toGlobalId('Ioc', h.iocId),
            ioc_list_id: toGlobalId('IocList', h.iocListId),
            ioc_list: listName.get(h.iocListId) ?? null,
            severity: h.severity,
            category: h.category,
            packets_sent: h.packetsForward,
            packets_received: h.packetsReverse,
            bytes_sent: h.bytesForward,
            bytes_received: h.bytesReverse,
          };
          return format === 'csv' ? EXPORT_COLUMNS.map((c) => csvCell(record[c])).join(',') : JSON.stringify(record);
        });
        rows += batch.length;
        const last = batch[batch.length - 1];
        after = { at: last.firstSeenAt.getTime(), id: last.id };
        if (!res.write(`${out.join('\n')}\n`)) await new Promise((resume) => (res.once('drain', resume), res.once('close', resume)));
        if (batch.length < BATCH) break;
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
