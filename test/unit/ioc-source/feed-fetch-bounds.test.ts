import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { AddressInfo } from 'node:net';
import { checkSourceUrl, FeedFetchError, fetchFeed, FetchLimits, FetchResult, mayCarryHeaders } from '../../../src/modules/ioc-source/feed-fetch';
import { dripRoute, waitUntil } from '../../helpers/feed-source';

// What a fetch does with answers that are not a plain feed: bounded in time, never hanging, never handing the
// source's secret headers to another origin. Local servers on 127.0.0.1 (loopback allowed).

const limits = (extra: Partial<FetchLimits> = {}): FetchLimits => ({
  maxBytes: 1_000_000,
  timeoutMs: 30_000,
  attempts: 1,
  retryBaseMs: 1,
  allowLinkLocal: false,
  allowLoopback: true,
  ...extra,
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

const closeAll = (server: http.Server | net.Server) =>
  new Promise<void>((r) => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close(() => r());
  });

async function bodyOf(result: FetchResult): Promise<string> {
  if (result.kind !== 'body') throw new Error(`no body: ${result.kind}`);
  try {
    return await fs.promises.readFile(result.file, 'utf8');
  } finally {
    await fs.promises.rm(path.dirname(result.file), { recursive: true, force: true });
  }
}

describe('feed fetch: answers that are not a feed', () => {
  const sockets = new Set<net.Socket>();
  // Answers 101 Switching Protocols to any request, then keeps the socket open.
  const upgrader = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  });
  let port = 0;
  beforeAll(async () => {
    port = await listen(upgrader);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await closeAll(upgrader);
  });

  it('fails a 101 Switching Protocols answer at once, and closes the socket', async () => {
    const started = Date.now();
    const err = await fetchFeed({ url: `http://127.0.0.1:${port}/feed`, headers: {} }, limits()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFetchError);
    expect((err as FeedFetchError).message).toBe(`127.0.0.1:${port} answered 101 Switching Protocols: not a feed.`);
    expect((err as FeedFetchError).status).toBe(101);
    // Well before the 30 s request timeout: nothing waited for it.
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitUntil('the server to see the socket closed', () => [...sockets].every((s) => s.destroyed || s.readableEnded));
  }, 15_000);
});

