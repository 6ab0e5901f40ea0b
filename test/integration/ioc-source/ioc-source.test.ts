import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { AddressInfo } from 'node:net';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { fetchNowWith } from '../../helpers/feed-source';
import { captureLog } from '../../helpers/logs';
import { FEEDS_DIR, FIXTURE_FEEDS_DIR, hasSharedCorpus } from '../../helpers/corpus';

// The whole corpus file when ../shared is there, else its 40-line slice in test/fixtures (36 entries).
const FEEDS = hasSharedCorpus() ? FEEDS_DIR : FIXTURE_FEEDS_DIR;
const DROP = hasSharedCorpus() ? { bytes: 26008, added: 936 } : { bytes: 1136, added: 36 };
const INTEL = path.resolve(__dirname, '../../fixtures/intel');
const DECIAN = '5f2b2c4d-8a1b-4c3d-9e2f-1a2b3c4d5e6f';
const OTHER = '0a1b2c3d-0000-4000-8000-000000000001';
const SECRET = 'Bearer s3cr3t-feed-token';
const SECRETS_KEY = 'a1'.repeat(32);
const MAX = 1_000_000;

const SOURCE = `id url format everySeconds headerNames status statusReason lastFetchedAt nextFetchAt list { id entryCount }`;
const FETCH = `outcome httpStatus bytes added removed unchanged skipped error skippedLines { lineNumber code reason }`;

