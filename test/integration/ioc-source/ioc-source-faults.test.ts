import http from 'node:http';
import { AddressInfo } from 'node:net';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { captureLog } from '../../helpers/logs';
import { dripRoute, feedServer, fetchNowWith, waitUntil } from '../../helpers/feed-source';
import { idOfType } from '../../../src/common/ids/global-id';

// Faults a tester found in sources: an internal error in one fetch, inputs that broke a fetch or the source row
// after the import, secrets sent across origins, a delete or a lost lease during a fetch, a BOM before JSON.

const EVENT = '7d2c0a51-0000-4000-8000-00000000abcd';
const SECRET = 'Bearer fault-s3cr3t';
const SOURCE = `id url status statusReason lastFetchedAt nextFetchAt list { id entryCount }`;
const FETCH = `outcome httpStatus added removed skipped error skippedLines { lineNumber code reason }`;
const LONG_LAST_MODIFIED = `Thu, 03 Dec 2026 10:00:00 GMT; ${'x'.repeat(150)}`;
const LONG_ETAG = `"${'e'.repeat(400)}"`;

/** The feed server (test/helpers/feed-source.ts, its current body at any other path), and a second one on another port it redirects to. */
function servers() {
  const hold = { arrived: null as null | (() => void), release: null as null | (() => void) };
  let otherBase = '';
  const json = (res: http.ServerResponse, doc: unknown, prefix = '') => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(prefix + JSON.stringify(doc));
  };
  const redirect = (res: http.ServerResponse) => {
    res.writeHead(302, { location: `${otherBase}/event.json` });
    res.end();
  };
  const validators =
    (etag: string, lastModified: string): http.RequestListener =>
    (req, res) => {
      if (req.headers['if-none-match'] === etag || req.headers['if-modified-since'] === lastModified) {
        res.writeHead(304);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain', etag, 'last-modified': lastModified });
      res.end(feed.live.body);
    };
  const feed = feedServer({
    // Answers once the test releases it, so the test can act while the fetch waits.
    '/hold': (_req, res) => {
      hold.release = () => res.end(feed.live.body);
      hold.arrived?.();
    },
    '/long-validators': validators(LONG_ETAG, LONG_LAST_MODIFIED),
    '/longer-etag': validators(`"${'e'.repeat(600)}"`, 'Thu, 03 Dec 2026 10:00:00 GMT'),
    // 120 lines that are not addresses, 3,000 characters each (under the 4,096-byte line limit), then one entry.
    '/long-lines': (_req, res) => res.end(`${Array.from({ length: 120 }, (_, i) => `${i}${'x'.repeat(2999)}`).join('\n')}\n192.0.2.99\n`),
    '/bom': (_req, res) =>
      json(
        res,
        { type: 'bundle', id: 'bundle--bom', objects: [{ type: 'indicator', id: 'indicator--bom', pattern: "[ipv4-addr:value = '198.51.100.50']" }] },
        '\ufeff',
      ),
    '/misp-nulls': (_req, res) =>
      json(res, { Event: { info: 'nulls', uuid: EVENT, Attribute: [null, 3, { type: 'ip-dst', value: '198.51.100.60', to_ids: true }], Object: [null] } }),
    '/misp/manifest.json': (_req, res) => json(res, { [EVENT]: { info: 'moved event', timestamp: '1' } }),
    [`/misp/${EVENT}.json`]: (_req, res) => redirect(res),
    '/redirect-away': (_req, res) => redirect(res),
  });
  const other = feedServer({
    '/event.json': (_req, res) => json(res, { Event: { info: 'moved', uuid: EVENT, Attribute: [{ type: 'ip-dst', value: '198.51.100.61', to_ids: true }] } }),
  });
  return {
    server: feed.server,
    other: other.server,
    live: feed.live,
    seen: feed.requests,
    seenByOther: other.requests,
    setOtherBase: (b: string) => (otherBase = b),
    /** Resolves when /hold is asked; release() then answers it. */
    held: () => new Promise<void>((r) => (hold.arrived = r)),
    release: () => hold.release?.(),
  };
}

