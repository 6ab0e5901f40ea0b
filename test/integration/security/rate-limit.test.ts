import request from 'supertest';
import { GraphQLInt, GraphQLObjectType, GraphQLSchema } from 'graphql';
import { drivers } from '../../helpers/db';
import { createTestApp, gqlUpload, ok, TestApp } from '../../helpers/app';
import { upload } from '../../helpers/ingest';
import { createHttpApp, HttpApp } from '../../../src/app/http-app';
import { silentLogger } from '../../../src/app/logger';
import { Role } from '../../../src/modules/account/account.enums';

const LIMIT = 3;
const line = (n: number) => `1517931955.${String(n).padStart(6, '0')} IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 1, win 65535, length 0\n`;
const IMPORT = `mutation($input: IocListImportInput!) { iocListImport(input: $input) { summary { added } userErrors { message } } }`;

/** The report fields the limiter knows by name, on a schema of their own (the real ones are built elsewhere). */
function reportSchema(resolved: string[]): GraphQLSchema {
  const field = (name: string) => ({ type: GraphQLInt, resolve: () => (resolved.push(name), 1) });
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: { hitReport: field('hitReport'), dashboard: field('dashboard'), flowHits: field('flowHits'), ping: field('ping') },
    }),
  });
}

function expect429(res: request.Response, graphql: boolean) {
  expect(res.status).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  if (graphql) {
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors).toEqual([
      { message: expect.stringMatching(/^Too many (uploads|report requests): at most 3 a minute/), extensions: { code: 'RATE_LIMITED' } },
    ]);
  } else {
    expect(res.body).toEqual({ error: expect.stringMatching(/^Too many (uploads|report requests): at most 3 a minute/), code: 'RATE_LIMITED' });
  }
}