/** A feed server: corpus files with ETags and 304s, plus the bad answers a source meets in the wild. */
function feedServer() {
  const live = { body: Buffer.from('') };
  let flaky = 0;
  const requests: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url!, headers: req.headers });
    const send = (body: Buffer, type = 'text/plain') => {
      const etag = `"${crypto.createHash('sha1').update(body).digest('hex')}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag });
        return res.end();
      }
      res.writeHead(200, { etag, 'content-type': type, 'last-modified': 'Thu, 03 Dec 2026 10:00:00 GMT' });
      res.end(body);
    };
    const url = new URL(req.url!, 'http://x');
    if (url.pathname.startsWith('/feeds/')) return send(fs.readFileSync(path.join(FEEDS, path.basename(url.pathname))));
    if (url.pathname.startsWith('/intel/')) return send(fs.readFileSync(path.join(INTEL, path.basename(url.pathname))), 'application/json');
    if (url.pathname.startsWith('/misp/')) {
      // A MISP feed: manifest.json and one file per event beside it (the real Decian event, and a constructed one).
      const files: Record<string, () => Buffer> = {
        'manifest.json': () =>
          Buffer.from(JSON.stringify({ [DECIAN]: { info: 'Custom Malicious IP Feed', timestamp: '1725296400' }, [OTHER]: { info: 'other', timestamp: '1' } })),
        [`${DECIAN}.json`]: () => fs.readFileSync(path.join(INTEL, 'misp_event_decian_custom_malicious_ips.json')),
        [`${OTHER}.json`]: () =>
          Buffer.from(
            JSON.stringify({
              Event: {
                info: 'other',
                uuid: OTHER,
                Attribute: [
                  { type: 'ip-src', value: '198.51.100.200', to_ids: true },
                  { type: 'ip-dst', value: '107.178.251.4', to_ids: true },
                  { type: 'hostname', value: 'c2.example', to_ids: true },
                ],
              },
            }),
          ),
      };
      const file = files[path.basename(url.pathname)];
      if (file) return send(file(), 'application/json');
    }
    if (url.pathname === '/live') return send(live.body);
    if (url.pathname === '/live.gz') {
      res.writeHead(200, { 'content-type': 'application/gzip' });
      return res.end(zlib.gzipSync(live.body));
    }
    if (url.pathname === '/encoded') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      return res.end(zlib.gzipSync(live.body));
    }
    if (url.pathname === '/private') {
      if (req.headers.authorization !== SECRET) {
        res.writeHead(401);
        return res.end('no');
      }
      return send(live.body);
    }
    if (url.pathname === '/html') return send(Buffer.from('<!DOCTYPE html>\n<html><body>Please log in</body></html>\n'), 'text/html');
    if (url.pathname === '/comments-only') return send(Buffer.from('# maintenance: no entries today\n'));
    if (url.pathname === '/json') return send(Buffer.from('{"hello": "world"}\n'), 'application/json');
    if (url.pathname === '/truncated.gz') {
      const gz = zlib.gzipSync(Buffer.from('198.51.100.1\n'.repeat(5000)));
      res.writeHead(200, { 'content-type': 'application/gzip' });
      return res.end(gz.subarray(0, Math.floor(gz.length / 2)));
    }
    if (url.pathname === '/huge') {
      // Ten times the limit, chunked (no Content-Length): the limit must hold while streaming.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.from('198.51.100.1\n'.repeat(10_000));
      let sent = 0;
      const pump = () => {
        while (sent < 10 * MAX) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => undefined);
      return pump();
    }
    if (url.pathname === '/loop-a' || url.pathname === '/loop-b') {
      res.writeHead(302, { location: url.pathname === '/loop-a' ? '/loop-b' : '/loop-a' });
      return res.end();
    }
    if (url.pathname === '/moved') {
      res.writeHead(301, { location: '/live' });
      return res.end();
    }
    if (url.pathname === '/flaky') {
      if (flaky++ % 3 < 2) {
        res.writeHead(503);
        return res.end('busy');
      }
      return send(live.body);
    }
    if (url.pathname === '/slow') {
      setTimeout(() => send(live.body), 400);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return { server, live, requests };
}

describe.each(drivers)('IOC sources (%s)', (driver) => {
  let t: TestApp;
  let base: string;
  const srv = feedServer();
  const log = captureLog('info');

  beforeAll(async () => {
    await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}`;
    t = await createTestApp(
      driver,
      {
        IOC_SOURCE_ALLOW_LOOPBACK: 'true',
        IOC_SOURCE_MIN_EVERY_S: '60',
        IOC_SOURCE_RETRY_BASE_MS: '1',
        IOC_SOURCE_TIMEOUT_MS: '5000',
        IOC_SOURCE_MAX_BYTES: String(MAX),
        IOC_SOURCE_SECRETS_KEY: SECRETS_KEY,
      },
      { logger: log.logger },
    );
  });
  afterAll(async () => {
    await t.close();
    await new Promise((r) => srv.server.close(r));
  });

  const newList = async (name: string) =>
    ok(
      await t.gql(`mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`, {
        n: name,
      }),
    ).iocListCreate.iocList.id as string;
  const create = async (list: string, url: string, extra: Record<string, unknown> = {}) => {
    const r = ok(
      await t.gql(`mutation($input: IocSourceCreateInput!) { iocSourceCreate(input: $input) { iocSource { ${SOURCE} } userErrors { code field message } } }`, {
        input: { list, url, everySeconds: 3600, ...extra },
      }),
    ).iocSourceCreate;
    expect(r.userErrors).toEqual([]);
    return r.iocSource;
  };
  const fetchNow = fetchNowWith(() => t, SOURCE, FETCH);
  const cidrs = async (list: string) =>
    ok(await t.gql(`query($l: ID!) { iocs(list: $l, first: 100) { totalCount edges { node { id cidr } } } }`, { l: list })).iocs;

  it('imports a corpus feed, answers 304 to the next conditional fetch, and a changed feed replaces the list keeping kept IDs', async () => {
    const list = await newList('drop');
    const source = await create(list, `${base}/feeds/spamhaus_drop.txt`);
    expect(source).toMatchObject({ format: 'AUTO', status: 'NEW', everySeconds: 3600, headerNames: [], lastFetchedAt: null });
    const first = await fetchNow(source.id);
    expect(first.userErrors).toEqual([]);
    expect(first.fetch).toMatchObject({ outcome: 'IMPORTED', httpStatus: 200, ...DROP, removed: 0, unchanged: 0, skipped: 0, error: null });
    expect(first.iocSource).toMatchObject({ status: 'OK', statusReason: null, list: { entryCount: DROP.added } });
    expect(Date.parse(first.iocSource.nextFetchAt) - Date.parse(first.iocSource.lastFetchedAt)).toBe(3600_000);

    const again = await fetchNow(source.id);
    expect(again.fetch).toMatchObject({ outcome: 'NOT_MODIFIED', httpStatus: 304, added: 0, removed: 0 });
    const conditional = srv.requests.filter((r) => r.url === '/feeds/spamhaus_drop.txt');
    expect(conditional[1].headers['if-none-match']).toMatch(/^"[0-9a-f]{40}"$/);
    expect(conditional[1].headers['if-modified-since']).toBe('Thu, 03 Dec 2026 10:00:00 GMT');

    const fetches = ok(
      await t.gql(`query($id: ID!) { iocSource(id: $id) { fetches(first: 10) { edges { node { outcome } } } } }`, { id: source.id }),
    ).iocSource;
    expect(fetches.fetches.edges.map((e: any) => e.node.outcome)).toEqual(['NOT_MODIFIED', 'IMPORTED']);
  });

  it('REPLACEs through the import path: kept entries keep their IDs; gzip bodies, redirects and retried 503s are fetched', async () => {
    const list = await newList('live');
    srv.live.body = Buffer.from('# live\n192.0.2.1\n192.0.2.2 ; two\n198.51.100.0/24\nnotanip\n');
    const source = await create(list, `${base}/live`, { format: 'TEXT' });
    const first = await fetchNow(source.id);
    expect(first.fetch).toMatchObject({ outcome: 'IMPORTED', added: 3, skipped: 1 });
    expect(first.fetch.skippedLines).toEqual([{ lineNumber: 5, code: 'NOT_AN_ADDRESS', reason: expect.stringMatching(/not an IP/) }]);
    const before = new Map((await cidrs(list)).edges.map((e: any) => [e.node.cidr, e.node.id]));
    srv.live.body = Buffer.from('192.0.2.2\n198.51.100.0/24\n203.0.113.9\n');
    const second = await fetchNow(source.id);
    expect(second.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1, removed: 1, unchanged: 2, skipped: 0 });
    const after = (await cidrs(list)).edges.map((e: any) => e.node);
    expect(after.map((e: any) => e.cidr)).toEqual(['192.0.2.2/32', '198.51.100.0/24', '203.0.113.9/32']);
    expect(after.find((e: any) => e.cidr === '192.0.2.2/32').id).toBe(before.get('192.0.2.2/32'));

    for (const route of ['/live.gz', '/encoded', '/moved', '/flaky']) {
      srv.live.body = Buffer.from(`192.0.2.2\n198.51.100.0/24\n203.0.113.${route.length}\n`);
      const other = await create(await newList(`via ${route}`), `${base}${route}`);
      const r = await fetchNow(other.id);
      expect({ route, ...r.fetch }).toMatchObject({ route, outcome: 'IMPORTED', httpStatus: 200, added: 3 });
    }
  });

  it('stores header secrets, sends them, never shows or logs them', async () => {
    const list = await newList('private');
    srv.live.body = Buffer.from('192.0.2.77\n');
    const source = await create(list, `${base}/private`, { headers: [{ name: 'Authorization', value: SECRET }] });
    expect(source.headerNames).toEqual(['Authorization']);
    expect((await fetchNow(source.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 1 });
    const listed = await t.gql(`{ iocSources(first: 50) { edges { node { id headerNames } } } }`);
    expect(JSON.stringify(listed.body)).not.toContain('s3cr3t');
    expect(log.text()).not.toContain('s3cr3t');
    expect(log.events('ioc_source.fetched').length).toBeGreaterThan(0);
    // At rest the values are encrypted under IOC_SOURCE_SECRETS_KEY; the request carried the plain value.
    expect(srv.requests.filter((r) => r.url === '/private').map((r) => r.headers.authorization)).toEqual([SECRET]);
    const rows: Array<{ header_values: string }> = await t.dataSource.query(`SELECT header_values FROM ioc_source`);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.header_values).not.toContain('s3cr3t');
    expect(rows.some((r) => r.header_values.startsWith('aes256gcm:'))).toBe(true);
    // A new header list replaces the stored one: without the secret the server answers 401, and the list keeps its entry.
    const updated = ok(
      await t.gql(`mutation($id: ID!) { iocSourceUpdate(input: { id: $id, headers: [] }) { iocSource { headerNames } userErrors { code } } }`, {
        id: source.id,
      }),
    ).iocSourceUpdate;
    expect(updated).toEqual({ iocSource: { headerNames: [] }, userErrors: [] });
    srv.live.body = Buffer.from('192.0.2.78\n');
    const refused = await fetchNow(source.id);
    expect(refused.fetch).toMatchObject({ outcome: 'FAILED', httpStatus: 401, error: 'HTTP 401 Unauthorized.' });
    expect(refused.iocSource).toMatchObject({ status: 'FAILING', statusReason: 'HTTP 401 Unauthorized.', list: { entryCount: 1 } });
  });

  it('refuses bad input with a clear status and keeps the old entries', async () => {
    const list = await newList('bad input');
    srv.live.body = Buffer.from(Array.from({ length: 50 }, (_, i) => `192.0.2.${i + 1}`).join('\n'));
    const good = await create(list, `${base}/live`);
    expect((await fetchNow(good.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 50 });
    const cases: Array<[string, string, RegExp, number | null]> = [
      ['/html', 'FAILED', /HTML page/, 200],
      ['/json', 'FAILED', /Unknown format: a JSON document/, 200],
      // A feed of no entry would empty the list: refused outright, whatever the hold setting.
      [
        '/comments-only',
        'FAILED',
        /^Refused: the file holds no entry this list can take \(1 line read, 0 skipped\), and a REPLACE with it would remove all 50/,
        200,
      ],
      ['/truncated.gz', 'FAILED', /truncated or corrupt gzip/, 200],
      ['/huge', 'FAILED', /larger than the limit of 1000000 bytes/, 200],
      ['/loop-a', 'FAILED', /Redirect loop/, 302],
      ['/nothing-here', 'FAILED', /HTTP 404/, 404],
    ];
    for (const [route, outcome, reason, status] of cases) {
      const updated = ok(
        await t.gql(`mutation($id: ID!, $url: String!) { iocSourceUpdate(input: { id: $id, url: $url }) { userErrors { code } } }`, {
          id: good.id,
          url: `${base}${route}`,
        }),
      ).iocSourceUpdate;
      expect(updated.userErrors).toEqual([]);
      const r = await fetchNow(good.id);
      expect({ route, outcome: r.fetch.outcome, httpStatus: r.fetch.httpStatus }).toEqual({ route, outcome, httpStatus: status });
      expect(r.fetch.error).toMatch(reason);
      expect(r.iocSource).toMatchObject({ status: 'FAILING', statusReason: r.fetch.error, list: { entryCount: 50 } });
    }
    // A feed that lost 90% of its entries is held for review.
    srv.live.body = Buffer.from('192.0.2.1\n192.0.2.2\n');
    ok(
      await t.gql(`mutation($id: ID!, $url: String!) { iocSourceUpdate(input: { id: $id, url: $url }) { userErrors { code } } }`, {
        id: good.id,
        url: `${base}/live`,
      }),
    );
    const held = await fetchNow(good.id);
    expect(held.fetch).toMatchObject({ outcome: 'HELD', added: 0, removed: 0 });
    expect(held.fetch.error).toMatch(/the feed has 2 entries and the list 50: .*held for review/);
    expect(held.iocSource).toMatchObject({ status: 'HELD', list: { entryCount: 50 } });
    expect((await cidrs(list)).totalCount).toBe(50);
  });

  it('validates sources, refuses link-local destinations, and fetches each source in one process at a time', async () => {
    const list = await newList('guarded');
    const bad = ok(
      await t.gql(
        `mutation($l: ID!) { iocSourceCreate(input: { list: $l, url: "ftp://x/y", everySeconds: 5, headers: [{ name: "Host", value: "a" }] }) { iocSource { id } userErrors { code field } } }`,
        { l: list },
      ),
    ).iocSourceCreate;
    expect(bad.userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'url'] },
      { code: 'INVALID', field: ['input', 'everySeconds'] },
      { code: 'INVALID', field: ['input', 'headers', '0', 'name'] },
    ]);
    const metadata = await create(list, 'http://169.254.169.254/latest/meta-data/');
    const refused = await fetchNow(metadata.id);
    expect(refused.fetch).toMatchObject({ outcome: 'FAILED', httpStatus: null });
    expect(refused.fetch.error).toMatch(/169\.254\.169\.254 is a link-local or cloud-metadata address/);

    srv.live.body = Buffer.from('192.0.2.9\n');
    const slow = await create(list, `${base}/slow`);
    const [a, b] = await Promise.all([fetchNow(slow.id), new Promise((r) => setTimeout(r, 100)).then(() => fetchNow(slow.id))]);
    expect(a.fetch).toMatchObject({ outcome: 'IMPORTED' });
    expect(b.userErrors).toEqual([{ code: 'INVALID_STATE', field: ['input', 'id'], message: expect.stringMatching(/being fetched/) }]);

    const theirs = ok(await t.gql(`query($id: ID!) { iocSource(id: $id) { id } }`, { id: slow.id }, t.keys.otherAdmin)).iocSource;
    expect(theirs).toBeNull();
  });

  it('reads STIX bundles, MISP events and MISP warninglists (into ALLOW lists only), detected by AUTO', async () => {
    const stix = await create(await newList('stix'), `${base}/intel/stix20_indicators_for_c2_with_coa.json`);
    const s = await fetchNow(stix.id);
    expect(s.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1, skipped: 1 });
    expect(s.fetch.skippedLines).toEqual([{ lineNumber: 4, code: 'UNSUPPORTED_RECORD', reason: expect.stringMatching(/^pattern \[file:hashes/) }]);

    const misp = await create(await newList('misp'), `${base}/intel/misp_event_decian_custom_malicious_ips.json`, { format: 'MISP_EVENT' });
    expect((await fetchNow(misp.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 18, skipped: 0 });

    const feed = await create(await newList('misp feed'), `${base}/misp/manifest.json`);
    const f = await fetchNow(feed.id);
    expect(f.fetch).toMatchObject({ outcome: 'IMPORTED', added: 19, skipped: 1 });
    expect(f.fetch.skippedLines).toEqual([{ lineNumber: 21, code: 'UNSUPPORTED_RECORD', reason: 'hostname attributes belong in a domain list' }]);

    const wrongKind = await create(await newList('warninglist as block'), `${base}/intel/misp_warninglist_circl_ssh_scanning.json`);
    const refused = await fetchNow(wrongKind.id);
    expect(refused.fetch).toMatchObject({ outcome: 'FAILED', error: expect.stringMatching(/point this source at an ALLOW list/) });
    const allow = ok(
      await t.gql(`mutation { iocListCreate(input: { name: "circl scanners", kind: ALLOW, severity: 0, category: SCANNER }) { iocList { id } } }`),
    ).iocListCreate.iocList.id;
    const wl = await create(allow, `${base}/intel/misp_warninglist_circl_ssh_scanning.json`);
    expect((await fetchNow(wl.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 2 });
    expect((await cidrs(allow)).edges.map((e: any) => e.node.cidr)).toEqual(['185.194.93.130/32', '2a00:5980:93::130/128']);

    // valid_until becomes the entry's expiry; a format that does not match the body is a clear failure.
    srv.live.body = Buffer.from(
      JSON.stringify({
        type: 'bundle',
        id: 'bundle--x',
        objects: [{ type: 'indicator', id: 'indicator--x', pattern: "[ipv4-addr:value = '198.51.100.44']", valid_until: '2031-05-06T07:08:09Z' }],
      }),
    );
    const expiring = await create(await newList('expiring'), `${base}/live`, { format: 'STIX2' });
    expect((await fetchNow(expiring.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 1 });
    const entry = ok(
      await t.gql(`query($l: ID!) { iocs(list: $l) { edges { node { cidr expiresAt } } } }`, { l: (await fetchNow(expiring.id)).iocSource.list.id }),
    ).iocs.edges[0].node;
    expect(entry).toEqual({ cidr: '198.51.100.44/32', expiresAt: '2031-05-06T07:08:09.000Z' });
    const mismatch = await create(await newList('mismatch'), `${base}/live`, { format: 'MISP_EVENT' });
    expect((await fetchNow(mismatch.id)).fetch).toMatchObject({ outcome: 'FAILED', error: 'The body is a STIX2 document, not MISP EVENT.' });
  });

  it('a source on a DOMAIN list reads the body as a domain feed (the list decides), and refuses address records', async () => {
    const domains = ok(
      await t.gql(
        `mutation { iocListCreate(input: { name: "phish domains", kind: BLOCK, entryKind: DOMAIN, severity: 4, category: PHISHING }) { iocList { id } } }`,
      ),
    ).iocListCreate.iocList.id;
    srv.live.body = Buffer.from('# domains\nevil.example\nphish.example.net\n198.51.100.1\n');
    const source = await create(domains, `${base}/live`);
    const r = await fetchNow(source.id);
    expect(r.fetch).toMatchObject({ outcome: 'IMPORTED', added: 2, skipped: 1 });
    expect(r.fetch.skippedLines).toEqual([{ lineNumber: 4, code: 'IP_ADDRESS', reason: expect.any(String) }]);
    expect(r.iocSource.list.entryCount).toBe(2);
    const stix = await create(domains, `${base}/intel/stix21_indicator_for_c2_ip_address.json`);
    const refused = await fetchNow(stix.id);
    expect(refused.fetch).toMatchObject({ outcome: 'FAILED', error: 'This list holds domains; these records name IP addresses and networks.' });
    expect(refused.iocSource.list.entryCount).toBe(2);
    // The 90% hold guards DOMAIN lists too: a feed that lost most of its names changes nothing.
    const twenty = Array.from({ length: 20 }, (_, i) => `host${i}.phish.example`);
    srv.live.body = Buffer.from(twenty.join('\n') + '\n');
    expect((await fetchNow(source.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 20, removed: 2 });
    srv.live.body = Buffer.from('new.phish.example\n');
    const held = await fetchNow(source.id);
    expect(held.fetch).toMatchObject({ outcome: 'HELD', added: 0, removed: 0 });
    expect(held.fetch.error).toMatch(/the feed has 1 entries and the list 20: .*held for review/);
    expect(held.iocSource).toMatchObject({ status: 'HELD', list: { entryCount: 20 } });
    const names = await t.dataSource.query(`SELECT name FROM ioc_domain WHERE name LIKE '%.phish.example' ORDER BY name`);
    expect(names.map((r: { name: string }) => r.name)).toEqual([...twenty].sort());
  });

  it('fetches due sources on schedule', async () => {
    const list = await newList('scheduled');
    srv.live.body = Buffer.from('192.0.2.50\n');
    const source = await create(list, `${base}/live`);
    // Earlier tests left other sources due later; this one is due now.
    const done = await t.services.iocSources.runDue(Date.now());
    expect(done).toBeGreaterThanOrEqual(1);
    const after = ok(
      await t.gql(`query($id: ID!) { iocSource(id: $id) { status list { entryCount } fetches { edges { node { outcome } } } } }`, { id: source.id }),
    ).iocSource;
    expect(after).toEqual({ status: 'OK', list: { entryCount: 1 }, fetches: { edges: [{ node: { outcome: 'IMPORTED' } }] } });
    expect(await t.services.iocSources.runDue(Date.now())).toBe(0);
  });
});