const listen = async (server: http.Server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const close = (server: http.Server) =>
  new Promise((r) => {
    server.closeAllConnections();
    server.close(r);
  });

describe.each(drivers)('IOC source faults (%s)', (driver) => {
  let t: TestApp;
  let base: string;
  const srv = servers();
  const log = captureLog('info');

  beforeAll(async () => {
    base = await listen(srv.server);
    srv.setOtherBase(await listen(srv.other));
    t = await createTestApp(
      driver,
      { IOC_SOURCE_ALLOW_LOOPBACK: 'true', IOC_SOURCE_MIN_EVERY_S: '60', IOC_SOURCE_RETRY_BASE_MS: '1', IOC_SOURCE_TIMEOUT_MS: '5000' },
      { logger: log.logger },
    );
  });
  afterAll(async () => {
    await t.close();
    await close(srv.server);
    await close(srv.other);
  });

  const newList = async (name: string) =>
    ok(
      await t.gql(`mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`, {
        n: name,
      }),
    ).iocListCreate.iocList.id as string;
  const createRaw = async (list: string, url: string, extra: Record<string, unknown> = {}) =>
    ok(
      await t.gql(`mutation($input: IocSourceCreateInput!) { iocSourceCreate(input: $input) { iocSource { ${SOURCE} } userErrors { code field message } } }`, {
        input: { list, url, everySeconds: 3600, ...extra },
      }),
    ).iocSourceCreate;
  const create = async (list: string, url: string, extra: Record<string, unknown> = {}) => {
    const r = await createRaw(list, url, extra);
    expect(r.userErrors).toEqual([]);
    return r.iocSource;
  };
  const fetchNow = fetchNowWith(() => t, SOURCE, FETCH);
  const sourceOf = async (id: string) =>
    ok(await t.gql(`query($id: ID!) { iocSource(id: $id) { ${SOURCE} fetches(first: 5) { edges { node { ${FETCH} } } } } }`, { id })).iocSource;
  const pk = (id: string) => idOfType(id, 'IocSource')!;

  // First: the scheduled fetch below must find only its own two sources due.
  it('records an internal error as a FAILED fetch with a masked reason, pushes the source back, and goes on with the other due sources', async () => {
    srv.live.body = '192.0.2.10\n';
    const broken = await create(await newList('broken'), `${base}/live`);
    const fine = await create(await newList('fine'), `${base}/live`);
    // The broken source is the oldest due: it came first in every poll and its error ended the batch.
    await t.dataSource.query(`UPDATE ioc_source SET next_fetch_at = ? WHERE id = ?`, [Date.now() - 60_000, pk(broken.id)]);
    const spy = jest
      .spyOn(t.services.feedImport, 'importFile')
      .mockImplementationOnce(async () => Promise.reject(new Error("ER_NO_SUCH_TABLE: Table 'secret_schema.x' doesn't exist")));
    try {
      expect(await t.services.iocSources.runDue(Date.now())).toBe(2);
    } finally {
      spy.mockRestore();
    }
    const b = await sourceOf(broken.id);
    const masked = 'Internal error: the fetch could not be completed (the server log has the details: ioc_source.fetch_failed).';
    expect(b).toMatchObject({ status: 'FAILING', statusReason: masked, list: { entryCount: 0 } });
    expect(b.fetches.edges.map((e: any) => e.node)).toEqual([expect.objectContaining({ outcome: 'FAILED', httpStatus: 200, error: masked })]);
    expect(Date.parse(b.nextFetchAt) - Date.parse(b.lastFetchedAt)).toBe(3600_000);
    expect(await sourceOf(fine.id)).toMatchObject({ status: 'OK', list: { entryCount: 1 } });
    expect(JSON.stringify(b)).not.toContain('secret_schema');
    const logged = log.events('ioc_source.fetch_failed');
    expect(logged.map((l) => [l.source, l.err?.message])).toEqual([[pk(broken.id), "ER_NO_SUCH_TABLE: Table 'secret_schema.x' doesn't exist"]]);
    // Nothing is due any more: the broken source waits for its schedule like any failed one.
    expect(await t.services.iocSources.runDue(Date.now())).toBe(0);

    // The same through iocSourceFetchNow: a fetch that FAILED, not "Internal server error".
    const again = jest.spyOn(t.services.feedImport, 'importFile').mockImplementationOnce(async () => Promise.reject(new TypeError('boom')));
    try {
      const r = await fetchNow(broken.id);
      expect(r.userErrors).toEqual([]);
      expect(r.fetch).toMatchObject({ outcome: 'FAILED', error: masked });
    } finally {
      again.mockRestore();
    }
  });

  it('refuses header values HTTP cannot carry at create and update, and fails a fetch with one stored before', async () => {
    const list = await newList('headers');
    const why = 'Header values may hold only visible ASCII and Latin-1 characters, spaces and tabs (no control characters, no other Unicode).';
    for (const value of ['a\u0001b', 'a\u007fb', 'price in €']) {
      const r = await createRaw(list, `${base}/live`, { headers: [{ name: 'X-Key', value }] });
      expect({ value, errors: r.userErrors }).toEqual({ value, errors: [{ code: 'INVALID', field: ['input', 'headers', '0', 'value'], message: why }] });
    }
    // Each value fits, all of them together would not fit the column they are stored in (a TEXT: 64 KiB on MySQL).
    const many = Array.from({ length: 20 }, (_, i) => ({ name: `X-Key-${i}`, value: 'v'.repeat(4000) }));
    expect((await createRaw(list, `${base}/live`, { headers: many })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'headers'], message: 'The headers take more than 65535 bytes together once stored.' },
    ]);
    const good = await create(list, `${base}/live`, { headers: [{ name: 'X-Key', value: 'caf\u00e9\ttab' }] });
    const updated = ok(
      await t.gql(
        `mutation($id: ID!) { iocSourceUpdate(input: { id: $id, headers: [{ name: "X-Key", value: "ok" }, { name: "X-Other", value: "bad\\u0001" }] }) { userErrors { code field message } } }`,
        { id: good.id },
      ),
    ).iocSourceUpdate;
    expect(updated.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'headers', '1', 'value'], message: why }]);

    // A value stored before this check (no IOC_SOURCE_SECRETS_KEY here: stored as JSON) fails its fetch with a reason.
    await t.dataSource.query(`UPDATE ioc_source SET header_values = ? WHERE id = ?`, [JSON.stringify({ 'X-Key': 'bad\u0001value' }), pk(good.id)]);
    const r = await fetchNow(good.id);
    expect(r.userErrors).toEqual([]);
    expect(r.fetch).toMatchObject({
      outcome: 'FAILED',
      error: "The source's header X-Key holds a character HTTP cannot carry (a control or non-Latin-1 character): set the headers again.",
    });
  });

  it('skips MISP attributes and objects that are null or not objects, and imports the rest', async () => {
    const r = await fetchNow((await create(await newList('misp nulls'), `${base}/misp-nulls`)).id);
    expect(r.userErrors).toEqual([]);
    expect(r.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1, skipped: 3 });
    expect(r.fetch.skippedLines.map((l: any) => [l.lineNumber, l.reason])).toEqual([
      [1, 'Attribute 1 is not an object'],
      [2, 'Attribute 2 is not an object'],
      [4, 'Object 1 is not an object'],
    ]);
  });

  it('keeps a validator only when it fits its column, and asks conditionally only with what it kept', async () => {
    srv.live.body = '192.0.2.20\n';
    const long = await create(await newList('long validators'), `${base}/long-validators`);
    const first = await fetchNow(long.id);
    expect(first.userErrors).toEqual([]);
    expect(first.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1 });
    expect(first.iocSource).toMatchObject({ status: 'OK', list: { entryCount: 1 } });
    const [row] = await t.dataSource.query(`SELECT etag, last_modified FROM ioc_source WHERE id = ?`, [pk(long.id)]);
    expect(row).toEqual({ etag: LONG_ETAG, last_modified: null });
    expect((await fetchNow(long.id)).fetch).toMatchObject({ outcome: 'NOT_MODIFIED', httpStatus: 304 });
    const asked = srv.seen.filter((s) => s.url === '/long-validators').map((s) => [s.headers['if-none-match'] ?? null, s.headers['if-modified-since'] ?? null]);
    expect(asked).toEqual([
      [null, null],
      [LONG_ETAG, null],
    ]);

    const longer = await create(await newList('longer etag'), `${base}/longer-etag`);
    expect((await fetchNow(longer.id)).fetch).toMatchObject({ outcome: 'IMPORTED' });
    expect((await t.dataSource.query(`SELECT etag, last_modified FROM ioc_source WHERE id = ?`, [pk(longer.id)]))[0]).toEqual({
      etag: null,
      last_modified: 'Thu, 03 Dec 2026 10:00:00 GMT',
    });
  });

  it('stores the skipped lines a fetch reports within their column (a TEXT of 64 KiB on MySQL)', async () => {
    const r = await fetchNow((await create(await newList('long lines'), `${base}/long-lines`)).id);
    expect(r.userErrors).toEqual([]);
    expect(r.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1, skipped: 120 });
    const kept = r.fetch.skippedLines as Array<{ lineNumber: number; reason: string }>;
    expect(kept.length).toBeGreaterThan(10);
    expect(kept.length).toBeLessThanOrEqual(100);
    expect(kept.map((l) => l.lineNumber)).toEqual(Array.from({ length: kept.length }, (_, i) => i + 1));
    const [row] = await t.dataSource.query(`SELECT skipped_lines FROM ioc_source_fetch ORDER BY id DESC LIMIT 1`);
    expect(Buffer.byteLength(row.skipped_lines)).toBeLessThanOrEqual(65_535);
  });

  it("never sends the source's headers to another origin: redirects and MISP event files", async () => {
    srv.seenByOther.length = 0;
    const headers = [{ name: 'Authorization', value: SECRET }];
    const feed = await create(await newList('misp moved'), `${base}/misp/manifest.json`, { headers });
    const r = await fetchNow(feed.id);
    expect(r.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1 });
    const ours = srv.seen.filter((s) => s.url.startsWith('/misp/')).map((s) => [s.url, s.headers.authorization]);
    expect(ours).toEqual([
      ['/misp/manifest.json', SECRET],
      [`/misp/${EVENT}.json`, SECRET],
    ]);
    const away = await create(await newList('redirected away'), `${base}/redirect-away`, { headers, format: 'MISP_EVENT' });
    expect((await fetchNow(away.id)).fetch).toMatchObject({ outcome: 'IMPORTED', added: 1 });
    expect(srv.seenByOther.map((s) => [s.url, s.headers.authorization ?? null])).toEqual([
      ['/event.json', null],
      ['/event.json', null],
    ]);
  });

  it('reads JSON after a UTF-8 byte order mark', async () => {
    const r = await fetchNow((await create(await newList('bom'), `${base}/bom`)).id);
    expect(r.fetch).toMatchObject({ outcome: 'IMPORTED', added: 1, error: null });
  });

  it('a source deleted during its fetch imports nothing, and the fetch answers NOT_FOUND', async () => {
    srv.live.body = '192.0.2.30\n192.0.2.31\n';
    const list = await newList('deleted during fetch');
    const source = await create(list, `${base}/hold`);
    const arrived = srv.held();
    const pending = fetchNow(source.id);
    await arrived;
    const deleted = ok(await t.gql(`mutation($id: ID!) { iocSourceDelete(input: { id: $id }) { userErrors { code } } }`, { id: source.id })).iocSourceDelete;
    expect(deleted.userErrors).toEqual([]);
    srv.release();
    const r = await pending;
    expect(r).toEqual({
      iocSource: null,
      fetch: null,
      userErrors: [{ code: 'NOT_FOUND', field: ['input', 'id'], message: 'The source was deleted while it was being fetched; nothing was imported.' }],
    });
    const entries = ok(await t.gql(`query($l: ID!) { iocs(list: $l) { totalCount } }`, { l: list })).iocs;
    expect(entries.totalCount).toBe(0);
    expect(await t.dataSource.query(`SELECT id FROM ioc_source_fetch WHERE source_id = ?`, [pk(source.id)])).toEqual([]);
  });

  it('a source deleted while its import commits keeps the import, and the fetch says so', async () => {
    srv.live.body = '192.0.2.35\n192.0.2.36\n';
    const list = await newList('deleted after import');
    const source = await create(list, `${base}/live`);
    // The delete came while the import's transaction ran: it waited for the commit, and ran before the fetch recorded.
    const importFile = t.services.feedImport.importFile.bind(t.services.feedImport);
    const spy = jest.spyOn(t.services.feedImport, 'importFile').mockImplementationOnce(async (...args) => {
      const outcome = await importFile(...args);
      expect((await t.services.iocSources.delete(t.accountId, pk(source.id))).ok).toBe(true);
      return outcome;
    });
    try {
      expect(await fetchNow(source.id)).toEqual({
        iocSource: null,
        fetch: null,
        userErrors: [
          { code: 'NOT_FOUND', field: ['input', 'id'], message: 'The source was deleted after its fetch was imported; the list holds the fetched entries.' },
        ],
      });
    } finally {
      spy.mockRestore();
    }
    expect(ok(await t.gql(`query($l: ID!) { iocs(list: $l) { totalCount } }`, { l: list })).iocs.totalCount).toBe(2);
    expect(await t.dataSource.query(`SELECT id FROM ioc_source_fetch WHERE source_id = ?`, [pk(source.id)])).toEqual([]);
  });

  it('a fetch that lost its lease imports nothing and leaves the source as the process that took it over recorded it', async () => {
    srv.live.body = '192.0.2.40\n';
    const list = await newList('lease lost');
    const source = await create(list, `${base}/hold`);
    const arrived = srv.held();
    const pending = fetchNow(source.id);
    await arrived;
    // Another process took the source over (the lease had run out), fetched it and recorded its fetch.
    const next = Date.now() + 3_600_000;
    await t.dataSource.query(
      `UPDATE ioc_source SET lease_owner = ?, lease_until = ?, status = 'OK', status_reason = NULL, last_fetched_at = ?, next_fetch_at = ? WHERE id = ?`,
      ['another process', Date.now() + 60_000, Date.now(), next, pk(source.id)],
    );
    srv.release();
    const r = await pending;
    expect(r.userErrors).toEqual([]);
    const lost = 'The fetch lost its lease (IOC_SOURCE_LEASE_MS) before its import: another process fetches the source now. Nothing was imported.';
    expect(r.fetch).toMatchObject({ outcome: 'FAILED', added: 0, error: lost });
    // The fetch is in the history; the source is as the other process left it, and so is the answer's.
    expect(r.iocSource).toMatchObject({ status: 'OK', statusReason: null, list: { entryCount: 0 } });
    expect(Date.parse(r.iocSource.nextFetchAt)).toBe(next);
    const stored = await sourceOf(source.id);
    expect(stored).toMatchObject({ status: 'OK', statusReason: null });
    expect(Date.parse(stored.nextFetchAt)).toBe(next);
    expect(stored.fetches.edges.map((e: any) => e.node)).toEqual([expect.objectContaining({ outcome: 'FAILED', error: lost })]);
    // The other process's lease stands.
    const [row] = await t.dataSource.query(`SELECT lease_owner FROM ioc_source WHERE id = ?`, [pk(source.id)]);
    expect(row.lease_owner).toBe('another process');
  });

  it("a fetch's end frees its own lease only, not a later lease of the same process", async () => {
    srv.live.body = '192.0.2.45\n';
    const source = await create(await newList('lease of the same process'), `${base}/hold`);
    const arrived = srv.held();
    const pending = fetchNow(source.id);
    await arrived;
    // This lease ran out and this same process leased the source again for another fetch (a lease until later).
    const [first] = await t.dataSource.query(`SELECT lease_owner, lease_until FROM ioc_source WHERE id = ?`, [pk(source.id)]);
    expect(first.lease_owner).not.toBeNull();
    const later = Number(first.lease_until) + 60_000;
    await t.dataSource.query(`UPDATE ioc_source SET lease_until = ? WHERE id = ?`, [later, pk(source.id)]);
    srv.release();
    expect((await pending).fetch).toMatchObject({ outcome: 'FAILED', added: 0 });
    const [row] = await t.dataSource.query(`SELECT lease_owner, lease_until FROM ioc_source WHERE id = ?`, [pk(source.id)]);
    expect({ owner: row.lease_owner, until: Number(row.lease_until) }).toEqual({ owner: first.lease_owner, until: later });
  });

  it('stores the URL as it is fetched; refuses port 0 and URLs with spaces or control characters', async () => {
    const list = await newList('urls');
    const port = new URL(base).port;
    const typed = await create(list, `  http:\\\\127.0.0.1:${port}\\live `);
    expect(typed.url).toBe(`http://127.0.0.1:${port}/live`);
    const field = ['input', 'url'];
    for (const [url, message] of [
      [`${base}/li\tve`, 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
      [`${base}/li\r\nve`, 'A URL may not hold spaces, tabs, line breaks or other control characters.'],
      ['http://127.0.0.1:0/live', 'Port 0 cannot be fetched.'],
    ]) {
      expect({ url, errors: (await createRaw(list, url)).userErrors }).toEqual({ url, errors: [{ code: 'INVALID', field, message }] });
    }
    const update = ok(
      await t.gql(`mutation($id: ID!, $url: String!) { iocSourceUpdate(input: { id: $id, url: $url }) { iocSource { url } userErrors { message } } }`, {
        id: typed.id,
        url: `HTTP://127.0.0.1:${port}/./live`,
      }),
    ).iocSourceUpdate;
    expect(update).toEqual({ iocSource: { url: `http://127.0.0.1:${port}/live` }, userErrors: [] });
  });
});

