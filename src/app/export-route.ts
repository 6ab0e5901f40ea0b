import { Request, Response, Router } from 'express';
import { parse as parseQueryString } from 'node:querystring';
import { FoundBy } from '../modules/retro-hunt/retro-hunt.enums';
import { GraphQLError } from 'graphql';
import { Direction, HitKind, TimeRangePreset, TransportProtocol } from '../modules/flow-hit/flow-hit.enums';
import { IocCategory } from '../modules/ioc/ioc.enums';
import { READ_ROLES } from '../modules/auth/auth.types';
import { flowHitsOnly, resolveHitFilter, ResolvedHitFilter } from '../modules/flow-hit/hit-filter';
import { TriageStatus } from '../modules/flow-hit/hit-triage.enums';
import { HitFilter } from '../modules/flow-hit/hit-filter.inputs';
import { EXPORT_BATCH, EXPORT_STALL_MS, exportHits, HitExport } from '../modules/report/export/hit-export';
import { exportDnsHits } from '../modules/report/export/dns-hit-export';
import { nextTurn } from '../common/async/next-turn';
import { bearerToken } from './context';
import { Logger } from './logger';
import { requestLogOf } from './request-log';
import { Services } from './services';
import { Overloaded } from './admission';

/**
 * Resolves on 'drain' or 'close', whichever comes first, and then removes both listeners: a long export waits
 * thousands of times, and `once` on both would leave one listener behind per wait. A client that takes nothing for
 * `stallMs` would hold its download's slot for good: the response is destroyed (the client sees an incomplete
 * download), which closes it.
 */
