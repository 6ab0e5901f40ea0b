import request from 'supertest';
import { drivers } from '../helpers/db';
import { createTestApp, TestApp } from '../helpers/app';

/** What must never appear in a response: stack frames, SQL, table names, file paths. */
const LEAKS = [/\bat .+:\d+:\d+/, /\bSELECT\b/i, /\bINSERT\b/i, /SQLITE_/, /\bER_[A-Z_]+/, /\/work\//, /node_modules/, /\.ts\b/, /\bapi_key\b/, /Did you mean/];

function expectNoLeak(body: unknown) {
  const text = JSON.stringify(body);
  for (const pattern of LEAKS) expect(text).not.toMatch(pattern);
}

describe.each(drivers)('errors never leak internals (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  it('masks a database failure inside a resolver', async () => {
    const spy = jest
      .spyOn(t.services.policies, 'list')
      .mockRejectedValueOnce(Object.assign(new Error('SQLITE_ERROR: no such table: api_key -- SELECT * FROM api_key'), { code: 'ER_NO_SUCH_TABLE' }));
    const r = await t.gql(`{ policies { totalCount } }`);
    spy.mockRestore();
    expect(r.errors).toEqual([{ message: 'Internal server error', path: ['policies'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    expectNoLeak(r.body);
  });

  it('masks a real database error (a dropped table)', async () => {
    await t.gql(`mutation { policyCreate(input: { name: "doomed" }) { policy { id } } }`);
    await t.dataSource.query('DROP TABLE policy_ioc_list');
    const r = await t.gql(`{ policies { edges { node { name iocLists { name } } } } }`);
    expect(r.errors?.[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expectNoLeak(r.body);
  });

  it.each([
    ['unknown field', `{ policies { totalCount nmae } }`, 'GRAPHQL_VALIDATION_FAILED'],
    ['misspelt field', `{ polices { totalCount } }`, 'GRAPHQL_VALIDATION_FAILED'],
    ['syntax error', `{ policies { `, 'GRAPHQL_PARSE_FAILED'],
    ['wrong argument type', `{ policies(first: "ten") { totalCount } }`, 'GRAPHQL_VALIDATION_FAILED'],
  ])('answers a %s with a clear error and no schema hints', async (_name, query, code) => {
    const r = await t.gql(query);
    expect(r.errors?.[0].extensions?.code).toBe(code);
    expectNoLeak(r.body);
  });

  it('answers malformed JSON bodies and bad variables as client errors', async () => {
    const bad = await request(t.http.app)
      .post('/graphql')
      .set('authorization', `Bearer ${t.keys.admin}`)
      .set('content-type', 'application/json')
      .send('{"query": ');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: 'The request body is not valid JSON.', code: 'BAD_REQUEST' });
    const vars = await t.gql(`query($n: Int!) { policies(first: $n) { totalCount } }`, { n: 'x' });
    expect(vars.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expectNoLeak(vars.body);
  });

  it('answers unknown routes with JSON 404', async () => {
    const res = await request(t.http.app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'Not found', code: 'NOT_FOUND' });
  });
});
