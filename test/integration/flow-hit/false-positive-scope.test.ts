import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';

/**
 * A FALSE_POSITIVE verdict's ALLOW entry scoped to one internal host, one device or the whole policy (#17 item 4):
 * the retro-hunt re-runs only the scope's devices' uploads and removes exactly the hits the scope covers; a new
 * upload is judged the same way; every upload processed again from scratch gives the same hits.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const OTHER = '203.0.113.9';
const line = (s: number, host: string, dst: string) => `${(T0 + s).toFixed(6)} IP ${host}.50000 > ${dst}.443: Flags [S], seq 1, win 64240, length 0`;
// Hosts .5 and .6 call C2; host .5 also calls OTHER (another entry of the same list).
const capture = (at: number) => [line(at, '10.0.0.5', C2), line(at + 1, '10.0.0.6', C2), line(at + 2, '10.0.0.5', OTHER)].join('\n') + '\n';
const WINDOW = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };

describe.each(drivers)('FALSE_POSITIVE allow scoped to a host, a device or the policy (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  const settle = () => settleRetroHunts(t.services);
  /** Every hit as "device host>address", sorted, with ids to triage. */
  const hits = async () => {
    const edges = (
      await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 100) { edges { node { id internalIp matchedIp device { nickname } } } } }`, { f: WINDOW })
    ).flowHits.edges.map((e: any) => e.node);
    return edges
      .map((n: any) => ({ id: n.id, key: `${n.device.nickname} ${n.internalIp}>${n.matchedIp}` }))
      .sort((a: any, b: any) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
  };
  const keys = async () => (await hits()).map((h: { key: string }) => h.key);
  const idOf = async (key: string) => (await hits()).find((h: { key: string }) => h.key === key)?.id;
  const triage = (input: Record<string, unknown>) =>
    q(
      `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } userErrors { code field message } } }`,
      { i: input },
      t.keys.analyst,
    ).then((r) => r.flowHitTriage);
  const latestHunt = async () =>
    (await q(`{ retroHunts(first: 1) { edges { node { status uploadsRerun hitsRemoved hitsAdded } } } }`)).retroHunts.edges.map((e: any) => e.node)[0];
  const allowEntries = async () => {
    const lists = (
      await q(
        `{ iocLists(first: 20) { edges { node { name iocs(first: 10) { edges { node { cidr allowScopes { device { nickname } internalHost } } } } } } } }`,
      )
    ).iocLists.edges.map((e: any) => e.node);
    const fp = lists.find((l: any) => l.name.startsWith('False positives'));
    return fp ? fp.iocs.edges.map((e: any) => e.node) : [];
  };
  const verdict = async (address: string) =>
    (await q(`query($a: String!) { iocLookup(address: $a) { policies { verdict } } }`, { a: address })).iocLookup.policies[0].verdict;
  let uploads = 0;
  /** A capture of the three calls, later each time (the same file twice would be the same upload). */
  const uploadTo = async (nickname: string) => {
    expect(ok(await upload(t, capture(10 * uploads++), { deviceNickname: nickname })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  };

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "c2", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: C2 }, { value: OTHER }] } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    const create = `mutation($n: String!, $a: String!, $p: ID!) { deviceCreate(input: { nickname: $n, ipType: STATIC, ipAddress: $a, policy: $p }) { device { id } } }`;
    await q(create, { n: 'edge', a: '93.184.216.34', p: policy });
    await q(create, { n: 'branch', a: '93.184.216.35', p: policy });
    await uploadTo('edge');
    await uploadTo('branch');
    await settle();
  });
  afterAll(() => t.close());

  it('refuses a scope with another verdict, and two scopes that disagree', async () => {
    const id = await idOf('edge 10.0.0.5>198.51.100.7');
    expect((await triage({ ids: [id], status: 'ACKNOWLEDGED', allow: 'HOST' })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'allow'], message: 'Only a FALSE_POSITIVE verdict can allow the entry.' },
    ]);
    expect((await triage({ ids: [id], status: 'FALSE_POSITIVE', allow: 'DEVICE', allowInPolicy: true })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'allowInPolicy'], message: 'Give allow or allowInPolicy, not both with different scopes.' },
    ]);
    expect(await allowEntries()).toEqual([]);
  });

  it('HOST: removes only that host’s hits on that entry’s network, on that device', async () => {
    expect(await keys()).toEqual([
      'branch 10.0.0.5>198.51.100.7',
      'branch 10.0.0.5>203.0.113.9',
      'branch 10.0.0.6>198.51.100.7',
      'edge 10.0.0.5>198.51.100.7',
      'edge 10.0.0.5>203.0.113.9',
      'edge 10.0.0.6>198.51.100.7',
    ]);
    const r = await triage({ ids: [await idOf('edge 10.0.0.5>198.51.100.7')], status: 'FALSE_POSITIVE', allow: 'HOST', note: 'lab scanner' });
    expect(r).toEqual({ result: { count: 1 }, userErrors: [] });
    expect(await allowEntries()).toEqual([{ cidr: `${C2}/32`, allowScopes: [{ device: { nickname: 'edge' }, internalHost: '10.0.0.5' }] }]);
    await settle();
    expect(await keys()).toEqual([
      'branch 10.0.0.5>198.51.100.7',
      'branch 10.0.0.5>203.0.113.9',
      'branch 10.0.0.6>198.51.100.7',
      'edge 10.0.0.5>203.0.113.9',
      'edge 10.0.0.6>198.51.100.7',
    ]);
    // Only the edge device's upload was re-run; the policy still blocks the address.
    expect(await latestHunt()).toEqual({ status: 'COMPLETED', uploadsRerun: 1, hitsRemoved: 1, hitsAdded: 0 });
    expect(await verdict(C2)).toBe('BLOCKED');
  });

  it('DEVICE: removes every host’s hits on that network on that device, and new uploads are judged so', async () => {
    const r = await triage({ ids: [await idOf('edge 10.0.0.6>198.51.100.7')], status: 'FALSE_POSITIVE', allow: 'DEVICE' });
    expect(r.userErrors).toEqual([]);
    expect(await allowEntries()).toEqual([
      {
        cidr: `${C2}/32`,
        allowScopes: [
          { device: { nickname: 'edge' }, internalHost: null },
          { device: { nickname: 'edge' }, internalHost: '10.0.0.5' },
        ],
      },
    ]);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, hitsRemoved: 1 });
    await uploadTo('edge');
    await uploadTo('branch');
    expect(await keys()).toEqual([
      'branch 10.0.0.5>198.51.100.7',
      'branch 10.0.0.5>198.51.100.7',
      'branch 10.0.0.5>203.0.113.9',
      'branch 10.0.0.5>203.0.113.9',
      'branch 10.0.0.6>198.51.100.7',
      'branch 10.0.0.6>198.51.100.7',
      'edge 10.0.0.5>203.0.113.9',
      'edge 10.0.0.5>203.0.113.9',
    ]);
  });

  it('equals processing every stored upload again from scratch', async () => {
    const before = await keys();
    const uploads = (await q(`{ logUploads(first: 20) { edges { node { id } } } }`)).logUploads.edges.map((e: any) => e.node.id);
    expect(uploads).toHaveLength(4);
    // A fresh cache: the scoped allows are read from the database, not kept from the requests before.
    for (const id of uploads) {
      expect(
        ok(await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { message } } }`, { i: { id } })).logUploadReprocess
          .userErrors,
      ).toEqual([]);
    }
    await processQueued(t.services);
    expect(await keys()).toEqual(before);
  });

  it('POLICY: widens the scoped entry to the whole policy, and every device’s hits on it go', async () => {
    const r = await triage({ ids: [await idOf('branch 10.0.0.6>198.51.100.7')], status: 'FALSE_POSITIVE', allow: 'POLICY' });
    expect(r.userErrors).toEqual([]);
    expect(await allowEntries()).toEqual([{ cidr: `${C2}/32`, allowScopes: [] }]);
    await settle();
    expect(await keys()).toEqual(['branch 10.0.0.5>203.0.113.9', 'branch 10.0.0.5>203.0.113.9', 'edge 10.0.0.5>203.0.113.9', 'edge 10.0.0.5>203.0.113.9']);
    expect(await verdict(C2)).toBe('ALLOWED');
    // A narrower verdict afterwards adds nothing: the entry already allows in the whole policy.
    const hunts = (await q(`{ retroHunts(first: 50) { edges { node { id } } } }`)).retroHunts.edges.length;
    const again = await triage({ ids: [await idOf('edge 10.0.0.5>203.0.113.9')], status: 'ACKNOWLEDGED' });
    expect(again.userErrors).toEqual([]);
    expect((await q(`{ retroHunts(first: 50) { edges { node { id } } } }`)).retroHunts.edges.length).toBe(hunts);
  });

  it('a scoped verdict on another entry adds a scoped entry beside the policy-wide one', async () => {
    const r = await triage({ ids: [await idOf('edge 10.0.0.5>203.0.113.9')], status: 'FALSE_POSITIVE', allow: 'DEVICE' });
    expect(r).toEqual({ result: { count: 1 }, userErrors: [] });
    expect(await allowEntries()).toEqual([
      { cidr: `${C2}/32`, allowScopes: [] },
      { cidr: `${OTHER}/32`, allowScopes: [{ device: { nickname: 'edge' }, internalHost: null }] },
    ]);
    await settle();
    expect(await keys()).toEqual(['branch 10.0.0.5>203.0.113.9', 'branch 10.0.0.5>203.0.113.9']);
    expect(await latestHunt()).toEqual({ status: 'COMPLETED', uploadsRerun: 2, hitsRemoved: 2, hitsAdded: 0 });
  });

  it('a device deleted takes the ALLOW entries limited to it alone: they never come to allow in the whole policy', async () => {
    const edgeId = (await q(`{ devices(first: 10) { edges { node { id nickname } } } }`)).devices.edges.find((e: any) => e.node.nickname === 'edge').node.id;
    expect(
      (await q(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, { i: { id: edgeId } })).deviceDelete.userErrors,
    ).toEqual([]);
    expect(await allowEntries()).toEqual([{ cidr: `${C2}/32`, allowScopes: [] }]);
    expect(await verdict(OTHER)).toBe('BLOCKED');
    await uploadTo('branch');
    await settle();
    expect((await keys()).filter((k: string) => k.endsWith(OTHER))).toHaveLength(3);
  });
});

