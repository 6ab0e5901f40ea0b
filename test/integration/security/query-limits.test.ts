import request from 'supertest';
import { getIntrospectionQuery } from 'graphql';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

/**
 * Every statement the database sees while `run` is in flight. The key lookup of authentication happens before
 * Apollo parses anything (it is how the request's context is built); everything else is the operation's.
 */
async function sqlDuring(t: TestApp, run: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const spy = jest.spyOn(t.dataSource.logger, 'logQuery').mockImplementation((query: string) => void statements.push(query));
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return statements;
}

const beyondAuthentication = (statements: string[]) => statements.filter((s) => !/\bapi_key\b/.test(s));

describe.each(drivers)('query cost is bounded before any resolver runs (%s)', (driver) => {
  let t: TestApp;
  let serviceSpies: jest.SpyInstance[];

  beforeAll(async () => {
    t = await createTestApp(driver);
    // Something to page through, so that an accepted query really reads rows.
    ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`));
  });
  afterAll(() => t.close());
  beforeEach(() => {
    serviceSpies = [jest.spyOn(t.services.policies, 'list'), jest.spyOn(t.services.logUploads, 'list'), jest.spyOn(t.services.flowHits, 'ofUpload')];
  });
  afterEach(() => jest.restoreAllMocks());

  /** Posts `query`, expects QUERY_TOO_COMPLEX (HTTP 400) and proves that no SQL but the key lookup ran. */
  async function expectRefused(query: string, variables: Record<string, unknown> = {}, app: TestApp = t): Promise<string> {
    let result: Awaited<ReturnType<TestApp['gql']>> | undefined;
    const sql = await sqlDuring(app, async () => {
      result = await app.gql(query, variables);
    });
    expect(result!.status).toBe(400);
    expect(result!.data).toBeUndefined();
    expect(result!.errors).toHaveLength(1);
    expect(result!.errors![0].extensions).toEqual({ code: 'QUERY_TOO_COMPLEX' });
    expect(beyondAuthentication(sql)).toEqual([]);
    for (const spy of serviceSpies) expect(spy).not.toHaveBeenCalled();
    return result!.errors![0].message;
  }

  it('the SQL spy sees what an accepted query reads (control)', async () => {
    const sql = await sqlDuring(t, async () => ok(await t.gql(`{ policies(first: 100) { edges { node { id name iocLists { name } } } } }`)));
    expect(beyondAuthentication(sql).join('\n')).toMatch(/\bpolicy\b/);
    expect(serviceSpies[0]).toHaveBeenCalledTimes(1);
  });

  it('refuses a deeply nested query', async () => {
    // upload -> flowHits -> edges -> node -> upload ... : 4 levels a turn, one row a page.
    let inner = 'id';
    for (let i = 0; i < 5; i++) inner = `flowHits(first: 1) { edges { node { upload { ${inner} } } } }`;
    const message = await expectRefused(`{ logUploads(first: 1) { edges { node { ${inner} } } } }`);
    expect(message).toMatch(/^Query depth limit of 12 exceeded, found \d+\./);
  });

  it('refuses 1,000 aliases: by its size with the default token limit, and by the alias limit itself', async () => {
    const query = `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`;
    expect(await expectRefused(query)).toMatch(/^Token limit of 2000 exceeded\./);
    const roomy = await createTestApp(driver, { MAX_QUERY_TOKENS: '100000' });
    try {
      expect(await expectRefused(query, {}, roomy)).toBe('Aliases limit of 30 exceeded, found 1000.');
      // 30 aliases are fine.
      ok(await roomy.gql(`{ ${Array.from({ length: 30 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`));
    } finally {
      await roomy.close();
    }
  });

  it('refuses too many directives', async () => {
    const fields = Array.from({ length: 60 }, (_, i) => `a${i}: viewer @include(if: true) { role }`).join(' ');
    const roomy = await createTestApp(driver, { MAX_QUERY_ALIASES: '100' });
    try {
      expect(await expectRefused(`{ ${fields} }`, {}, roomy)).toBe('Directives limit of 50 exceeded, found 60.');
    } finally {
      await roomy.close();
    }
  });

  it.each([
    ['uploads and their hits', `{ logUploads(first: 100) { edges { node { id flowHits(first: 100) { edges { node { id } } } } } } }`],
    ['policies, their lists and entries', `{ policies(first: 100) { edges { node { id iocLists { iocs(first: 100) { edges { node { id } } } } } } } }`],
    [
      'three levels deep',
      `{ logUploads(first: 100) { edges { node { flowHits(first: 100) { edges { node { upload { flowHits(first: 100) { totalCount } } } } } } } } }`,
    ],
  ])('refuses first: 100 nested in first: 100 (%s)', async (_name, query) => {
    expect(await expectRefused(query)).toMatch(/^Query cost limit of 10000 exceeded, found \d+: ask for smaller pages/);
  });

  it('prices pages from variables, and accepts the same query with small pages', async () => {
    const query = `query($n: Int, $m: Int) { logUploads(first: $n) { edges { node { id flowHits(first: $m) { edges { node { id } } } } } } }`;
    expect(await expectRefused(query, { n: 100, m: 100 })).toMatch(/found 30401/);
    ok(await t.gql(query, { n: 10, m: 10 }));
    // The same document again, each way round: a price is kept per document and variables, never per document alone.
    ok(await t.gql(query, { n: 10, m: 10 }));
    for (const spy of serviceSpies) spy.mockClear();
    expect(await expectRefused(query, { n: 100, m: 100 })).toMatch(/found 30401/);
    expect(await expectRefused(query, { n: 100, m: 100 })).toMatch(/found 30401/);
    // Without `first`, a page is 20 rows: priced as such.
    ok(await t.gql(`{ logUploads { edges { node { id flowHits { edges { node { id } } } } } } }`));
  });

  it('refuses a batch of operations (JSON array body): batching is off', async () => {
    let res: request.Response | undefined;
    const sql = await sqlDuring(t, async () => {
      res = await request(t.http.app)
        .post('/graphql')
        .set('authorization', `Bearer ${t.keys.admin}`)
        .set('content-type', 'application/json')
        .send(JSON.stringify(Array.from({ length: 50 }, () => ({ query: '{ policies(first: 100) { totalCount } }' }))));
    });
    expect(res!.status).toBe(400);
    expect(JSON.stringify(res!.body)).toMatch(/batching/i);
    expect(beyondAuthentication(sql)).toEqual([]);
    expect(serviceSpies[0]).not.toHaveBeenCalled();
  });

  it('lets the queries a dashboard, a script or Apollo Sandbox sends through', async () => {
    expect(ok(await t.gql(getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }))).__schema.queryType.name).toBe('Query');
    ok(
      await t.gql(
        `{ viewer { role account { name } } policies(first: 100) { totalCount edges { cursor node { id name description deviceCount iocLists { id name kind severity entryCount } } } pageInfo { hasNextPage endCursor } } }`,
      ),
    );
    ok(await t.gql(`{ logUploads(first: 100) { edges { node { id status hits device { nickname policy { name } } skippedByReason { reason count } } } } }`));
  });
});
