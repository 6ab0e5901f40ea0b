import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

const VIEWER = `{ viewer { role account { id name } apiKey { id name role prefix revokedAt } } }`;
const KEY_CREATE = `mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { apiKey { id name role prefix createdAt lastUsedAt revokedAt } secret userErrors { code field message } } }`;
const KEY_REVOKE = `mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) { apiKey { id revokedAt } userErrors { code field message } } }`;

/** Every mutation with a minimal valid-looking input; roles other than ADMIN must get FORBIDDEN before any work. */
const MUTATIONS: Record<string, string> = {
  policyCreate: `mutation { policyCreate(input: { name: "p" }) { userErrors { code } } }`,
  policyUpdate: `mutation { policyUpdate(input: { id: "x", name: "p" }) { userErrors { code } } }`,
  policyDelete: `mutation { policyDelete(input: { id: "x" }) { userErrors { code } } }`,
  deviceCreate: `mutation { deviceCreate(input: { nickname: "d", ipType: STATIC, ipAddress: "8.8.8.8", policy: "x" }) { userErrors { code } } }`,
  deviceUpdate: `mutation { deviceUpdate(input: { id: "x", note: "n" }) { userErrors { code } } }`,
  deviceDelete: `mutation { deviceDelete(input: { id: "x" }) { userErrors { code } } }`,
  apiKeyCreate: `mutation { apiKeyCreate(input: { name: "k", role: ANALYST }) { userErrors { code } } }`,
  apiKeyRevoke: `mutation { apiKeyRevoke(input: { id: "x" }) { userErrors { code } } }`,
};
const READS: Record<string, string> = {
  policies: `{ policies { totalCount } }`,
  devices: `{ devices { totalCount } }`,
  policy: `{ policy(id: "x") { id } }`,
  device: `{ device(id: "x") { id } }`,
};

describe.each(drivers)('API keys, roles and authentication (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  it('refuses requests without a key, with a malformed key and with an unknown key as UNAUTHENTICATED (HTTP 401)', async () => {
    for (const key of [null, 'nonsense', `pcd_${'A'.repeat(43)}`]) {
      const r = await t.gql(VIEWER, {}, key);
      expect(r.status).toBe(401);
      expect(r.data).toBeUndefined();
      expect(r.errors).toEqual([{ message: 'A valid API key is required: send "Authorization: Bearer <key>".', extensions: { code: 'UNAUTHENTICATED' } }]);
    }
    // Introspection needs a key as well.
    const intro = await t.gql(`{ __schema { queryType { name } } }`, {}, null);
    expect(intro.status).toBe(401);
  });

  it('answers /healthz (liveness: no database query) without a key', async () => {
    const res = await request(t.http.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('shows the caller its account, key and role', async () => {
    const v = ok(await t.gql(VIEWER, {}, t.keys.analyst)).viewer;
    expect(v).toMatchObject({ role: 'ANALYST', account: { name: 'account-a' }, apiKey: { role: 'ANALYST', revokedAt: null } });
    expect(t.keys.analyst.startsWith(v.apiKey.prefix)).toBe(true);
  });

  it('creates a key whose secret works once shown, stores only its hash, and revokes it', async () => {
    const created = ok(await t.gql(KEY_CREATE, { input: { name: 'capture-host-1', role: 'UPLOADER' } })).apiKeyCreate;
    expect(created.userErrors).toEqual([]);
    expect(created.secret).toMatch(/^pcd_[A-Za-z0-9_-]{43}$/);
    expect(created.apiKey).toMatchObject({ name: 'capture-host-1', role: 'UPLOADER', revokedAt: null, lastUsedAt: null });
    const rows = await t.dataSource.query('SELECT token_hash, prefix FROM api_key');
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(created.secret);
    expect(stored).not.toContain(created.secret.slice(12));
    expect(ok(await t.gql(`{ viewer { role } }`, {}, created.secret)).viewer.role).toBe('UPLOADER');
    const listed = ok(await t.gql(`{ apiKeys(first: 100) { totalCount edges { node { id name lastUsedAt } } } }`)).apiKeys;
    expect(listed.edges.find((e: any) => e.node.id === created.apiKey.id).node.lastUsedAt).not.toBeNull();

    const revoked = ok(await t.gql(KEY_REVOKE, { input: { id: created.apiKey.id } })).apiKeyRevoke;
    expect(revoked.userErrors).toEqual([]);
    expect(revoked.apiKey.revokedAt).not.toBeNull();
    const after = await t.gql(`{ viewer { role } }`, {}, created.secret);
    expect(after.status).toBe(401);
    expect(after.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('validates key input as data', async () => {
    const r = ok(await t.gql(KEY_CREATE, { input: { name: ' ', role: 'ADMIN' } })).apiKeyCreate;
    expect(r).toEqual({
      apiKey: null,
      secret: null,
      userErrors: [{ code: 'INVALID', field: ['input', 'name'], message: 'Key name must be 1-100 characters.' }],
    });
  });

  it("cannot see or revoke another account's keys", async () => {
    const theirs = ok(await t.gql(`{ viewer { apiKey { id } } }`, {}, t.keys.otherAdmin)).viewer.apiKey.id;
    const r = ok(await t.gql(KEY_REVOKE, { input: { id: theirs } })).apiKeyRevoke;
    expect(r.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'id'], message: 'No API key with this ID.' }]);
    expect(ok(await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: theirs })).node).toBeNull();
    expect(ok(await t.gql(`{ viewer { role } }`, {}, t.keys.otherAdmin)).viewer.role).toBe('ADMIN');
  });

  describe('role table', () => {
    it.each(Object.keys(MUTATIONS))('only ADMIN may run %s', async (name) => {
      for (const role of ['analyst', 'uploader'] as const) {
        const r = await t.gql(MUTATIONS[name], {}, t.keys[role]);
        expect(r.errors).toEqual([
          { message: "Your API key's role may not do this.", locations: [{ line: 1, column: 12 }], path: [name], extensions: { code: 'FORBIDDEN' } },
        ]);
        expect(r.data).toBeNull();
      }
      const admin = await t.gql(MUTATIONS[name], {}, t.keys.admin);
      expect(admin.errors).toBeUndefined();
    });

    it.each(Object.keys(READS))('ADMIN and ANALYST may read %s; UPLOADER may not', async (name) => {
      expect((await t.gql(READS[name], {}, t.keys.admin)).errors).toBeUndefined();
      expect((await t.gql(READS[name], {}, t.keys.analyst)).errors).toBeUndefined();
      const up = await t.gql(READS[name], {}, t.keys.uploader);
      expect(up.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });

    it('the write path was not taken by a refused role', async () => {
      const before = ok(await t.gql(`{ policies { totalCount } }`)).policies.totalCount;
      await t.gql(MUTATIONS.policyCreate.replace('"p"', '"analyst-made"'), {}, t.keys.analyst);
      expect(ok(await t.gql(`{ policies { totalCount } }`)).policies.totalCount).toBe(before);
    });
  });
});
