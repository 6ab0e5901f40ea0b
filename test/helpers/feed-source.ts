import crypto from 'node:crypto';
import http from 'node:http';
import { ok, TestApp } from './app';

/**
 * A feed server answering the current body, with an ETag and 304s (a list with a grace period must not rely on them).
 * `routes` answer their own paths (without the query) instead; `requests` keeps every request's URL and headers.
 */
export function feedServer(routes: Record<string, http.RequestListener> = {}): {
  server: http.Server;
  live: { body: string };
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders }>;
} {
  const live = { body: '' };
  const requests: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url!, headers: req.headers });
    const route = routes[new URL(req.url!, 'http://x').pathname];
    if (route) return route(req, res);
    const etag = `"${crypto.createHash('sha1').update(live.body).digest('hex')}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      return res.end();
    }
    res.writeHead(200, { etag, 'content-type': 'text/plain' });
    res.end(live.body);
  });
  return { server, live, requests };
}

/** Sources on `url` for a list, and a fetch of one now with the server answering `body` (`app`: the test's app, made in its beforeAll). */
export function sourceCalls(app: () => TestApp, url: () => string, live: { body: string }) {
  const source = async (list: string): Promise<string> => {
    const r = ok(
      await app().gql(`mutation($i: IocSourceCreateInput!) { iocSourceCreate(input: $i) { iocSource { id } userErrors { message } } }`, {
        i: { list, url: url(), everySeconds: 3600 },
      }),
    ).iocSourceCreate;
    expect(r.userErrors).toEqual([]);
    return r.iocSource.id as string;
  };
  const fetchNow = async (id: string, body: string) => {
    live.body = body;
    const r = ok(
      await app().gql(
        `mutation($id: ID!) { iocSourceFetchNow(input: { id: $id }) { fetch { outcome httpStatus added removed unchanged error } userErrors { message } } }`,
        { id },
      ),
    ).iocSourceFetchNow;
    expect(r.userErrors).toEqual([]);
    return r.fetch;
  };
  return { source, fetchNow };
}

/**
 * A route whose body drips one byte every 50 ms and never ends (an idle timeout never fires on it); the responses
 * still open are kept in `open` until their connection closes.
 */
export function dripRoute(open: Set<http.ServerResponse>): http.RequestListener {
  return (_req, res) => {
    open.add(res);
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('1'), 50);
    res.on('close', () => {
      clearInterval(timer);
      open.delete(res);
    });
  };
}

/** iocSourceFetchNow of a source by ID, asking the source's and the fetch's `source` and `fetch` fields. */
export function fetchNowWith(app: () => TestApp, source: string, fetch: string) {
  return async (id: string) =>
    ok(
      await app().gql(
        `mutation($id: ID!) { iocSourceFetchNow(input: { id: $id }) { iocSource { ${source} } fetch { ${fetch} } userErrors { code field message } } }`,
        { id },
      ),
    ).iocSourceFetchNow;
}

/** Waits until `cond` holds, polling every 10 ms; fails naming `what` after `ms` (a generous bound, not a measurement). */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