function drainOrClose(res: Response, stallMs: number): Promise<void> {
  return new Promise((resolve) => {
    const stalled = setTimeout(() => res.destroy(), stallMs);
    const done = () => {
      clearTimeout(stalled);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
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
  if (Number.isNaN(d.getTime()))
    throw new GraphQLError(`${name}: "${String(v).slice(0, 40)}" is not an ISO date-time.`, { extensions: { code: 'BAD_USER_INPUT' } });
  return d;
};
const oneOf = <T extends string>(values: Record<string, T>, v: unknown, name: string): T[] | undefined =>
  many(v)?.map((x) => {
    if (!Object.values(values).includes(x as T))
      throw new GraphQLError(`${name}: must be one of ${Object.values(values).join(', ')}.`, { extensions: { code: 'BAD_USER_INPUT' } });
    return x as T;
  });

/** The query parameters filterFromQuery reads, each with the HitFilter field it fills. */
const PARAMETERS: Record<string, keyof HitFilter> = {
  kind: 'kind',
  from: 'from',
  to: 'to',
  preset: 'preset',
  device: 'devices',
  direction: 'directions',
  minSeverity: 'minSeverity',
  severity: 'severities',
  iocList: 'iocLists',
  category: 'categories',
  internal: 'internalAddress',
  external: 'externalAddress',
  port: 'destinationPorts',
  excludePort: 'excludeDestinationPorts',
  protocol: 'protocols',
  foundBy: 'foundBy',
  foundSince: 'foundSince',
  triageStatus: 'triageStatuses',
};

/**
 * A parameter the export does not know is refused, not ignored: a misspelt filter (`minseverity`, `directions`)
 * would otherwise export every hit of the window. The message names the parameter and, when it is another
 * spelling of one (its case, or the GraphQL field's name), that one.
 */
function refuseUnknown(q: Request['query']): void {
  for (const name of Object.keys(q)) {
    if (Object.hasOwn(PARAMETERS, name)) continue;
    const lower = name.toLowerCase();
    const meant = Object.keys(PARAMETERS).find((p) => p.toLowerCase() === lower || PARAMETERS[p].toLowerCase() === lower);
    throw new GraphQLError(
      `Unknown query parameter "${name.slice(0, 40)}"${meant ? ` (did you mean "${meant}"?)` : ''}; the export takes ${Object.keys(PARAMETERS).join(', ')}.`,
      { extensions: { code: 'BAD_USER_INPUT' } },
    );
  }
}

/**
 * Every query parameter of the request. Express's parser keeps the first 1000 and drops the rest without a word, so a
 * filter given after 1000 ports would be left out of the export; the request line's size bounds how many there are.
 */
function queryOf(req: Request): Request['query'] {
  const at = req.originalUrl.indexOf('?');
  return at < 0 ? {} : parseQueryString(req.originalUrl.slice(at + 1), '&', '=', { maxKeys: 0 });
}

/**
 * The HitFilter from query parameters (same names as the GraphQL input, singular names repeatable, the addresses
 * `internal` and `external`); an unknown parameter is refused.
 */
export function filterFromQuery(q: Request['query']): HitFilter {
  refuseUnknown(q);
  const preset = oneOf(TimeRangePreset, q.preset, 'preset')?.[0];
  const one = (v: unknown) => (v === undefined ? undefined : String(Array.isArray(v) ? v[0] : v));
  return {
    kind: oneOf(HitKind, q.kind, 'kind')?.[0],
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
    foundBy: oneOf(FoundBy, q.foundBy, 'foundBy'),
    foundSince: date(q.foundSince, 'foundSince'),
    triageStatuses: oneOf(TriageStatus, q.triageStatus, 'triageStatus'),
  };
}

/**
 * GET /export/flow-hits.csv and .ndjson, /export/dns-hits.csv and .ndjson: an adapter over the report module's
 * exports (exportHits, exportDnsHits): the API key, the filter from query parameters, the headers, and the
 * batches written with backpressure.
 */
export function exportRouter(services: Services, logger: Logger, batchSize = EXPORT_BATCH, stallMs = EXPORT_STALL_MS): Router {
  const router = Router();
  router.get(/^\/export\/(flow|dns)-hits\.(csv|ndjson)$/, async (req: Request, res: Response) => {
    const dns = (req.params as Record<string, string>)[0] === 'dns';
    const format = (req.params as Record<string, string>)[1] === 'csv' ? 'csv' : 'ndjson';
    const what = dns ? 'dns-hits' : 'flow-hits';
    const token = bearerToken(req.headers.authorization);
    const caller = token ? await services.accounts.authenticate(token) : null;
    if (!caller) return void res.status(401).json({ error: 'A valid API key is required: send "Authorization: Bearer <key>".', code: 'UNAUTHENTICATED' });
    const log = requestLogOf(res);
    if (log) Object.assign(log, { accountId: caller.accountId, apiKeyId: caller.apiKeyId });
    if (!READ_ROLES.includes(caller.role)) return void res.status(403).json({ error: "Your API key's role may not do this.", code: 'FORBIDDEN' });
    let filter: ResolvedHitFilter;
    try {
      const given = filterFromQuery(queryOf(req));
      filter = dns
        ? resolveHitFilter(caller.accountId, { ...given, kind: HitKind.DNS })
        : flowHitsOnly(resolveHitFilter(caller.accountId, given), '/export/dns-hits.csv (or .ndjson)');
    } catch (err) {
      if (err instanceof GraphQLError) return void res.status(400).json({ error: err.message, code: 'BAD_USER_INPUT' });
      throw err;
    }
    // After the cheap refusals, before any database work: a download holds its slot until it ends or the client leaves.
    let release: () => void;
    let gone = false;
    const leaving = () => (gone = true);
    res.once('close', leaving);
    try {
      release = await services.exportAdmission.acquire();
    } catch (err) {
      if (!(err instanceof Overloaded)) throw err;
      res.setHeader('retry-after', String(err.retryAfterSeconds));
      return void res.status(503).json({
        error: `The server is busy with other exports; nothing was sent. Retry in ${err.retryAfterSeconds} s.`,
        code: 'OVERLOADED',
        reason: err.reason,
      });
    }
    res.off('close', leaving);
    // The client left while it waited: its slot goes to the next.
    if (gone) return release();
    res.once('close', release);
    const { header, batches }: HitExport = dns
      ? await exportDnsHits(services.dataSource, caller.accountId, filter, format, batchSize)
      : await exportHits(services.dataSource, caller.accountId, filter, format, batchSize, services.analyticsFlowHits);
    // The next batch is read while this one is sent (MySQL runs it meanwhile).
    let pending = batches.next();
    pending.catch(() => undefined);
    if (services.analyticsFlowHits && !dns) {
      // From ClickHouse, the first batch before the status: ClickHouse down is a 503 to retry, not a cut 200.
      try {
        await pending;
      } catch (err) {
        if (!(err instanceof GraphQLError && err.extensions.code === 'ANALYTICS_UNAVAILABLE')) throw err;
        logger.warn({ err: (err as { cause?: unknown }).cause, event: 'export.analytics_unavailable' }, 'export refused: ClickHouse unavailable');
        res.setHeader('retry-after', '5');
        return void res.status(503).json({ error: err.message, code: 'ANALYTICS_UNAVAILABLE' });
      }
    }
    res.status(200);
    res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="${what}.${format}"`);
    let closed = false;
    res.on('close', () => (closed = true));
    if (header) res.write(header);
    let rows = 0;
    try {
      for (;;) {
        const next = await pending;
        if (next.done || closed) break;
        pending = batches.next();
        // Awaited on the next turn; if the client leaves first, this keeps its failure from going unhandled.
        pending.catch(() => undefined);
        rows += next.value.rows;
        if (!res.write(next.value.lines)) await drainOrClose(res, stallMs);
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
