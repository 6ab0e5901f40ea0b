import { feedServer, sourceCalls } from '../../helpers/feed-source';
import { AddressInfo } from 'node:net';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';

const T0 = Math.floor(Date.now() / 1000) - 3600;
const A = '198.51.100.7';
const B = '203.0.113.9';
const line = (dt: number, dst: string) => `${(T0 + dt).toFixed(6)} IP 10.0.0.5.${50000 + dt} > ${dst}.443: Flags [S], seq 1, win 64240, length 0`;
const CAPTURE = [line(0, A), line(1, B)].join('\n') + '\n';
const HOUR = 3_600_000;

describe.each(drivers)('IOC ageing (%s)', (driver) => {
  let t: TestApp;
  let base: string;
  let policy: string;
  const srv = feedServer();
  // The clock the server reads: moved forward by the tests to let grace periods and lifetimes pass.
  const realNow = Date.now.bind(Date);
  let offset = 0;

  beforeAll(async () => {
    await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}/feed`;
    t = await createTestApp(driver, { IOC_SOURCE_ALLOW_LOOPBACK: 'true', IOC_SOURCE_MIN_EVERY_S: '60', IOC_SOURCE_RETRY_BASE_MS: '1' });
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const device = ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      }),
    ).deviceCreate.device.id;
    expect(device).toBeTruthy();
    expect(ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await t.close();
    await new Promise((r) => srv.server.close(r));
  });

  const LIST = `id entryLifetimeSeconds ageingGraceSeconds`;
  const createList = async (input: Record<string, unknown>) =>
    ok(
      await t.gql(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { ${LIST} } userErrors { code field message } } }`, {
        i: { kind: 'BLOCK', severity: 4, category: 'C2_BOTNET', ...input },
      }),
    ).iocListCreate;
  const attach = async (list: string) =>
    expect(
      ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }))
        .policyAttachIocLists.userErrors,
    ).toEqual([]);
  const { source, fetchNow } = sourceCalls(
    () => t,
    () => base,
    srv.live,
  );
  const entries = async (list: string) =>
    (
      ok(await t.gql(`query($l: ID!) { iocs(list: $l, first: 100) { edges { node { id cidr firstSeenInSource lastSeenInSource expiresAt } } } }`, { l: list }))
        .iocs.edges as Array<{
        node: { id: string; cidr: string; firstSeenInSource: string | null; lastSeenInSource: string | null; expiresAt: string | null };
      }>
    ).map((e) => e.node);
  const hitIps = async () =>
    ((await t.dataSource.query(`SELECT DISTINCT external_ip FROM flow_hit ORDER BY external_ip`)) as Array<{ external_ip: string }>).map((r) => r.external_ip);
  const ms = (iso: string | null) => (iso == null ? null : new Date(iso).getTime());

  it('refuses negative, zero and absurd durations, naming the field', async () => {
    const bad = await createList({ name: 'bad', entryLifetimeSeconds: -5, ageingGraceSeconds: 400_000_000 });
    expect(bad.iocList).toBeNull();
    expect(bad.userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'entryLifetimeSeconds'], message: expect.stringContaining('from 60 to 315,360,000') },
      { code: 'INVALID', field: ['input', 'ageingGraceSeconds'], message: expect.stringContaining('from 60 to 315,360,000') },
    ]);
    expect((await createList({ name: 'bad', ageingGraceSeconds: 0 })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'ageingGraceSeconds'], message: expect.stringContaining('seconds') },
    ]);
    const good = (await createList({ name: 'good', ageingGraceSeconds: 3600 })).iocList;
    expect(good).toMatchObject({ entryLifetimeSeconds: null, ageingGraceSeconds: 3600 });
    const UPDATE = `mutation($i: IocListUpdateInput!) { iocListUpdate(input: $i) { iocList { ${LIST} } userErrors { code field message } } }`;
    const upd = ok(await t.gql(UPDATE, { i: { id: good.id, entryLifetimeSeconds: 30 } })).iocListUpdate;
    expect(upd.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'entryLifetimeSeconds'], message: expect.stringContaining('or 0 to remove it') }]);
    const set = ok(await t.gql(UPDATE, { i: { id: good.id, entryLifetimeSeconds: 86_400, ageingGraceSeconds: 0 } })).iocListUpdate;
    expect(set).toMatchObject({ userErrors: [], iocList: { entryLifetimeSeconds: 86_400, ageingGraceSeconds: null } });
  });

  it('an entry missing from the feed keeps matching for the grace period, then stops, and a retro-hunt takes its past hits back', async () => {
    const list = (await createList({ name: 'graced', ageingGraceSeconds: 3600 })).iocList.id as string;
    await attach(list);
    const src = await source(list);
    const t1 = Date.now();
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ outcome: 'IMPORTED', added: 2, removed: 0 });
    const t1b = Date.now();
    await settleRetroHunts(t.services);
    expect(await hitIps()).toEqual([A, B]);
    const first = await entries(list);
    expect(first.map((e) => e.cidr)).toEqual([`${A}/32`, `${B}/32`]);
    for (const e of first) {
      expect(ms(e.firstSeenInSource)).toBeGreaterThanOrEqual(t1);
      expect(ms(e.firstSeenInSource)).toBeLessThanOrEqual(t1b);
      expect(e.lastSeenInSource).toBe(e.firstSeenInSource);
      expect(ms(e.expiresAt)).toBe(ms(e.lastSeenInSource)! + HOUR);
    }

    // Half an hour later B is gone from the feed: held, not removed; A is seen again with its ID kept.
    offset += HOUR / 2;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ outcome: 'IMPORTED', httpStatus: 200, added: 0, removed: 0, unchanged: 1 });
    // The same body again is fetched in full (no 304): the entries still in it are seen again.
    offset += HOUR / 4;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ outcome: 'IMPORTED', httpStatus: 200, added: 0, removed: 0, unchanged: 1 });
    const second = await entries(list);
    expect(second.map((e) => e.id)).toEqual(first.map((e) => e.id));
    expect(second[0].firstSeenInSource).toBe(first[0].firstSeenInSource);
    expect(ms(second[0].lastSeenInSource)! - ms(first[0].lastSeenInSource)!).toBeGreaterThanOrEqual((3 * HOUR) / 4);
    expect(ms(second[0].expiresAt)).toBe(ms(second[0].lastSeenInSource)! + HOUR);
    expect(second[1]).toEqual(first[1]);
    await settleRetroHunts(t.services);
    expect(await hitIps()).toEqual([A, B]);

    // Past B's grace period: its expiry passes like any other, the past is re-judged, and it no longer matches.
    offset += HOUR / 2;
    expect(await t.services.retroHunts.checkExpiries(Date.now())).toBe(1);
    await settleRetroHunts(t.services);
    expect(await hitIps()).toEqual([A]);
    expect(ok(await upload(t, CAPTURE.replace(/50000/g, '51000').replace(/50001/g, '51001'), { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual(
      [],
    );
    await processQueued(t.services);
    expect(await hitIps()).toEqual([A]);

    // The next fetch without it removes the aged-out row; one that holds it again brings it back, first seen now.
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1 });
    const t4 = Date.now();
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 1, removed: 0 });
    await settleRetroHunts(t.services);
    expect(await hitIps()).toEqual([A, B]);
    const back = (await entries(list)).find((e) => e.cidr === `${B}/32`)!;
    expect(back.id).not.toBe(first[1].id);
    expect(ms(back.firstSeenInSource)).toBeGreaterThanOrEqual(t4);
  });

  it('a list without ageing: a REPLACE removes what the feed lacks at once, and each fetch moves the last sighting of what it holds', async () => {
    const list = (await createList({ name: 'plain' })).iocList.id as string;
    const src = await source(list);
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 2 });
    const first = await entries(list);
    expect(first.map((e) => [e.expiresAt, e.lastSeenInSource])).toEqual([
      [null, first[0].firstSeenInSource],
      [null, first[1].firstSeenInSource],
    ]);
    offset += HOUR;
    const t2 = Date.now();
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1, unchanged: 1 });
    offset += HOUR;
    const t3 = Date.now();
    expect(await fetchNow(src, `${A}\n# again\n`)).toMatchObject({ added: 0, removed: 0, unchanged: 1 });
    const now = await entries(list);
    expect(now.map((e) => [e.id, e.firstSeenInSource, e.expiresAt])).toEqual([[first[0].id, first[0].firstSeenInSource, null]]);
    expect(ms(now[0].lastSeenInSource)).toBeGreaterThanOrEqual(t3);
    expect(t3 - t2).toBeGreaterThanOrEqual(HOUR);
    // An entry added by hand has no sighting.
    expect(
      ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: '192.0.2.1' }] } })).iocAdd
        .userErrors,
    ).toEqual([]);
    expect((await entries(list)).find((e) => e.cidr === '192.0.2.1/32')).toMatchObject({ firstSeenInSource: null, lastSeenInSource: null });
  });

  it('a lifetime ends an entry that long after it was first seen, however often the feed holds it', async () => {
    const list = (await createList({ name: 'lifetime', entryLifetimeSeconds: 7200 })).iocList.id as string;
    const src = await source(list);
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 2 });
    const first = await entries(list);
    expect(ms(first[0].expiresAt)).toBe(ms(first[0].firstSeenInSource)! + 2 * HOUR);
    // Without a grace period, a REPLACE removes what the feed lacks at once.
    offset += HOUR;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1 });
    const kept = await entries(list);
    expect(kept.map((e) => [e.id, e.firstSeenInSource, e.expiresAt])).toEqual([[first[0].id, first[0].firstSeenInSource, first[0].expiresAt]]);
    expect(ms(kept[0].lastSeenInSource)).toBeGreaterThan(ms(first[0].lastSeenInSource)!);
    // Seen again after its lifetime (a changed body: a list without a grace period still asks conditionally):
    // the feed holding it does not bring it back.
    offset += 2 * HOUR;
    expect(await fetchNow(src, `# refreshed\n${A}\n`)).toMatchObject({ outcome: 'IMPORTED', added: 0, removed: 0, unchanged: 1 });
    const late = await entries(list);
    expect(late.map((e) => [e.id, e.expiresAt])).toEqual([[first[0].id, first[0].expiresAt]]);
    expect(ms(late[0].expiresAt)).toBeLessThan(Date.now());
  });
});
