import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

const CREATE = `mutation($input: PolicyCreateInput!) { policyCreate(input: $input) { policy { id name description deviceCount } userErrors { code field message } } }`;
const UPDATE = `mutation($input: PolicyUpdateInput!) { policyUpdate(input: $input) { policy { id name description } userErrors { code field message } } }`;
const DELETE = `mutation($input: PolicyDeleteInput!) { policyDelete(input: $input) { policy { id name } userErrors { code field message } } }`;
const GET = `query($id: ID!) { policy(id: $id) { id name description deviceCount createdAt updatedAt } }`;
const LIST = `query($first: Int, $after: String, $filter: PolicyFilter) { policies(first: $first, after: $after, filter: $filter) { totalCount edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;

describe.each(drivers)('policies (%s)', (driver) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  it('creates, reads, renames and describes a policy', async () => {
    const created = ok(await t.gql(CREATE, { input: { name: '  Corporate  ', description: 'Main sites' } })).policyCreate;
    expect(created.userErrors).toEqual([]);
    expect(created.policy).toMatchObject({ name: 'Corporate', description: 'Main sites', deviceCount: 0 });
    const read = ok(await t.gql(GET, { id: created.policy.id })).policy;
    expect(read.name).toBe('Corporate');
    expect(typeof read.createdAt).toBe('string');
    const renamed = ok(await t.gql(UPDATE, { input: { id: created.policy.id, name: 'Corporate HQ', description: '' } })).policyUpdate;
    expect(renamed.userErrors).toEqual([]);
    expect(renamed.policy).toEqual({ id: created.policy.id, name: 'Corporate HQ', description: null });
  });

  it('refuses an empty, overlong or case-insensitively duplicate name as data', async () => {
    ok(await t.gql(CREATE, { input: { name: 'Branch' } }));
    const dup = ok(await t.gql(CREATE, { input: { name: 'bRANCH' } })).policyCreate;
    expect(dup.policy).toBeNull();
    expect(dup.userErrors).toEqual([{ code: 'TAKEN', field: ['input', 'name'], message: 'A policy named "Branch" already exists.' }]);
    const empty = ok(await t.gql(CREATE, { input: { name: '   ' } })).policyCreate;
    expect(empty.userErrors[0]).toMatchObject({ code: 'REQUIRED', field: ['input', 'name'] });
    const long = ok(await t.gql(CREATE, { input: { name: 'x'.repeat(101) } })).policyCreate;
    expect(long.userErrors[0]).toMatchObject({ code: 'TOO_LONG' });
  });

  it('pages with opaque cursors and filters by name', async () => {
    for (const n of ['Page 1', 'Page 2', 'Page 3']) ok(await t.gql(CREATE, { input: { name: n } }));
    const first = ok(await t.gql(LIST, { first: 2, filter: { nameContains: 'page' } })).policies;
    expect(first.totalCount).toBe(3);
    expect(first.edges.map((e: any) => e.node.name)).toEqual(['Page 1', 'Page 2']);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const second = ok(await t.gql(LIST, { first: 2, after: first.pageInfo.endCursor, filter: { nameContains: 'PAGE' } })).policies;
    expect(second.edges.map((e: any) => e.node.name)).toEqual(['Page 3']);
    expect(second.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const wildcard = ok(await t.gql(LIST, { filter: { nameContains: '%' } })).policies;
    expect(wildcard.totalCount).toBe(0);
  });

  it('rejects a forged cursor and an out-of-range page size', async () => {
    const forged = await t.gql(LIST, { after: 'bm90LWEtY3Vyc29y' });
    expect(forged.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    const big = await t.gql(LIST, { first: 101 });
    expect(big.errors?.[0].message).toBe('"first" must be between 1 and 100.');
  });

  it('refuses to delete a policy while a device uses it, then deletes it', async () => {
    const policy = ok(await t.gql(CREATE, { input: { name: 'In use' } })).policyCreate.policy;
    const device = ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } userErrors { code } } }`, {
        i: { nickname: 'uses-policy', ipType: 'STATIC', ipAddress: '8.8.8.8', policy: policy.id },
      }),
    ).deviceCreate.device;
    const refused = ok(await t.gql(DELETE, { input: { id: policy.id } })).policyDelete;
    expect(refused.policy).toBeNull();
    expect(refused.userErrors).toEqual([
      { code: 'IN_USE', field: ['input', 'id'], message: 'Policy "In use" is used by 1 device; give them another policy first.' },
    ]);
    expect(ok(await t.gql(GET, { id: policy.id })).policy.deviceCount).toBe(1);
    ok(await t.gql(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { code } } }`, { i: { id: device.id } }));
    const deleted = ok(await t.gql(DELETE, { input: { id: policy.id } })).policyDelete;
    expect(deleted).toEqual({ policy: { id: policy.id, name: 'In use' }, userErrors: [] });
    expect(ok(await t.gql(GET, { id: policy.id })).policy).toBeNull();
  });

  it("treats another account's policy exactly like a missing one", async () => {
    const theirs = ok(await t.gql(CREATE, { input: { name: 'Theirs' } }, t.keys.otherAdmin)).policyCreate.policy;
    const mine = ok(await t.gql(CREATE, { input: { name: 'Mine to delete' } })).policyCreate.policy;
    ok(await t.gql(DELETE, { input: { id: mine.id } }));
    for (const id of [theirs.id, mine.id]) {
      expect(ok(await t.gql(GET, { id })).policy).toBeNull();
      expect(ok(await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id })).node).toBeNull();
      expect(ok(await t.gql(UPDATE, { input: { id, name: 'x' } })).policyUpdate.userErrors).toEqual([
        { code: 'NOT_FOUND', field: ['input', 'id'], message: 'No policy with this ID.' },
      ]);
      expect(ok(await t.gql(DELETE, { input: { id } })).policyDelete.userErrors).toEqual([
        { code: 'NOT_FOUND', field: ['input', 'id'], message: 'No policy with this ID.' },
      ]);
    }
    // Names are unique per account only.
    expect(ok(await t.gql(CREATE, { input: { name: 'Theirs' } })).policyCreate.userErrors).toEqual([]);
    const listed = ok(await t.gql(LIST, { first: 100 })).policies.edges.map((e: any) => e.node.name);
    expect(listed).not.toContain(undefined);
    expect(ok(await t.gql(LIST, { first: 100 }, t.keys.otherAdmin)).policies.totalCount).toBe(1);
  });
});
