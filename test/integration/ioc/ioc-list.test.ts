import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

const LIST_FIELDS = `id name kind severity category sourceName referenceUrl description entryCount lastImportedAt createdAt updatedAt`;
const CREATE = `mutation($input: IocListCreateInput!) { iocListCreate(input: $input) { iocList { ${LIST_FIELDS} } userErrors { code field message } } }`;
const UPDATE = `mutation($input: IocListUpdateInput!) { iocListUpdate(input: $input) { iocList { ${LIST_FIELDS} } userErrors { code field message } } }`;
const DELETE = `mutation($input: IocListDeleteInput!) { iocListDelete(input: $input) { iocList { id name } userErrors { code field message } } }`;
const ADD = `mutation($input: IocAddInput!) { iocAdd(input: $input) { added duplicates iocList { entryCount } iocs { id cidr family prefix comment expiresAt list { name } } userErrors { code field message } } }`;
const REMOVE = `mutation($input: IocRemoveInput!) { iocRemove(input: $input) { removed { id cidr } userErrors { code field message } } }`;
const ENTRIES = `query($list: ID!, $filter: IocFilter, $first: Int, $after: String) { iocs(list: $list, filter: $filter, first: $first, after: $after) { totalCount edges { node { cidr comment } } pageInfo { hasNextPage endCursor } } }`;
const ATTACH = `mutation($input: PolicyIocListsInput!) { policyAttachIocLists(input: $input) { policy { id iocLists { name } } userErrors { code field message } } }`;
const DETACH = `mutation($input: PolicyIocListsInput!) { policyDetachIocLists(input: $input) { policy { id iocLists { name } } userErrors { code field message } } }`;
const LOOKUP = `query($a: String!) { iocLookup(address: $a) { address scope matchable matches { active ioc { cidr comment expiresAt } iocList { name kind severity } } policies { verdict policy { name } devices { nickname } } } }`;

const block = (name: string, extra: Record<string, unknown> = {}) => ({ name, kind: 'BLOCK', severity: 4, category: 'C2_BOTNET', ...extra });

