import crypto from 'node:crypto';
import { ApolloServerPlugin } from '@apollo/server';
import { NextFunction, Request, Response } from 'express';
import type { RequestContext } from './context';
import { Logger } from './logger';
import { Metrics } from './metrics';
import { EXPLORER_ASSETS_PATH } from './explorer';

/** What the request's line says beyond method, route, status and time; routes and the GraphQL plugin fill it in. */
export interface RequestLog {
  requestId: string;
  accountId: number | null;
  apiKeyId: number | null;
  operationName: string | null;
  operationType: string | null;
}

/** A client's X-Request-Id is kept when it is a plain token (it ends up in logs); otherwise one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** Routes named in logs and metrics; anything else is "other" so clients cannot grow the label set. */
const ROUTES = new Set([
  '/graphql',
  '/logupload',
  '/cgi-bin/logupload.pl',
  '/export/flow-hits.csv',
  '/export/flow-hits.ndjson',
  '/healthz',
  '/readyz',
  '/metrics',
]);
/** Probes and scrapes come every few seconds, the explorer's page loads some sixty files: their lines are debug, not info. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics', EXPLORER_ASSETS_PATH]);

export function routeOf(req: Request): string {
  const path = req.path.length > 1 ? req.path.replace(/\/+$/, '') : req.path;
  if (path.startsWith(`${EXPLORER_ASSETS_PATH}/`)) return EXPLORER_ASSETS_PATH;
  return ROUTES.has(path) ? path : 'other';
}

/** This request's log fields (set by requestLogger, which runs first). */
export function requestLogOf(res: Response): RequestLog | undefined {
  return res.locals.requestLog as RequestLog | undefined;
}

/**
 * One JSON line per request when its response is finished (or the client went away): request id (the
 * client's X-Request-Id or a new one, echoed back), account and key IDs, GraphQL operation, status,
 * duration and route. Never headers, query strings or bodies: they may carry secrets.
 */
export function requestLogger(logger: Logger, metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    // Now, before routers strip their mount path from req.path.
    const route = routeOf(req);
    const given = req.get('x-request-id');
    const log: RequestLog = {
      requestId: given && REQUEST_ID.test(given) ? given : crypto.randomUUID(),
      accountId: null,
      apiKeyId: null,
      operationName: null,
      operationType: null,
    };
    res.locals.requestLog = log;
    res.setHeader('X-Request-Id', log.requestId);
    res.once('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const status = res.statusCode;
      // GraphQL requests refused before the plugin ran (no key, bad body) still name their operation.
      const body = req.body as { operationName?: unknown } | undefined;
      if (log.operationName == null && route === '/graphql' && typeof body?.operationName === 'string') log.operationName = body.operationName.slice(0, 100);
      const operation = metrics.operationLabel(log.operationName);
      metrics.httpRequests.inc({ method: req.method, route, operation, status: String(status) });
      metrics.httpDuration.observe({ method: req.method, route, operation }, seconds);
      const line = {
        event: 'http.request',
        requestId: log.requestId,
        method: req.method,
        route,
        status,
        durationMs: Math.round(seconds * 10_000) / 10,
        accountId: log.accountId,
        apiKeyId: log.apiKeyId,
        operationName: log.operationName,
        operationType: log.operationType,
        ip: req.ip,
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      if (status >= 500) logger.warn(line, 'request');
      else if (QUIET_ROUTES.has(route)) logger.debug(line, 'request');
      else logger.info(line, 'request');
    });
    next();
  };
}

/** Puts the GraphQL operation's name and type on the request's log line. */
export function operationLogPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart({ contextValue }) {
      const log = contextValue.requestLog;
      if (!log) return;
      return {
        async didResolveOperation({ operation, operationName }) {
          log.operationName = operationName ?? null;
          log.operationType = operation?.operation ?? null;
        },
      };
    },
  };
}