describe('feed fetch: IOC_SOURCE_TIMEOUT_MS bounds a whole request, body included', () => {
  let requests = 0;
  const open = new Set<http.ServerResponse>();
  // A body that drips one byte every 50 ms and never ends: an idle timeout never fires on it.
  const dripping = dripRoute(open);
  const drip = http.createServer((req, res) => {
    requests++;
    dripping(req, res);
  });
  let port = 0;
  beforeAll(async () => {
    port = await listen(drip);
  });
  afterAll(() => closeAll(drip));

  it('fails a dripping body after the timeout, retries it as a timeout, and closes the connection', async () => {
    requests = 0;
    const err = await fetchFeed({ url: `http://127.0.0.1:${port}/drip`, headers: {} }, limits({ timeoutMs: 300, attempts: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFetchError);
    expect((err as FeedFetchError).message).toBe('The request took longer than 300 ms (IOC_SOURCE_TIMEOUT_MS).');
    expect((err as FeedFetchError).transient).toBe(true);
    expect(requests).toBe(2);
    await waitUntil('the server to see the connection closed', () => open.size === 0);
  }, 20_000);

  it('ends the whole fetch, attempts and waits included, by its deadline (the lease)', async () => {
    requests = 0;
    const err = await fetchFeed(
      { url: `http://127.0.0.1:${port}/drip`, headers: {} },
      limits({ timeoutMs: 60_000, attempts: 3, retryBaseMs: 10, deadline: { at: Date.now() + 400, ms: 400 } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFetchError);
    expect((err as FeedFetchError).message).toBe('The fetch took longer than 400 ms in all, the most its lease allows (IOC_SOURCE_LEASE_MS).');
    expect((err as FeedFetchError).transient).toBe(false);
    expect(requests).toBe(1);
    await waitUntil('the server to see the connection closed', () => open.size === 0);
  }, 20_000);

  it('does not start an attempt the deadline has passed', async () => {
    requests = 0;
    const err = await fetchFeed({ url: `http://127.0.0.1:${port}/drip`, headers: {} }, limits({ deadline: { at: Date.now() - 1, ms: 400 } })).catch(
      (e: unknown) => e,
    );
    expect((err as FeedFetchError).message).toMatch(/the most its lease allows/);
    expect(requests).toBe(0);
  }, 15_000);
});

describe('feed fetch: gzip told by its magic bytes however the body is cut', () => {
  const text = '198.51.100.1\n198.51.100.2\n';
  const gz = zlib.gzipSync(Buffer.from(text));
  // The first TCP chunk is the lone 0x1f; the rest follows a moment later.
  const split = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.flushHeaders();
    const cut = req.url === '/one' ? 1 : 2;
    setTimeout(() => res.write(gz.subarray(0, cut)), 20);
    setTimeout(() => res.end(gz.subarray(cut)), 80);
  });
  let port = 0;
  beforeAll(async () => {
    port = await listen(split);
  });
  afterAll(() => closeAll(split));

  it.each(['/one', '/two'])('inflates a gzip body whose first chunk is short (%s)', async (route) => {
    expect(await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${port}${route}`, headers: {} }, limits()))).toBe(text);
  });

  it('keeps a one-byte body as it is', async () => {
    const one = http.createServer((_req, res) => res.end('\x1f'));
    const p = await listen(one);
    try {
      expect(await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${p}/`, headers: {} }, limits()))).toBe('\x1f');
    } finally {
      await closeAll(one);
    }
  });
});

describe("feed fetch: the source's headers stay with its origin", () => {
  const seen: Array<{ server: string; url: string; authorization?: string; key?: string; agent?: string }> = [];
  const record = (server: string) => (req: http.IncomingMessage) =>
    seen.push({
      server,
      url: req.url!,
      authorization: req.headers.authorization,
      key: req.headers['x-api-key'] as string | undefined,
      agent: req.headers['user-agent'],
    });
  let portA = 0;
  let portB = 0;
  const b = http.createServer((req, res) => {
    record('b')(req);
    if (req.url === '/back') {
      res.writeHead(302, { location: `http://127.0.0.1:${portA}/feed` });
      return res.end();
    }
    res.end('192.0.2.2\n');
  });
  const a = http.createServer((req, res) => {
    record('a')(req);
    const to: Record<string, string> = {
      '/other-port': `http://127.0.0.1:${portB}/feed`,
      '/other-host': `http://localhost:${portA}/feed`,
      '/same': '/feed',
      '/round-trip': `http://127.0.0.1:${portB}/back`,
    };
    if (to[req.url!]) {
      res.writeHead(302, { location: to[req.url!] });
      return res.end();
    }
    res.end('192.0.2.1\n');
  });
  beforeAll(async () => {
    portA = await listen(a);
    portB = await listen(b);
  });
  afterAll(async () => {
    await closeAll(a);
    await closeAll(b);
  });
  const headers = { Authorization: 'Bearer s3cr3t', 'X-Api-Key': 'k3y' };

  it('drops them on a redirect to another port or host, keeps them on the same origin', async () => {
    seen.length = 0;
    expect(await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${portA}/other-port`, headers }, limits()))).toBe('192.0.2.2\n');
    expect(await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${portA}/other-host`, headers }, limits()))).toBe('192.0.2.1\n');
    expect(await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${portA}/same`, headers }, limits()))).toBe('192.0.2.1\n');
    expect(seen).toEqual([
      { server: 'a', url: '/other-port', authorization: 'Bearer s3cr3t', key: 'k3y', agent: 'pcap-defense ioc-source' },
      { server: 'b', url: '/feed', authorization: undefined, key: undefined, agent: 'pcap-defense ioc-source' },
      { server: 'a', url: '/other-host', authorization: 'Bearer s3cr3t', key: 'k3y', agent: 'pcap-defense ioc-source' },
      { server: 'a', url: '/feed', authorization: undefined, key: undefined, agent: 'pcap-defense ioc-source' },
      { server: 'a', url: '/same', authorization: 'Bearer s3cr3t', key: 'k3y', agent: 'pcap-defense ioc-source' },
      { server: 'a', url: '/feed', authorization: 'Bearer s3cr3t', key: 'k3y', agent: 'pcap-defense ioc-source' },
    ]);
  });

  it('headers belong to the origin named by headersFor (a MISP event beside its manifest), and are sent back to it only', async () => {
    seen.length = 0;
    await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${portA}/round-trip`, headers }, limits()));
    await bodyOf(await fetchFeed({ url: `http://127.0.0.1:${portB}/feed`, headers, headersFor: `http://127.0.0.1:${portA}/manifest.json` }, limits()));
    expect(seen.map((s) => [s.server, s.url, s.authorization ?? null])).toEqual([
      ['a', '/round-trip', 'Bearer s3cr3t'],
      ['b', '/back', null],
      ['a', '/feed', 'Bearer s3cr3t'],
      ['b', '/feed', null],
    ]);
  });

  it('the rule: same scheme, host and port; never from https to http', () => {
    const u = (s: string) => new URL(s);
    expect(mayCarryHeaders(u('https://feeds.example/a'), u('https://feeds.example:443/b?c'))).toBe(true);
    expect(mayCarryHeaders(u('https://feeds.example/a'), u('http://feeds.example/a'))).toBe(false);
    expect(mayCarryHeaders(u('http://feeds.example/a'), u('https://feeds.example/a'))).toBe(false);
    expect(mayCarryHeaders(u('https://feeds.example/a'), u('https://cdn.feeds.example/a'))).toBe(false);
    expect(mayCarryHeaders(u('https://feeds.example/a'), u('https://feeds.example:8443/a'))).toBe(false);
    expect(mayCarryHeaders(u('http://FEEDS.example/a'), u('http://feeds.example./a'))).toBe(false);
  });
});

