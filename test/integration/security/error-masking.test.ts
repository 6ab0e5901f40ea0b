import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';

/** What must never appear in a response: stack frames, SQL, table names, file paths, schema hints. */
const LEAKS = [
  /\bat .+:\d+:\d+/,
  /stacktrace/i,
  /\bSELECT\b/i,
  /\bINSERT\b/i,
  /SQLITE_/,
  /\bER_[A-Z_]+/,
  /\/work\//,
  /node_modules/,
  /\.ts\b/,
  /\bapi_key\b/,
  /Did you mean/,
  /busboy/i,
  /graphql-upload/i,
  // An input value as graphql-js prints it: an upload's is the parser's own object (its promise's functions).
  /\[function/,
  /\bresolve: /,
];

function expectNoLeak(res: request.Response) {
  const text = res.text ?? '';
  for (const pattern of LEAKS) expect(text).not.toMatch(pattern);
}

const BOUNDARY = 'pcd-err-boundary';
const part = (name: string, value: string, filename?: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`;
const OPS = JSON.stringify({
  query: 'mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "gw", file: $f }) { duplicate } }',
  variables: { f: null },
});
const MAP = JSON.stringify({ 0: ['variables.f'] });
const LINE = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 1, win 65535, length 0\n';

interface Case {
  name: string;
  send: (t: TestApp) => request.Test;
  status: number;
  /** What the body must say (a GraphQL error code, or a message for non-GraphQL routes). */
  expect: (body: any) => void;
}

const gqlCode = (code: string) => (body: any) => expect(body.errors?.[0]?.extensions?.code).toBe(code);
const httpError = (message: RegExp) => (body: any) => {
  expect(body.error).toMatch(message);
  // Every refusal names its kind, as GraphQL's do.
  expect(body.code).toMatch(/^[A-Z_]+$/);
};

const post = (t: TestApp, path = '/graphql') => request(t.http.app).post(path).set('authorization', `Bearer ${t.keys.admin}`);
const multipart = (t: TestApp, body: string, path = '/graphql', contentType = `multipart/form-data; boundary=${BOUNDARY}`) =>
  post(t, path).set('apollo-require-preflight', 'true').set('content-type', contentType).send(Buffer.from(body));
const json = (t: TestApp, body: unknown) =>
  post(t)
    .set('content-type', 'application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));

/**
 * One table of malformed requests, run under every NODE_ENV a deployment may have. An upload that fails while
 * the operation runs (the body ended mid-file) is an error in a 200 answer, as GraphQL execution errors are.
 */
const CASES: Case[] = [
  { name: 'an unknown field', send: (t) => json(t, { query: '{ policies { totalCount nmae } }' }), status: 400, expect: gqlCode('GRAPHQL_VALIDATION_FAILED') },
  { name: 'a misspelt root field', send: (t) => json(t, { query: '{ polices { totalCount } }' }), status: 400, expect: gqlCode('GRAPHQL_VALIDATION_FAILED') },
  {
    name: 'a misspelt argument',
    send: (t) => json(t, { query: '{ policies(frist: 1) { totalCount } }' }),
    status: 400,
    expect: gqlCode('GRAPHQL_VALIDATION_FAILED'),
  },
  {
    name: 'a misspelt enum value',
    send: (t) => json(t, { query: 'mutation { iocListCreate(input: { name: "x", kind: BLOK, severity: 1, category: REPUTATION }) { iocList { id } } }' }),
    status: 400,
    expect: gqlCode('GRAPHQL_VALIDATION_FAILED'),
  },
  { name: 'a syntax error', send: (t) => json(t, { query: '{ policies { ' }), status: 400, expect: gqlCode('GRAPHQL_PARSE_FAILED') },
  {
    name: 'a wrong argument type',
    send: (t) => json(t, { query: '{ policies(first: "ten") { totalCount } }' }),
    status: 400,
    expect: gqlCode('GRAPHQL_VALIDATION_FAILED'),
  },
  {
    name: 'a bad variable',
    send: (t) => json(t, { query: 'query($n: Int!) { policies(first: $n) { totalCount } }', variables: { n: 'x' } }),
    status: 400,
    expect: gqlCode('BAD_USER_INPUT'),
  },
  {
    name: 'an input with an unknown field',
    send: (t) =>
      json(t, { query: 'mutation($i: PolicyCreateInput!) { policyCreate(input: $i) { policy { id } } }', variables: { i: { name: 'x', nmae: 'y' } } }),
    status: 400,
    expect: gqlCode('BAD_USER_INPUT'),
  },
  {
    name: 'multipart with a misspelt input field',
    send: (t) =>
      multipart(
        t,
        `${part(
          'operations',
          JSON.stringify({
            query: 'mutation($i: LogUploadCreateInput!) { logUploadCreate(input: $i) { duplicate } }',
            variables: { i: { deviceNickName: 'gw', file: null } },
          }),
        )}${part('map', JSON.stringify({ 0: ['variables.i.file'] }))}${part('0', LINE, 'a.txt')}--${BOUNDARY}--\r\n`,
      ),
    status: 400,
    expect: (body) => {
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
      expect(body.errors[0].message).toBe('Variable "$i" got invalid value; Field "deviceNickName" is not defined by type "LogUploadCreateInput".');
    },
  },
  { name: 'malformed JSON', send: (t) => json(t, '{"query": '), status: 400, expect: httpError(/^The request body is not valid JSON\.$/) },
  { name: 'a JSON body without a query', send: (t) => json(t, {}), status: 400, expect: gqlCode('BAD_REQUEST') },
  { name: 'a query that is not a string', send: (t) => json(t, { query: { a: 1 } }), status: 400, expect: gqlCode('BAD_REQUEST') },
  { name: 'a batch (batching is off)', send: (t) => json(t, [{ query: '{ viewer { role } }' }]), status: 400, expect: gqlCode('BAD_REQUEST') },
  {
    name: 'a mutation over GET',
    send: (t) =>
      request(t.http.app)
        .get('/graphql')
        .query({ query: 'mutation { policyCreate(input: { name: "x" }) { policy { id } } }' })
        .set('authorization', `Bearer ${t.keys.admin}`)
        .set('apollo-require-preflight', 'true'),
    status: 405,
    expect: gqlCode('BAD_REQUEST'),
  },
  {
    name: 'a text/plain POST (CSRF)',
    send: (t) => post(t).set('content-type', 'text/plain').send('{ viewer { role } }'),
    status: 400,
    expect: (b) => expect(JSON.stringify(b)).toMatch(/CSRF|preflight|content-type/i),
  },
  { name: 'no key', send: (t) => request(t.http.app).post('/graphql').send({ query: '{ viewer { role } }' }), status: 401, expect: gqlCode('UNAUTHENTICATED') },
  {
    name: 'a malformed Authorization header',
    send: (t) => request(t.http.app).post('/graphql').set('authorization', 'Basic Zm9vOmJhcg==').send({ query: '{ viewer { role } }' }),
    status: 401,
    expect: gqlCode('UNAUTHENTICATED'),
  },
  {
    name: 'a query over the limits',
    send: (t) => json(t, { query: '{ policies(first: 100) { edges { node { iocLists { iocs(first: 100) { edges { node { id } } } } } } } }' }),
    status: 400,
    expect: gqlCode('QUERY_TOO_COMPLEX'),
  },
  // Broken multipart bodies, to the GraphQL endpoint and to the legacy form.
  {
    name: 'multipart without a boundary',
    send: (t) => multipart(t, part('operations', OPS), '/graphql', 'multipart/form-data'),
    status: 400,
    expect: httpError(/./),
  },
  {
    name: 'multipart truncated mid-part',
    send: (t) =>
      multipart(t, `${part('operations', OPS)}${part('map', MAP)}--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="a.txt"\r\n\r\n${LINE}`),
    status: 200,
    expect: (b) =>
      expect(b.errors).toEqual([
        expect.objectContaining({ message: expect.stringMatching(/^The upload ended before its file did/), extensions: { code: 'BAD_REQUEST' } }),
      ]),
  },
  { name: 'multipart with garbage instead of parts', send: (t) => multipart(t, 'this is not a multipart body at all'), status: 400, expect: httpError(/./) },
  {
    name: 'multipart whose operations are not JSON',
    send: (t) => multipart(t, `${part('operations', '{not json')}${part('map', MAP)}${part('0', LINE, 'a.txt')}--${BOUNDARY}--\r\n`),
    status: 400,
    expect: httpError(/operations/),
  },
  {
    name: 'multipart whose map is not JSON',
    send: (t) => multipart(t, `${part('operations', OPS)}${part('map', '[1,')}${part('0', LINE, 'a.txt')}--${BOUNDARY}--\r\n`),
    status: 400,
    expect: httpError(/map/),
  },
  {
    name: 'multipart whose map names a missing file',
    send: (t) => multipart(t, `${part('operations', OPS)}${part('map', MAP)}--${BOUNDARY}--\r\n`),
    status: 200,
    expect: (b) =>
      expect(b.errors).toEqual([
        expect.objectContaining({ message: 'The file the map names is missing from the request; nothing was stored.', extensions: { code: 'BAD_REQUEST' } }),
      ]),
  },
  {
    name: 'multipart whose map points outside the operation',
    send: (t) =>
      multipart(t, `${part('operations', OPS)}${part('map', JSON.stringify({ 0: ['variables.nope.deeper'] }))}${part('0', LINE, 'a.txt')}--${BOUNDARY}--\r\n`),
    status: 400,
    expect: (b) => expect(JSON.stringify(b)).toMatch(/"(error|message)":"[^"]+"/),
  },
  {
    name: 'multipart without operations',
    send: (t) => multipart(t, `${part('map', MAP)}${part('0', LINE, 'a.txt')}--${BOUNDARY}--\r\n`),
    status: 400,
    expect: httpError(/operations/),
  },
  {
    name: 'a form upload without a boundary',
    send: (t) => multipart(t, part('upfile', LINE, 'a.txt'), '/logupload', 'multipart/form-data'),
    status: 400,
    expect: httpError(/malformed/),
  },
  {
    name: 'a form upload truncated mid-part',
    send: (t) =>
      multipart(t, `${part('nickname', 'gw')}--${BOUNDARY}\r\nContent-Disposition: form-data; name="upfile"; filename="a.txt"\r\n\r\n${LINE}`, '/logupload'),
    status: 400,
    expect: httpError(/./),
  },
  { name: 'a form upload of garbage', send: (t) => multipart(t, '\u0000\u0001garbage', '/logupload'), status: 400, expect: httpError(/./) },
  { name: 'a form upload as JSON', send: (t) => post(t, '/logupload').send({ upfile: 'x' }), status: 415, expect: httpError(/multipart\/form-data/) },
  {
    name: 'an unknown route',
    send: (t) => request(t.http.app).get('/nope'),
    status: 404,
    expect: (b) => expect(b).toEqual({ error: 'Not found', code: 'NOT_FOUND' }),
  },
];

const ENVS: Array<string | undefined> = [undefined, 'development', 'production'];

describe.each(drivers)('errors never leak internals, whatever NODE_ENV (%s)', (driver) => {
  describe.each(ENVS.map((e) => [e ?? 'unset', e] as const))('NODE_ENV %s', (_label, nodeEnv) => {
    let t: TestApp;
    beforeAll(async () => {
      // Apollo reads process.env.NODE_ENV itself when it is constructed; the config reads the env it is given.
      const saved = process.env.NODE_ENV;
      if (nodeEnv === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = nodeEnv;
      try {
        t = await createTestApp(driver, { NODE_ENV: nodeEnv ?? '' });
      } finally {
        process.env.NODE_ENV = saved;
      }
      expect(t.config.nodeEnv).toBe(nodeEnv ?? 'development');
      const p = (await json(t, { query: 'mutation { policyCreate(input: { name: "p" }) { policy { id } } }' })).body.data.policyCreate.policy.id;
      const d = await json(t, {
        query: 'mutation($p: ID!) { deviceCreate(input: { nickname: "gw", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }',
        variables: { p },
      });
      expect(d.body.data.deviceCreate.device.id).toBeTruthy();
    });
    afterAll(async () => {
      // Nothing that was refused was stored.
      expect(Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n)).toBe(0);
      await t.close();
    });

    it.each(CASES.map((c) => [c.name, c] as const))('%s: a clear client error', async (_name, c) => {
      const res = await c.send(t);
      expect(res.status).toBe(c.status);
      expect(res.headers['content-type']).toMatch(/json/);
      c.expect(res.body);
      expectNoLeak(res);
    });

    it('masks a failure inside a resolver', async () => {
      const spy = jest
        .spyOn(t.services.policies, 'list')
        .mockRejectedValueOnce(new Error('SQLITE_ERROR: no such table: api_key -- SELECT * FROM api_key at /work/main/src/x.ts:1:2'));
      const res = await json(t, { query: '{ policies { totalCount } }' });
      spy.mockRestore();
      expect(res.body.errors).toEqual([{ message: 'Internal server error', path: ['policies'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
      expectNoLeak(res);
    });

    it('masks a failure outside GraphQL (the legacy route)', async () => {
      const spy = jest.spyOn(t.services.accounts, 'keyForSecret').mockRejectedValueOnce(new Error('ER_NO_SUCH_TABLE: SELECT * FROM api_key'));
      const res = await multipart(t, `${part('nickname', 'gw')}${part('upfile', LINE, 'a.txt')}--${BOUNDARY}--\r\n`, '/logupload');
      spy.mockRestore();
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'Internal server error', code: 'INTERNAL_SERVER_ERROR' });
      expectNoLeak(res);
    });

    it(nodeEnv === 'production' ? 'refuses introspection, without hints' : 'answers introspection to a key holder', async () => {
      const res = await json(t, { query: '{ __schema { queryType { name } } }' });
      if (nodeEnv === 'production') {
        expect(res.status).toBe(400);
        expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(res.body.errors[0].message).toMatch(/introspection/i);
      } else {
        expect(res.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
      }
      expectNoLeak(res);
    });
  });
});
