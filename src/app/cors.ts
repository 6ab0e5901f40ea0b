import { NextFunction, Request, Response } from 'express';

/**
 * What Apollo Client (and the multipart upload link) sends across origins: the API key, JSON bodies, Apollo's
 * CSRF-prevention headers (an upload must carry one of them) and its client-awareness headers.
 */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Apollo-Require-Preflight',
  'X-Apollo-Operation-Name',
  'Apollographql-Client-Name',
  'Apollographql-Client-Version',
  'X-Request-Id',
];
const ALLOWED_METHODS = 'GET, POST, OPTIONS';
/** Headers a page may read from an answer: the request id of the logs, and when to retry a 429/503. */
const EXPOSED_HEADERS = 'X-Request-Id, Retry-After';
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for exact origins only (CORS_ORIGINS). An allowed origin's preflight is answered here (204); its requests
 * go on to Apollo, whose CSRF prevention still applies to every request. A page from any other origin gets no
 * Access-Control-Allow-* header, so the browser keeps the answer from it; its preflight is refused (403).
 * No credentials: the API authenticates with the Authorization header, never a cookie.
 */
export function corsMiddleware(origins: readonly string[]) {
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    // Answers differ by Origin: caches (a proxy, the browser) must keep them apart.
    if (allowed.size > 0) res.vary('Origin');
    if (origin === undefined) return next();
    if (!allowed.has(origin)) {
      if (preflight) return void res.status(403).json({ error: 'This origin may not call the API from a browser (CORS_ORIGINS).', code: 'FORBIDDEN' });
      return next();
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (!preflight) {
      res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
      return next();
    }
    res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS);
    res.setHeader('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS.join(', '));
    res.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_S));
    res.status(204).end();
  };
}