describe.each(drivers)('FALSE_POSITIVE allow when its list is no longer an ALLOW list (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  const statuses = async () =>
    (await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 100) { edges { node { id matchedIp triageStatus } } } }`, { f: WINDOW })).flowHits.edges.map(
      (e: any) => e.node,
    );
  const triage = (input: Record<string, unknown>) =>
    q(
      `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } userErrors { code field message } } }`,
      { i: input },
      t.keys.analyst,
    ).then((r) => r.flowHitTriage);
  const fpList = async () =>
    (await q(`{ iocLists(first: 20) { edges { node { id name kind } } } }`)).iocLists.edges
      .map((e: any) => e.node)
      .find((l: any) => l.name.startsWith('False positives'));
  const setKind = async (id: string, kind: string) =>
    expect(
      (await q(`mutation($i: IocListUpdateInput!) { iocListUpdate(input: $i) { userErrors { message } } }`, { i: { id, kind } })).iocListUpdate.userErrors,
    ).toEqual([]);

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    const list = (await q(`mutation { iocListCreate(input: { name: "c2", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: C2 }, { value: OTHER }] } });
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    expect(ok(await upload(t, capture(0), { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(() => t.close());

  it('refuses the verdict before storing it, names the list, and takes it again once the list is ALLOW', async () => {
    // An allow of OTHER on the device removes OTHER's hits only: C2's stay to be triaged.
    const first = (await statuses()).find((h: any) => h.matchedIp === OTHER);
    expect((await triage({ ids: [first.id], status: 'FALSE_POSITIVE', allow: 'DEVICE' })).userErrors).toEqual([]);
    await settleRetroHunts(t.services);
    // Read after the retro-hunt, which re-ran the upload.
    const second = (await statuses()).find((h: any) => h.matchedIp === C2);
    const list = await fpList();
    expect(list.kind).toBe('ALLOW');
    await setKind(list.id, 'BLOCK');
    const refused = await triage({ ids: [second.id], status: 'FALSE_POSITIVE', allow: 'POLICY' });
    expect(refused.result).toBeNull();
    expect(refused.userErrors).toEqual([
      {
        code: 'INVALID_STATE',
        field: ['input', 'allow'],
        message: `FALSE_POSITIVE verdicts write their allows to the list "${list.name}" (${list.id}), which is no longer an address ALLOW list; change its kind back to ALLOW or rename it (a new list is then created).`,
      },
    ]);
    // Nothing stored: the hit is still open.
    expect((await statuses()).find((h: any) => h.id === second.id).triageStatus).toBe('OPEN');
    // A verdict without an allow is not concerned.
    expect((await triage({ ids: [second.id], status: 'ACKNOWLEDGED' })).userErrors).toEqual([]);
    await setKind(list.id, 'ALLOW');
    expect(await triage({ ids: [second.id], status: 'FALSE_POSITIVE', allow: 'POLICY' })).toEqual({ result: { count: 1 }, userErrors: [] });
    // Stored (the retro-hunt the allow asked for has not run yet: the hit is still there).
    expect((await statuses()).find((h: any) => h.id === second.id).triageStatus).toBe('FALSE_POSITIVE');
  });
});