describe('feed fetch: requests Node cannot send, and refused destinations, fail as fetches', () => {
  it('a stored header value HTTP cannot carry fails the fetch with a reason that does not show it', async () => {
    const err = await fetchFeed({ url: 'http://127.0.0.1:9/feed', headers: { 'X-Key': 'se\u0001cret' } }, limits()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFetchError);
    expect((err as FeedFetchError).message).toBe(
      "The source's header X-Key holds a character HTTP cannot carry (a control or non-Latin-1 character): set the headers again.",
    );
    expect((err as FeedFetchError).message).not.toContain('cret');
  });

  it('says which address a name resolved to, in a sentence', async () => {
    const err = await fetchFeed({ url: 'http://localhost:9/feed', headers: {} }, limits({ allowLoopback: false })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFetchError);
    expect((err as FeedFetchError).message).toMatch(
      /^Refused destination: localhost resolves to (127\.0\.0\.1|::1), and \1 is a loopback address \(refused unless IOC_SOURCE_ALLOW_LOOPBACK=true\)\.$/,
    );
  });
});

describe('source URLs', () => {
  it.each([
    ['http://feeds.example:0/drop.txt', 'Port 0 cannot be fetched.'],
    ['http://feeds.example/dr\top.txt', 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
    ['http://feeds.example/dr\nop.txt', 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
    ['http://feeds.example/drop .txt', 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
    ['http://feeds.example/drop\u007f.txt', 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
  ])('refuses %j', (url, why) => {
    expect(checkSourceUrl(url)).toBe(why);
  });

  it('reads the URL as it will be fetched', () => {
    expect(checkSourceUrl('http:\\\\feeds.example\\drop.txt')).toBeNull();
    expect(checkSourceUrl('https://feeds.example:8443/drop.txt')).toBeNull();
  });
});
