import request from 'supertest';
import { createTestApp, TestApp } from '../../helpers/app';

// The browser side (Apollo Client on another origin) is test/browser/cors.test.ts; these are the headers themselves.
const DASH = 'https://dash.example.com';
const EVIL = 'https://evil.example.net';

function allowHeaders(res: request.Response): string[] {
  return Object.keys(res.headers).filter((h) => h.startsWith('access-control-allow-'));
}

function preflight(t: TestApp, origin: string, path = '/graphql', headers = 'authorization,content-type') {
  return request(t.http.app).options(path).set('origin', origin).set('access-control-request-method', 'POST').set('access-control-request-headers', headers);
}

describe('CORS_ORIGINS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('sqlite', { CORS_ORIGINS: `${DASH},http://localhost:5173` });
  });
  afterAll(() => t.close());

  it("answers an allowed origin's preflight with what Apollo Client and an upload send", async () => {
    const res = await preflight(t, DASH, '/graphql', 'authorization,content-type,apollo-require-preflight,x-apollo-operation-name');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(DASH);
    expect(res.headers['access-control-allow-methods']).toBe('GET, POST, OPTIONS');
    const allowed = res.headers['access-control-allow-headers'].toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name', 'apollographql-client-name']),
    );
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toMatch(/Origin/);
    // The export too: a dashboard downloads CSV with its key.
    expect((await preflight(t, 'http://localhost:5173', '/export/flow-hits.csv')).headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('lets an allowed origin read the answer, its request id and Retry-After', async () => {
    const res = await request(t.http.app)
      .post('/graphql')
      .set('origin', DASH)
      .set('authorization', `Bearer ${t.keys.analyst}`)
      .set('content-type', 'application/json')
      .send({ query: '{ viewer { role } }' });
    expect(res.status).toBe(200);
    expect(res.body.data.viewer.role).toBe('ANALYST');
    expect(res.headers['access-control-allow-origin']).toBe(DASH);
    expect(res.headers['access-control-expose-headers']).toBe('X-Request-Id, Retry-After');
  });

  it('gives any other origin no Access-Control-Allow-* header, preflight or not', async () => {
    const pre = await preflight(t, EVIL);
    expect(pre.status).toBe(403);
    expect(allowHeaders(pre)).toEqual([]);
    // An origin that differs only by scheme or port is another origin.
    expect(allowHeaders(await preflight(t, 'http://dash.example.com'))).toEqual([]);
    expect(allowHeaders(await preflight(t, 'http://localhost:5174'))).toEqual([]);
    const post = await request(t.http.app)
      .post('/graphql')
      .set('origin', EVIL)
      .set('authorization', `Bearer ${t.keys.analyst}`)
      .set('content-type', 'application/json')
      .send({ query: '{ viewer { role } }' });
    expect(allowHeaders(post)).toEqual([]);
    expect(post.headers['access-control-expose-headers']).toBeUndefined();
  });

  it("keeps Apollo's CSRF prevention for requests a browser sends without a preflight, allowed origin or not", async () => {
    for (const origin of [DASH, EVIL]) {
      const res = await request(t.http.app)
        .post('/graphql')
        .set('origin', origin)
        .set('authorization', `Bearer ${t.keys.analyst}`)
        .set('content-type', 'text/plain')
        .send(JSON.stringify({ query: '{ viewer { role } }' }));
      expect(res.status).toBe(400);
      expect(res.text).toMatch(/Cross-Site Request Forgery/);
    }
    // A multipart upload without the preflight header is refused before its body is read.
    const upload = await request(t.http.app).post('/graphql').set('origin', DASH).field('operations', '{}').field('map', '{}');
    expect(upload.status).toBe(400);
    expect(upload.body.error).toMatch(/Apollo-Require-Preflight/);
  });
});

describe('CORS_ORIGINS unset (the default)', () => {
  it("answers no origin's preflight and adds no CORS header", async () => {
    const t = await createTestApp('sqlite');
    try {
      const pre = await preflight(t, DASH);
      expect(pre.status).toBe(403);
      expect(allowHeaders(pre)).toEqual([]);
      const same = await request(t.http.app).post('/graphql').set('authorization', `Bearer ${t.keys.analyst}`).send({ query: '{ viewer { role } }' });
      expect(same.status).toBe(200);
      expect(same.headers.vary ?? '').not.toMatch(/Origin/);
    } finally {
      await t.close();
    }
  });
});