describe.each(drivers)('IOC source fetches end within their lease (%s)', (driver) => {
  let t: TestApp;
  let base: string;
  const open = new Set<http.ServerResponse>();
  // A body that drips one byte every 50 ms and never ends.
  const { server } = feedServer({
    '/drip': dripRoute(open),
  });

  beforeAll(async () => {
    base = await listen(server);
    // Downloads get half the lease: 500 ms here, far below the 60 s request timeout.
    t = await createTestApp(driver, {
      IOC_SOURCE_ALLOW_LOOPBACK: 'true',
      IOC_SOURCE_MIN_EVERY_S: '60',
      IOC_SOURCE_TIMEOUT_MS: '60000',
      IOC_SOURCE_LEASE_MS: '1000',
    });
  });
  afterAll(async () => {
    await t.close();
    await close(server);
  });

  it('a body that never ends fails the fetch within half the lease, and the connection is closed', async () => {
    const list = ok(await t.gql(`mutation { iocListCreate(input: { name: "drip", kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    const created = ok(
      await t.gql(`mutation($l: ID!, $u: String!) { iocSourceCreate(input: { list: $l, url: $u, everySeconds: 3600 }) { iocSource { id } } }`, {
        l: list,
        u: `${base}/drip`,
      }),
    ).iocSourceCreate.iocSource;
    const r = ok(
      await t.gql(`mutation($id: ID!) { iocSourceFetchNow(input: { id: $id }) { fetch { outcome error } userErrors { message } } }`, { id: created.id }),
    ).iocSourceFetchNow;
    expect(r).toEqual({
      fetch: { outcome: 'FAILED', error: 'The fetch took longer than 500 ms in all, the most its lease allows (IOC_SOURCE_LEASE_MS).' },
      userErrors: [],
    });
    await waitUntil('the dripping connection to close', () => open.size === 0);
  }, 20_000);
});
