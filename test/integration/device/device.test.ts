import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

const FIELDS = `id type manufacturer model nickname ipType ipAddress domainName note internalNetworks identifyByUploaderIp createdAt updatedAt policy { id name }`;
const CREATE = `mutation($input: DeviceCreateInput!) { deviceCreate(input: $input) { device { ${FIELDS} } userErrors { code field message } } }`;
const UPDATE = `mutation($input: DeviceUpdateInput!) { deviceUpdate(input: $input) { device { ${FIELDS} } userErrors { code field message } } }`;
const DELETE = `mutation($input: DeviceDeleteInput!) { deviceDelete(input: $input) { device { id nickname } userErrors { code field message } } }`;
const GET = `query($id: ID!) { device(id: $id) { ${FIELDS} } }`;
const LIST = `query($first: Int, $after: String, $filter: DeviceFilter) { devices(first: $first, after: $after, filter: $filter) { totalCount edges { node { nickname } } pageInfo { hasNextPage endCursor } } }`;

describe.each(drivers)('devices (%s)', (driver) => {
  let t: TestApp;
  let policyId: string;
  let otherPolicyId: string;
  let foreignPolicyId: string;
  const resolved = new Map<string, string[]>([['gw.example.net', ['203.0.113.7', '2001:4860:4860::8888']]]);

  const create = async (input: Record<string, unknown>, key?: string) => ok(await t.gql(CREATE, { input: { policy: policyId, ...input } }, key)).deviceCreate;

  beforeAll(async () => {
    t = await createTestApp(driver, {}, { resolveHost: async (name) => resolved.get(name) ?? [] });
    const mk = async (name: string, key?: string) =>
      ok(await t.gql(`mutation($n: String!) { policyCreate(input: { name: $n }) { policy { id } } }`, { n: name }, key)).policyCreate.policy.id;
    policyId = await mk('Default');
    otherPolicyId = await mk('Other');
    foreignPolicyId = await mk('Foreign', t.keys.otherAdmin);
  });
  afterAll(() => t.close());

  it("creates a STATIC device with the original product's fixed type, manufacturer and model", async () => {
    const r = await create({
      nickname: ' HQ sensor ',
      ipType: 'STATIC',
      ipAddress: '8.8.4.4',
      note: 'rack 3',
      internalNetworks: ['100.64.1.7/16', '2001:db8:1::/48', '100.64.0.0/16'],
    });
    expect(r.userErrors).toEqual([]);
    expect(r.device).toMatchObject({
      type: 'IP Device',
      manufacturer: 'Packet Capture',
      model: 'PCAP',
      nickname: 'HQ sensor',
      ipType: 'STATIC',
      ipAddress: '8.8.4.4',
      domainName: null,
      note: 'rack 3',
      // Host bits cleared, duplicates dropped.
      internalNetworks: ['100.64.0.0/16', '2001:db8:1::/48'],
      identifyByUploaderIp: false,
      policy: { id: policyId, name: 'Default' },
    });
    expect(ok(await t.gql(GET, { id: r.device.id })).device).toEqual(r.device);
  });

  it('stores IPv6 in canonical form and unwraps IPv4-mapped addresses', async () => {
    expect((await create({ nickname: 'v6', ipType: 'STATIC', ipAddress: '2001:4860:4860:0:0:0:0:8888' })).device.ipAddress).toBe('2001:4860:4860::8888');
    expect((await create({ nickname: 'mapped', ipType: 'STATIC', ipAddress: '::ffff:1.1.1.1' })).device.ipAddress).toBe('1.1.1.1');
  });

  it.each([
    ['10.1.2.3', 'a private (RFC 1918) address'],
    ['192.168.0.1', 'a private (RFC 1918) address'],
    ['127.0.0.1', 'a loopback address'],
    ['169.254.10.1', 'a link-local address'],
    ['224.0.0.251', 'a multicast address'],
    ['192.0.2.10', 'a documentation (example) address'],
    ['240.0.0.1', 'a reserved address'],
    ['100.64.0.1', 'a carrier-grade NAT (100.64.0.0/10) address'],
    ['fd00::1', 'a unique-local IPv6 (fc00::/7) address'],
    ['fe80::1', 'a link-local address'],
    ['::1', 'a loopback address'],
    ['2001:db8::1', 'a documentation (example) address'],
  ])('refuses %s as a STATIC address: %s', async (ip, why) => {
    const r = await create({ nickname: `bad ${ip}`, ipType: 'STATIC', ipAddress: ip });
    expect(r.device).toBeNull();
    expect(r.userErrors).toEqual([{ code: 'NOT_PUBLIC', field: ['input', 'ipAddress'], message: `${ip} is ${why}; a STATIC device needs a public address.` }]);
  });

  it('reports every problem of a bad input at once, each with its field', async () => {
    const r = await create({
      nickname: '',
      ipType: 'STATIC',
      ipAddress: '300.1.1.1',
      domainName: 'x.example.com',
      note: 'n'.repeat(1001),
      internalNetworks: ['10.0.0.0/8', 'banana', '1.2.3.4/33'],
    });
    expect(r.device).toBeNull();
    expect(r.userErrors.map((e: any) => [e.code, e.field.join('.')])).toEqual([
      ['REQUIRED', 'input.nickname'],
      ['INVALID', 'input.domainName'],
      ['INVALID', 'input.ipAddress'],
      ['TOO_LONG', 'input.note'],
      ['INVALID', 'input.internalNetworks.1'],
      ['INVALID', 'input.internalNetworks.2'],
    ]);
    expect(r.userErrors[2].message).toBe('"300.1.1.1" is not an IPv4 or IPv6 address.');
  });

  it('requires a valid FQDN for DYNAMIC devices and lower-cases it', async () => {
    const missing = await create({ nickname: 'dyn', ipType: 'DYNAMIC' });
    expect(missing.userErrors).toEqual([
      { code: 'REQUIRED', field: ['input', 'domainName'], message: 'A DYNAMIC device needs a DNS name (A/AAAA record) that points at it.' },
    ]);
    for (const bad of ['localhost', 'under_score.example.com', '-lead.example.com', '1.2.3.4', `${'a'.repeat(64)}.com`]) {
      const r = await create({ nickname: 'dyn', ipType: 'DYNAMIC', domainName: bad });
      expect(r.userErrors).toHaveLength(1);
      expect(r.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'domainName'] });
    }
    const good = await create({ nickname: 'dyn', ipType: 'DYNAMIC', domainName: 'GW.Example.NET.' });
    expect(good.device).toMatchObject({ ipType: 'DYNAMIC', domainName: 'gw.example.net', ipAddress: null });
  });

  it('keeps nicknames unique per account, case-insensitively', async () => {
    await create({ nickname: 'Edge-1', ipType: 'STATIC', ipAddress: '9.9.9.9' });
    const dup = await create({ nickname: 'EDGE-1', ipType: 'STATIC', ipAddress: '9.9.9.10' });
    expect(dup.userErrors).toEqual([{ code: 'TAKEN', field: ['input', 'nickname'], message: 'A device nicknamed "Edge-1" already exists.' }]);
    const tooLong = await create({ nickname: 'n'.repeat(65), ipType: 'STATIC', ipAddress: '9.9.9.11' });
    expect(tooLong.userErrors[0]).toMatchObject({ code: 'TOO_LONG', field: ['input', 'nickname'] });
    // Another account may use the same nickname.
    const theirs = ok(
      await t.gql(CREATE, { input: { nickname: 'edge-1', ipType: 'STATIC', ipAddress: '9.9.9.9', policy: foreignPolicyId } }, t.keys.otherAdmin),
    ).deviceCreate;
    expect(theirs.userErrors).toEqual([]);
  });

  it('updates only the given fields, and switching type drops the other address', async () => {
    const d = (await create({ nickname: 'mover', ipType: 'STATIC', ipAddress: '1.0.0.1', note: 'keep me' })).device;
    const renamed = ok(await t.gql(UPDATE, { input: { id: d.id, nickname: 'Mover 2', policy: otherPolicyId } })).deviceUpdate;
    expect(renamed.userErrors).toEqual([]);
    expect(renamed.device).toMatchObject({ nickname: 'Mover 2', ipAddress: '1.0.0.1', note: 'keep me', policy: { name: 'Other' } });
    const dyn = ok(await t.gql(UPDATE, { input: { id: d.id, ipType: 'DYNAMIC', domainName: 'mover.example.org' } })).deviceUpdate;
    expect(dyn.device).toMatchObject({ ipType: 'DYNAMIC', ipAddress: null, domainName: 'mover.example.org' });
    const cleared = ok(await t.gql(UPDATE, { input: { id: d.id, note: '', internalNetworks: [] } })).deviceUpdate;
    expect(cleared.device).toMatchObject({ note: null, internalNetworks: [] });
    const nickTaken = ok(await t.gql(UPDATE, { input: { id: d.id, nickname: 'edge-1' } })).deviceUpdate;
    expect(nickTaken.userErrors[0]).toMatchObject({ code: 'TAKEN' });
    // Its own nickname in another case is not a clash.
    expect(ok(await t.gql(UPDATE, { input: { id: d.id, nickname: 'MOVER 2' } })).deviceUpdate.userErrors).toEqual([]);
  });

  it('refuses a policy of another account as not found', async () => {
    const r = await create({ nickname: 'foreign-policy', ipType: 'STATIC', ipAddress: '1.1.1.2', policy: foreignPolicyId });
    expect(r.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'policy'], message: 'No policy with this ID.' }]);
    const garbage = await create({ nickname: 'garbage-policy', ipType: 'STATIC', ipAddress: '1.1.1.2', policy: 'not-an-id' });
    expect(garbage.userErrors).toEqual(r.userErrors);
  });

  it('lists, filters and pages devices', async () => {
    const all = ok(await t.gql(LIST, { first: 100 })).devices;
    const names = all.edges.map((e: any) => e.node.nickname);
    expect(all.totalCount).toBe(names.length);
    expect(names).not.toContain('edge-1'); // account B's device
    const byNick = ok(await t.gql(LIST, { filter: { nicknameContains: 'EDGE' } })).devices;
    expect(byNick.edges.map((e: any) => e.node.nickname)).toEqual(['Edge-1']);
    const byIp = ok(await t.gql(LIST, { filter: { ipAddress: '2001:4860:4860:0::8888' } })).devices;
    expect(byIp.edges.map((e: any) => e.node.nickname)).toEqual(['v6']);
    const byPolicy = ok(await t.gql(LIST, { filter: { policies: [otherPolicyId] } })).devices;
    expect(byPolicy.edges.map((e: any) => e.node.nickname)).toEqual(['MOVER 2']);
    const foreign = ok(await t.gql(LIST, { filter: { policies: [foreignPolicyId] } })).devices;
    expect(foreign.totalCount).toBe(0);
    const pages: string[] = [];
    let after: string | null = null;
    do {
      const page: any = ok(await t.gql(LIST, { first: 2, after })).devices;
      pages.push(...page.edges.map((e: any) => e.node.nickname));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after);
    expect(pages).toEqual(names);
  });

  it('finds devices by nickname and by IP (static, or what a DNS name resolves to)', async () => {
    const byNick = await t.services.devices.findByNickname(t.accountId, 'edge-1');
    expect(byNick?.nickname).toBe('Edge-1');
    expect(await t.services.devices.findByNickname(t.otherAccountId, 'HQ SENSOR')).toBeNull();
    expect((await t.services.devices.findByIp(t.accountId, '8.8.4.4')).map((d) => d.nickname)).toEqual(['HQ sensor']);
    expect((await t.services.devices.findByIp(t.accountId, '203.0.113.7')).map((d) => d.nickname)).toEqual(['dyn']);
    expect((await t.services.devices.findByIp(t.accountId, '2001:4860:4860::8888')).map((d) => d.nickname)).toEqual(['v6', 'dyn']);
    expect(await t.services.devices.findByIp(t.otherAccountId, '8.8.4.4')).toEqual([]);
    expect(await t.services.devices.findByIp(t.accountId, 'not an ip')).toEqual([]);
  });

  it("deletes a device; another account's device looks missing to every operation", async () => {
    const theirs = ok(await t.gql(LIST, { filter: { nicknameContains: 'edge' } }, t.keys.otherAdmin)).devices;
    expect(theirs.totalCount).toBe(1);
    const theirId = ok(await t.gql(`{ devices { edges { node { id } } } }`, {}, t.keys.otherAdmin)).devices.edges[0].node.id;
    expect(ok(await t.gql(GET, { id: theirId })).device).toBeNull();
    expect(ok(await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: theirId })).node).toBeNull();
    const missing = { code: 'NOT_FOUND', field: ['input', 'id'], message: 'No device with this ID.' };
    expect(ok(await t.gql(UPDATE, { input: { id: theirId, note: 'x' } })).deviceUpdate.userErrors).toEqual([missing]);
    expect(ok(await t.gql(DELETE, { input: { id: theirId } })).deviceDelete.userErrors).toEqual([missing]);
    const mine = (await create({ nickname: 'short-lived', ipType: 'STATIC', ipAddress: '4.4.4.4' })).device;
    expect(ok(await t.gql(DELETE, { input: { id: mine.id } })).deviceDelete).toEqual({ device: { id: mine.id, nickname: 'short-lived' }, userErrors: [] });
    expect(ok(await t.gql(GET, { id: mine.id })).device).toBeNull();
    expect(ok(await t.gql(DELETE, { input: { id: mine.id } })).deviceDelete.userErrors).toEqual([missing]);
    // Still there for its owner.
    expect(ok(await t.gql(GET, { id: theirId }, t.keys.otherAdmin)).device.nickname).toBe('edge-1');
  });
});