describe.each(drivers)('IOC lists, entries, policies and lookup (%s)', (driver) => {
  let t: TestApp;
  const createList = async (input: Record<string, unknown>, key?: string) => ok(await t.gql(CREATE, { input }, key)).iocListCreate;
  const add = async (list: string, entries: Array<Record<string, unknown>>, key?: string) => ok(await t.gql(ADD, { input: { list, entries } }, key)).iocAdd;

  beforeAll(async () => {
    t = await createTestApp(driver);
  });
  afterAll(() => t.close());

  it('creates a list with its metadata and validates it as data', async () => {
    const r = await createList(block('C2 servers', { sourceName: 'C2-Tracker', referenceUrl: 'https://example.org/c2', description: 'Cobalt Strike' }));
    expect(r.userErrors).toEqual([]);
    expect(r.iocList).toMatchObject({ name: 'C2 servers', kind: 'BLOCK', severity: 4, category: 'C2_BOTNET', entryCount: 0, lastImportedAt: null });
    const bad = await createList({ name: 'c2 SERVERS', kind: 'BLOCK', severity: 9, category: 'SPAM', referenceUrl: 'ftp://x' });
    expect(bad.userErrors.map((e: any) => [e.code, e.field.join('.')])).toEqual([
      ['TAKEN', 'input.name'],
      ['INVALID', 'input.severity'],
      ['INVALID', 'input.referenceUrl'],
    ]);
  });

  it('adds addresses, CIDRs and ranges, normalising and counting duplicates', async () => {
    const list = (await createList(block('Mixed'))).iocList;
    const r = await add(list.id, [
      { value: '198.51.100.7', comment: 'single' },
      { value: '10.1.2.3/8', comment: 'non-canonical' },
      { value: '203.0.113.0-203.0.113.9' },
      { value: '2001:DB8:0:0::/48' },
      { value: '198.51.100.7' },
    ]);
    expect(r.userErrors).toEqual([]);
    // 203.0.113.0-9 is the fewest CIDRs: /29 and /31.
    expect(r.added).toBe(5);
    expect(r.duplicates).toBe(1);
    expect(r.iocList.entryCount).toBe(5);
    expect(r.iocs.map((i: any) => i.cidr)).toEqual(['10.0.0.0/8', '198.51.100.7/32', '203.0.113.0/29', '203.0.113.8/31', '2001:db8::/48']);
    expect(r.iocs[0]).toMatchObject({ family: 4, prefix: 8, comment: 'non-canonical', list: { name: 'Mixed' } });
    const again = await add(list.id, [{ value: '198.51.100.7' }, { value: '198.51.100.8' }]);
    expect(again).toMatchObject({ added: 1, duplicates: 1, iocList: { entryCount: 6 } });
  });

  it('refuses too-broad networks, garbage and past expiry, adding nothing', async () => {
    const list = (await createList(block('Strict'))).iocList;
    const r = await add(list.id, [
      { value: '224.0.0.0/3' },
      { value: 'C91.196.152.28' },
      { value: '2001::/15' },
      { value: '1.2.3.4', expiresAt: '2001-01-01T00:00:00Z' },
      { value: '5.6.7.8' },
      // Every IPv4 address, written as IPv4-mapped IPv6: it would flag all IPv4 traffic.
      { value: '::ffff:0:0/96' },
    ]);
    expect(r.userErrors.map((e: any) => [e.code, e.field.join('.')])).toEqual([
      ['TOO_BROAD', 'input.entries.0.value'],
      ['INVALID', 'input.entries.1.value'],
      ['TOO_BROAD', 'input.entries.2.value'],
      ['INVALID', 'input.entries.3.expiresAt'],
      ['TOO_BROAD', 'input.entries.5.value'],
    ]);
    expect(r.userErrors[0].message).toMatch(/too broad/);
    expect(r.userErrors[4].message).toMatch(/covers every IPv4 address/);
    expect(ok(await t.gql(ENTRIES, { list: list.id })).iocs.totalCount).toBe(0);
  });

  it('searches a list by containing address, network and comment, in address order with cursors', async () => {
    const list = (await createList(block('Searchable'))).iocList;
    await add(list.id, [
      { value: '192.0.2.0/24', comment: 'TEST-NET-1 block' },
      { value: '192.0.2.128/25', comment: 'upper half' },
      { value: '192.0.2.200', comment: 'host' },
      { value: '198.51.100.1', comment: 'elsewhere' },
      { value: '2001:db8::/32', comment: 'v6 doc' },
      { value: '2001:db8:1::1', comment: 'v6 host' },
    ]);
    const cidrs = async (filter: Record<string, unknown>) => ok(await t.gql(ENTRIES, { list: list.id, filter })).iocs.edges.map((e: any) => e.node.cidr);
    expect(await cidrs({ address: '192.0.2.200' })).toEqual(['192.0.2.0/24', '192.0.2.128/25', '192.0.2.200/32']);
    expect(await cidrs({ address: '192.0.2.5' })).toEqual(['192.0.2.0/24']);
    expect(await cidrs({ address: '::ffff:192.0.2.5' })).toEqual(['192.0.2.0/24']);
    expect(await cidrs({ address: '2001:db8:1::1' })).toEqual(['2001:db8::/32', '2001:db8:1::1/128']);
    expect(await cidrs({ within: '192.0.2.128/25' })).toEqual(['192.0.2.128/25', '192.0.2.200/32']);
    expect(await cidrs({ commentContains: 'V6' })).toEqual(['2001:db8::/32', '2001:db8:1::1/128']);
    const bad = await t.gql(ENTRIES, { list: list.id, filter: { address: 'nope' } });
    expect(bad.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: any = ok(await t.gql(ENTRIES, { list: list.id, first: 2, after })).iocs;
      seen.push(...page.edges.map((e: any) => e.node.cidr));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(['192.0.2.0/24', '192.0.2.128/25', '192.0.2.200/32', '198.51.100.1/32', '2001:db8::/32', '2001:db8:1::1/128']);
  });

  it('removes entries by ID, all or nothing', async () => {
    const list = (await createList(block('Removable'))).iocList;
    const added = await add(list.id, [{ value: '9.9.9.1' }, { value: '9.9.9.2' }]);
    const [a, b] = added.iocs.map((i: any) => i.id);
    const refused = ok(await t.gql(REMOVE, { input: { ids: [a, 'bogus'] } })).iocRemove;
    expect(refused.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'ids', '1'], message: 'No IOC entry with this ID.' }]);
    expect(ok(await t.gql(ENTRIES, { list: list.id })).iocs.totalCount).toBe(2);
    const removed = ok(await t.gql(REMOVE, { input: { ids: [b] } })).iocRemove;
    expect(removed).toEqual({ removed: [{ id: b, cidr: '9.9.9.2/32' }], userErrors: [] });
    expect(ok(await t.gql(`query($id: ID!) { iocList(id: $id) { entryCount } }`, { id: list.id })).iocList.entryCount).toBe(1);
  });

  it('attaches and detaches lists; a used list cannot be deleted; lookup explains an address', async () => {
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "Lookup policy" }) { policy { id } } }`)).policyCreate.policy;
    ok(
      await t.gql(
        `mutation($p: ID!) { deviceCreate(input: { nickname: "lookup-dev", ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { userErrors { code } } }`,
        { p: policy.id },
      ),
    );
    const bad = (await createList(block('Bad actors', { severity: 5 }))).iocList;
    const good = (await createList({ name: 'Partners', kind: 'ALLOW', severity: 0, category: 'ALLOWLIST' })).iocList;
    const expiring = (await createList(block('Expiring'))).iocList;
    await add(bad.id, [
      { value: '185.220.100.0/24', comment: 'tor exits' },
      { value: '185.220.100.252', comment: 'one exit' },
    ]);
    await add(expiring.id, [{ value: '185.220.100.252', expiresAt: new Date(Date.now() + 60_000).toISOString() }]);
    const attached = ok(await t.gql(ATTACH, { input: { policy: policy.id, iocLists: [bad.id, expiring.id, bad.id] } })).policyAttachIocLists;
    expect(attached.userErrors).toEqual([]);
    expect(attached.policy.iocLists.map((l: any) => l.name)).toEqual(['Bad actors', 'Expiring']);

    const inUse = ok(await t.gql(DELETE, { input: { id: bad.id } })).iocListDelete;
    expect(inUse.userErrors).toEqual([
      { code: 'IN_USE', field: ['input', 'id'], message: 'IOC list "Bad actors" is used by policy "Lookup policy"; detach it first.' },
    ]);

    let l = ok(await t.gql(LOOKUP, { a: '185.220.100.252' })).iocLookup;
    expect(l).toMatchObject({ address: '185.220.100.252', scope: 'a public address', matchable: true });
    expect(l.matches.map((m: any) => [m.ioc.cidr, m.iocList.name, m.active])).toEqual([
      ['185.220.100.252/32', 'Bad actors', true],
      ['185.220.100.252/32', 'Expiring', true],
      ['185.220.100.0/24', 'Bad actors', true],
    ]);
    expect(l.policies).toEqual([{ verdict: 'BLOCKED', policy: { name: 'Lookup policy' }, devices: [{ nickname: 'lookup-dev' }] }]);

    await add(good.id, [{ value: '185.220.100.252' }]);
    ok(await t.gql(ATTACH, { input: { policy: policy.id, iocLists: [good.id] } }));
    l = ok(await t.gql(LOOKUP, { a: '::ffff:185.220.100.252' })).iocLookup;
    expect(l.address).toBe('185.220.100.252');
    expect(l.policies[0].verdict).toBe('ALLOWED');

    const detached = ok(await t.gql(DETACH, { input: { policy: policy.id, iocLists: [good.id, bad.id] } })).policyDetachIocLists;
    expect(detached.policy.iocLists.map((x: any) => x.name)).toEqual(['Expiring']);
    expect(ok(await t.gql(DELETE, { input: { id: good.id } })).iocListDelete.userErrors).toEqual([]);

    const lan = ok(await t.gql(LOOKUP, { a: '192.168.1.1' })).iocLookup;
    expect(lan).toMatchObject({ scope: 'a private (RFC 1918) address', matchable: false, matches: [] });
    expect((await t.gql(LOOKUP, { a: 'not-an-ip' })).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('filters lists by kind, severity, category and name', async () => {
    const names = async (filter: Record<string, unknown>) =>
      ok(await t.gql(`query($f: IocListFilter) { iocLists(first: 100, filter: $f) { edges { node { name } } } }`, { f: filter })).iocLists.edges.map(
        (e: any) => e.node.name,
      );
    expect(await names({ kinds: ['ALLOW'] })).toEqual([]);
    expect(await names({ minSeverity: 5 })).toEqual(['Bad actors']);
    expect(await names({ categories: ['C2_BOTNET'], nameContains: 'serv' })).toEqual(['C2 servers']);
    expect(await names({ severities: [4], nameContains: 'mix' })).toEqual(['Mixed']);
  });

  it("keeps another account's lists, entries and policies out of sight", async () => {
    const theirs = (await createList(block('Their list'), t.keys.otherAdmin)).iocList;
    const theirEntry = (await add(theirs.id, [{ value: '45.33.32.156', comment: 'secret' }], t.keys.otherAdmin)).iocs[0];
    expect(ok(await t.gql(`query($id: ID!) { iocList(id: $id) { id } }`, { id: theirs.id })).iocList).toBeNull();
    expect(ok(await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: theirEntry.id })).node).toBeNull();
    expect(ok(await t.gql(ENTRIES, { list: theirs.id })).iocs.totalCount).toBe(0);
    expect(ok(await t.gql(LOOKUP, { a: '45.33.32.156' })).iocLookup.matches).toEqual([]);
    expect((await add(theirs.id, [{ value: '1.1.1.1' }])).userErrors).toEqual([
      { code: 'NOT_FOUND', field: ['input', 'list'], message: 'No IOC list with this ID.' },
    ]);
    expect(ok(await t.gql(REMOVE, { input: { ids: [theirEntry.id] } })).iocRemove.userErrors[0].code).toBe('NOT_FOUND');
    expect(ok(await t.gql(UPDATE, { input: { id: theirs.id, severity: 1 } })).iocListUpdate.userErrors[0].code).toBe('NOT_FOUND');
    expect(ok(await t.gql(DELETE, { input: { id: theirs.id } })).iocListDelete.userErrors[0].code).toBe('NOT_FOUND');
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "Iso" }) { policy { id } } }`)).policyCreate.policy;
    const attach = ok(await t.gql(ATTACH, { input: { policy: policy.id, iocLists: [theirs.id] } })).policyAttachIocLists;
    expect(attach.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'iocLists', '0'], message: 'No IOC list with this ID.' }]);
    expect(ok(await t.gql(LOOKUP, { a: '45.33.32.156' }, t.keys.otherAdmin)).iocLookup.matches[0].ioc.comment).toBe('secret');
  });

  it('lets ANALYST read but not write, and UPLOADER neither', async () => {
    expect((await t.gql(`{ iocLists { totalCount } }`, {}, t.keys.analyst)).errors).toBeUndefined();
    expect((await t.gql(`{ iocLookup(address: "1.1.1.1") { address } }`, {}, t.keys.analyst)).errors).toBeUndefined();
    for (const key of [t.keys.analyst, t.keys.uploader]) {
      const r = await t.gql(CREATE, { input: block('nope') }, key);
      expect(r.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    }
    expect((await t.gql(`{ iocLists { totalCount } }`, {}, t.keys.uploader)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });
});
