import crypto from 'node:crypto';
import { Request, Response, Router } from 'express';
import { DATABASE_FAILURES } from '../common/errors/database-failure';
import { bearerToken } from './context';
import { Logger } from './logger';
import { Services } from './services';

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

/** Compares digests, so neither the token's content nor its length shows in the time taken. */
function sameSecret(given: string | null, expected: string): boolean {
  return given != null && crypto.timingSafeEqual(digest(given), digest(expected));
}

/**
 * GET /healthz: liveness, 200 whenever the event loop answers; it asks nothing of the database, so an outage
 * does not get healthy processes restarted. GET /readyz: 200 once migrations ran and the worker started and
 * while the database answers (probed with a bounded wait, see DatabaseProbe), 503 with Retry-After otherwise
 * and from the start of shutdown (load balancers stop sending traffic). GET /metrics: Prometheus text, only
 * when METRICS_ENABLED=true (404 otherwise, as any unknown path), behind METRICS_TOKEN (not an API key: a
 * scraper holds no account).
 */
export function opsRouter(services: Services, logger: Logger): Router {
  const router = Router();
  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req: Request, res: Response) => {
    const report = await services.readiness.check();
    if (report.status === 'ready') return void res.json(report);
    if (report.status === 'unavailable') res.setHeader('retry-after', String(DATABASE_FAILURES.UNAVAILABLE.retryAfterSeconds));
    res.status(503).json(report);
  });
  const { enabled, token } = services.config.metrics;
  if (enabled && token) {
    router.get('/metrics', async (req: Request, res: Response) => {
      if (!sameSecret(bearerToken(req.headers.authorization), token)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        return void res.status(401).json({ error: 'Send the metrics token: "Authorization: Bearer <METRICS_TOKEN>".', code: 'UNAUTHENTICATED' });
      }
      try {
        const body = await services.metrics.registry.metrics();
        res.setHeader('content-type', services.metrics.registry.contentType);
        res.send(body);
      } catch (err) {
        logger.error({ err }, 'metrics collection failed');
        res.status(500).json({ error: 'Internal server error', code: 'INTERNAL_SERVER_ERROR' });
      }
    });
  }
  return router;
}
