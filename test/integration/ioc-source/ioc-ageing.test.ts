import { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { feedServer, sourceCalls } from '../../helpers/feed-source';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';

/**
 * Ageing of fed entries (#21 item 2), on address lists and on DOMAIN lists alike: each entry a feed holds has its
 * first and last sighting; with a grace period an entry the feed no longer holds keeps matching that long, then
 * stops (its expiry passes and a retro-hunt takes its past hits back: flow hits, or DNS hits); a lifetime ends an
 * entry that long after its first sighting; a plain REPLACE removes at once and marks what it keeps seen without a
 * write per row; an APPEND sees again what it holds and leaves the rest.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const HOUR = 3_600_000;

/** What differs between the two kinds of list: entries, how captures reach them, where their hits are. */
interface Kind {
  name: 'IP' | 'DOMAIN';
  list: Record<string, unknown>;
  A: string;
  B: string;
  byHand: string;
  table: 'ioc' | 'ioc_domain';
  /** A capture from 10.0.0.5 reaching A then B; `shift` moves its ports (a second upload of the same). */
  capture(shift?: number): string;
  /** The list's entries, each with `value` as the feed wrote it. */
  entriesQuery: string;
  entryIdType: 'Ioc' | 'IocDomain';
  /** The distinct entry values the stored hits matched. */
  hitsQuery: string;
}

const IP: Kind = {
  name: 'IP',
  list: {},
  A: '198.51.100.7',
  B: '203.0.113.9',
  byHand: '192.0.2.1',
  table: 'ioc',
  capture: (shift = 0) =>
    [0, 1]
      .map((dt, i) => `${(T0 + dt).toFixed(6)} IP 10.0.0.5.${50000 + shift + dt} > ${[IP.A, IP.B][i]}.443: Flags [S], seq 1, win 64240, length 0`)
      .join('\n') + '\n',
  entriesQuery: `query($l: ID!) { iocs(list: $l, first: 100) { edges { node { id value: cidr firstSeenInSource lastSeenInSource expiresAt } } } }`,
  entryIdType: 'Ioc',
  hitsQuery: `SELECT DISTINCT external_ip AS v FROM flow_hit ORDER BY external_ip`,
};

const DOMAIN: Kind = {
  name: 'DOMAIN',
  list: { entryKind: 'DOMAIN' },
  A: 'evil-a.example',
  B: 'evil-b.example',
  byHand: 'by-hand.example',
  table: 'ioc_domain',
  capture: (shift = 0) =>
    [0, 1]
      .map((dt, i) => `${(T0 + dt).toFixed(6)} IP 10.0.0.5.${40000 + shift + dt} > 9.9.9.9.53: ${4000 + dt}+ A? www.${[DOMAIN.A, DOMAIN.B][i]}. (40)`)
      .join('\n') + '\n',
  entriesQuery: `query($l: ID!) { iocList(id: $l) { entries: domains(first: 100) { edges { node { id value: name firstSeenInSource lastSeenInSource expiresAt } } } } }`,
  entryIdType: 'IocDomain',
  hitsQuery: `SELECT DISTINCT matched_name AS v FROM dns_hit ORDER BY matched_name`,
};

type Entry = { id: string; value: string; firstSeenInSource: string | null; lastSeenInSource: string | null; expiresAt: string | null };

describe.each(drivers.flatMap((d) => [IP, DOMAIN].map((k) => [d, k.name, k] as const)))('IOC ageing (%s, %s lists)', (driver, _name, kind) => {
  const { A, B } = kind;
  let t: TestApp;
  let base: string;
  let policy: string;
  let dir: string;
  const srv = feedServer();
  // The clock the server reads: moved forward by the tests to let grace periods and lifetimes pass.
  const realNow = Date.now.bind(Date);
  let offset = 0;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-ageing-'));
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
    expect(ok(await upload(t, kind.capture(), { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await t.close();
    await new Promise((r) => srv.server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const LIST = `id entryLifetimeSeconds ageingGraceSeconds`;
  const createList = async (input: Record<string, unknown>) =>
    ok(
      await t.gql(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { ${LIST} } userErrors { code field message } } }`, {
        i: { kind: 'BLOCK', severity: 4, category: 'C2_BOTNET', ...kind.list, ...input },
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
  const entries = async (list: string): Promise<Entry[]> => {
    const data = ok(await t.gql(kind.entriesQuery, { l: list }));
    const edges = (data.iocs ?? data.iocList.entries).edges as Array<{ node: Entry }>;
    // Address entries show as CIDRs: the feed's single addresses as /32.
    return edges.map(({ node }) => ({ ...node, value: node.value.replace(/\/32$/, '') }));
  };
  const hits = async () => ((await t.dataSource.query(kind.hitsQuery)) as Array<{ v: string }>).map((r) => r.v);
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
    expect(await hits()).toEqual([A, B]);
    const first = await entries(list);
    expect(first.map((e) => e.value)).toEqual([A, B]);
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
    expect(await hits()).toEqual([A, B]);

    // Past B's grace period: its expiry passes like any other, the past is re-judged, and it no longer matches.
    offset += HOUR / 2;
    expect(await t.services.retroHunts.checkExpiries(Date.now())).toBe(1);
    await settleRetroHunts(t.services);
    expect(await hits()).toEqual([A]);
    expect(ok(await upload(t, kind.capture(1000), { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
    expect(await hits()).toEqual([A]);

    // The next fetch without it removes the aged-out row; one that holds it again brings it back, first seen now.
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1 });
    const t4 = Date.now();
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 1, removed: 0 });
    await settleRetroHunts(t.services);
    expect(await hits()).toEqual([A, B]);
    const back = (await entries(list)).find((e) => e.value === B)!;
    expect(back.id).not.toBe(first[1].id);
    expect(ms(back.firstSeenInSource)).toBeGreaterThanOrEqual(t4);
    // Detached: the tests after this one leave the stored hits alone.
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyDetachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }));
    await settleRetroHunts(t.services);
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
    // Seen in bulk: the row's own column was not written by the REPLACEs.
    const [row] = (await t.dataSource.query(`SELECT last_seen_in_source FROM ${kind.table} WHERE id = ?`, [idOfType(first[0].id, kind.entryIdType)])) as Array<{
      last_seen_in_source: number | string;
    }>;
    expect(Number(row.last_seen_in_source)).toBe(ms(first[0].firstSeenInSource));
    // An entry added by hand has no sighting.
    expect(
      ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: kind.byHand }] } })).iocAdd
        .userErrors,
    ).toEqual([]);
    expect((await entries(list)).find((e) => e.value === kind.byHand)).toMatchObject({ firstSeenInSource: null, lastSeenInSource: null });
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

  it('an APPEND import into a list with a grace period sees the entries it holds again and leaves the others as they were', async () => {
    const list = (await createList({ name: 'appended', ageingGraceSeconds: 3600 })).iocList.id as string;
    const file = path.join(dir, 'feed.txt');
    const importFile = async (body: string) => {
      fs.writeFileSync(file, body);
      const r = await t.services.feedImport.importFile(t.accountId, Number(idOfType(list, 'IocList')), { path: file, bytes: body.length }, ImportMode.APPEND);
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.value;
    };
    expect(await importFile(`${A}\n${B}\n`)).toMatchObject({ added: 2, removed: 0 });
    const first = await entries(list);
    offset += HOUR / 2;
    expect(await importFile(`${A}\n${kind.byHand}\n`)).toMatchObject({ added: 1, removed: 0, duplicatesInList: 1 });
    const after = new Map((await entries(list)).map((e) => [e.value, e]));
    const a = after.get(A)!;
    expect(a).toMatchObject({ id: first[0].id, firstSeenInSource: first[0].firstSeenInSource });
    expect(ms(a.lastSeenInSource)! - ms(first[0].lastSeenInSource)!).toBeGreaterThanOrEqual(HOUR / 2);
    expect(ms(a.expiresAt)).toBe(ms(a.lastSeenInSource)! + HOUR);
    // Not in this file: APPEND removes nothing and does not hold anything either.
    expect(after.get(B)).toEqual(first[1]);
    const added = after.get(kind.byHand)!;
    expect(ms(added.expiresAt)).toBe(ms(added.firstSeenInSource)! + HOUR);
  });
});
