import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';
import { createRequestContext } from '../../../src/app/context';

/** The same pipeline without HTTP: Apollo's executeOperation with a context built as the server builds it. */
describe.each(drivers)('executeOperation (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  const run = async (query: string, variables: Record<string, unknown>, key: string | null) => {
    const contextValue = await createRequestContext(t.services, key ? `Bearer ${key}` : undefined);
    const res = await t.http.apollo.executeOperation({ query, variables }, { contextValue });
    if (res.body.kind !== 'single') throw new Error('expected a single result');
    return res.body.singleResult;
  };

  it('creates and reads a policy and a device, and enforces roles and authentication', async () => {
    const p = await run(`mutation($n: String!) { policyCreate(input: { name: $n }) { policy { id name } userErrors { code } } }`, { n: 'exec' }, t.keys.admin);
    const policy = (p.data as any).policyCreate.policy;
    expect(policy.name).toBe('exec');
    const d = await run(
      `mutation($p: ID!) { deviceCreate(input: { nickname: "exec-dev", ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { device { nickname policy { name } } userErrors { code } } }`,
      { p: policy.id },
      t.keys.admin,
    );
    expect((d.data as any).deviceCreate).toEqual({ device: { nickname: 'exec-dev', policy: { name: 'exec' } }, userErrors: [] });
    const read = await run(`query($id: ID!) { policy(id: $id) { deviceCount } }`, { id: policy.id }, t.keys.analyst);
    expect((read.data as any).policy.deviceCount).toBe(1);
    const denied = await run(`mutation { policyCreate(input: { name: "x" }) { userErrors { code } } }`, {}, t.keys.analyst);
    expect(denied.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const anonymous = await run(`{ policies { totalCount } }`, {}, null);
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const foreign = await run(`query($id: ID!) { policy(id: $id) { id } }`, { id: policy.id }, t.keys.otherAdmin);
    expect((foreign.data as any).policy).toBeNull();
  });
});
