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