describe.each(drivers)('rate limits (%s)', (driver) => {
  let t: TestApp;
  let n = 0;
  const uploads = async () => Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n);
  const newKey = async (role = Role.ADMIN) => {
    const created = await t.services.accounts.createApiKey(t.accountId, { name: `k${++n}`, role });
    if (!created.ok) throw new Error('key');
    return created.value.secret;
  };
  const mutationUpload = (key: string) => upload(t, line(++n), { deviceNickname: 'gw' }, { key });
  const formUpload = (app: TestApp, opts: { key?: string; xff?: string } = {}) => {
    const req = request(app.http.app).post('/logupload');
    if (opts.key) req.set('authorization', `Bearer ${opts.key}`);
    if (opts.xff) req.set('x-forwarded-for', opts.xff);
    return req.field('nickname', 'gw').attach('upfile', Buffer.from(line(++n)), 'capture.txt');
  };

  beforeAll(async () => {
    t = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: String(LIMIT), RATE_LIMIT_REPORTS_PER_MINUTE: String(LIMIT) });
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "gw", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p,
      }),
    );
  });
  afterAll(() => t.close());

  it('logUploadCreate: the fourth upload in a minute is 429 with Retry-After, stores nothing, and another key is unaffected', async () => {
    const key = await newKey(Role.UPLOADER);
    for (let i = 0; i < LIMIT; i++) expect(ok(await mutationUpload(key)).logUploadCreate.userErrors).toEqual([]);
    const before = await uploads();
    const raw = await request(t.http.app)
      .post('/graphql')
      .set('authorization', `Bearer ${key}`)
      .set('apollo-require-preflight', 'true')
      .field(
        'operations',
        JSON.stringify({ query: `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "gw", file: $f }) { duplicate } }`, variables: { f: null } }),
      )
      .field('map', JSON.stringify({ 0: ['variables.f'] }))
      .attach('0', Buffer.from(line(++n)), 'x.txt');
    expect429(raw, true);
    expect(await uploads()).toBe(before);
    expect(ok(await mutationUpload(await newKey(Role.UPLOADER))).logUploadCreate.userErrors).toEqual([]);
  });

  it('iocListImport counts as an upload', async () => {
    const key = await newKey();
    const list = ok(
      await t.gql(`mutation { iocListCreate(input: { name: "feed", kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`, {}, key),
    ).iocListCreate.iocList.id;
    const importFeed = (k: string) =>
      request(t.http.app)
        .post('/graphql')
        .set('authorization', `Bearer ${k}`)
        .set('apollo-require-preflight', 'true')
        .field('operations', JSON.stringify({ query: IMPORT, variables: { input: { list, file: null } } }))
        .field('map', JSON.stringify({ 0: ['variables.input.file'] }))
        .attach('0', Buffer.from(`203.0.113.${++n % 250}\n`), 'feed.txt');
    for (let i = 0; i < LIMIT; i++) {
      const r = await importFeed(key);
      expect(r.body.data.iocListImport.userErrors).toEqual([]);
    }
    expect429(await importFeed(key), true);
    // Uploads of logs and feeds share the key's budget.
    const other = await gqlUpload(t, IMPORT, { input: { list, file: null } }, 'input.file', '198.51.100.1\n', { key: await newKey() });
    expect(ok(other).iocListImport.userErrors).toEqual([]);
  });

  it('POST /logupload: per key, and per client address without one', async () => {
    const key = await newKey(Role.UPLOADER);
    for (let i = 0; i < LIMIT; i++) expect((await formUpload(t, { key })).status).toBe(201);
    const before = await uploads();
    expect429(await formUpload(t, { key }), false);
    expect(await uploads()).toBe(before);
    expect((await formUpload(t, { key: await newKey(Role.UPLOADER) })).status).toBe(201);

    // Without a key the client's address is counted: a device may be identified by it (through TRUST_PROXY).
    const proxied = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: String(LIMIT), TRUST_PROXY: 'loopback' });
    try {
      for (let i = 0; i < LIMIT; i++) expect((await formUpload(proxied, { xff: '198.51.100.7' })).status).toBe(401);
      expect429(await formUpload(proxied, { xff: '198.51.100.7' }), false);
      expect((await formUpload(proxied, { xff: '198.51.100.8' })).status).toBe(401);
    } finally {
      await proxied.close();
    }
  });

  describe('reports', () => {
    let reports: HttpApp;
    const resolved: string[] = [];
    const query = (key: string, q: string) =>
      request(reports.app).post('/graphql').set('authorization', `Bearer ${key}`).set('content-type', 'application/json').send({ query: q });
    beforeAll(async () => {
      reports = await createHttpApp(reportSchema(resolved), t.services, silentLogger());
    });
    afterAll(() => reports.apollo.stop());

    it.each(['hitReport', 'dashboard', 'flowHits'])(
      'Query.%s: the fourth in a minute is 429 before its resolver runs; another key is unaffected',
      async (field) => {
        const key = await newKey(Role.ANALYST);
        for (let i = 0; i < LIMIT; i++) expect((await query(key, `{ ${field} }`)).body).toEqual({ data: { [field]: 1 } });
        resolved.length = 0;
        expect429(await query(key, `{ ${field} ping }`), true);
        expect(resolved).toEqual([]);
        expect((await query(await newKey(Role.ANALYST), `{ ${field} }`)).body).toEqual({ data: { [field]: 1 } });
      },
    );

    it('counts each report field of an operation (aliases and fragments included), and nothing else', async () => {
      const key = await newKey(Role.ANALYST);
      for (let i = 0; i < 10; i++) expect((await query(key, `{ ping }`)).status).toBe(200);
      expect((await query(key, `{ a: dashboard b: dashboard }`)).status).toBe(200);
      expect429(await query(key, `query { ...F } fragment F on Query { c: hitReport d: flowHits }`), true);
    });

    it.each([
      ['dashboard', '{ dashboard(preset: LAST_7_DAYS) { devices } }'],
      ['hitReport', '{ hitReport(filter: { preset: LAST_7_DAYS }) { __typename } }'],
      ['flowHits', '{ flowHits(filter: { preset: LAST_7_DAYS }, first: 1) { edges { cursor } } }'],
    ])('the real Query.%s is limited the same way', async (_field, q) => {
      const key = await newKey(Role.ANALYST);
      for (let i = 0; i < LIMIT; i++) ok(await t.gql(q, {}, key));
      const res = await request(t.http.app).post('/graphql').set('authorization', `Bearer ${key}`).send({ query: q });
      expect429(res, true);
      ok(await t.gql(q, {}, await newKey(Role.ANALYST)));
    });

    it('GET /export/*: the fourth in a minute is 429, per key', async () => {
      const key = await newKey(Role.ANALYST);
      const get = (k: string) => request(t.http.app).get('/export/flow-hits.csv').set('authorization', `Bearer ${k}`);
      for (let i = 0; i < LIMIT; i++) expect((await get(key)).status).not.toBe(429);
      expect429(await get(key), false);
      expect((await get(await newKey(Role.ANALYST))).status).not.toBe(429);
    });
  });

  it('0 turns a limit off', async () => {
    const free = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: '0', RATE_LIMIT_REPORTS_PER_MINUTE: '0' });
    try {
      const reports = await createHttpApp(reportSchema([]), free.services, silentLogger());
      // More than the defaults (60 uploads, 120 reports a minute) allow.
      for (let i = 0; i < 130; i++) {
        expect((await request(reports.app).post('/graphql').set('authorization', `Bearer ${free.keys.analyst}`).send({ query: '{ hitReport }' })).status).toBe(
          200,
        );
        expect((await request(free.http.app).get('/export/x').set('authorization', `Bearer ${free.keys.analyst}`)).status).not.toBe(429);
        if (i < 70) expect((await formUpload(free)).status).toBe(401);
      }
      await reports.apollo.stop();
    } finally {
      await free.close();
    }
  });
});
