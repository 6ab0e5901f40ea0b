import { feedServer, sourceCalls } from '../../helpers/feed-source';
import { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';

/**
 * Ageing of DOMAIN lists (#21 item 2), as ioc-ageing.test.ts checks it for address lists: each name a feed holds
 * has its first and last sighting; with a grace period a name the feed no longer holds keeps matching that long,
 * then stops (its expiry passes and a retro-hunt takes its past DNS hits back); a lifetime ends a name that long
 * after its first sighting; a plain REPLACE removes at once and marks what it keeps seen without a write per row.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const A = 'evil-a.example';
const B = 'evil-b.example';
const query = (dt: number, name: string) => `${(T0 + dt).toFixed(6)} IP 10.0.0.5.${40000 + dt} > 9.9.9.9.53: ${4000 + dt}+ A? www.${name}. (40)`;
const CAPTURE = [query(0, A), query(1, B)].join('\n') + '\n';
const HOUR = 3_600_000;

describe.each(drivers)('DOMAIN list ageing (%s)', (driver) => {
  let t: TestApp;
  let base: string;
  let policy: string;
  const srv = feedServer();
  const realNow = Date.now.bind(Date);
  let offset = 0;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-domain-ageing-'));
    await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(srv.server.address() as AddressInfo).port}/feed`;
    t = await createTestApp(driver, { IOC_SOURCE_ALLOW_LOOPBACK: 'true', IOC_SOURCE_MIN_EVERY_S: '60', IOC_SOURCE_RETRY_BASE_MS: '1' });
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      }),
    );
    expect(ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await t.close();
    await new Promise((r) => srv.server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const createList = async (input: Record<string, unknown>) => {
    const r = ok(
      await t.gql(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } userErrors { message } } }`, {
        i: { kind: 'BLOCK', entryKind: 'DOMAIN', severity: 4, category: 'C2_BOTNET', ...input },
      }),
    ).iocListCreate;
    expect(r.userErrors).toEqual([]);
    return r.iocList.id as string;
  };
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
  type Entry = { id: string; name: string; firstSeenInSource: string | null; lastSeenInSource: string | null; expiresAt: string | null };
  const entries = async (list: string): Promise<Entry[]> =>
    (
      ok(
        await t.gql(
          `query($l: ID!) { iocList(id: $l) { domains(first: 100) { totalCount edges { node { id name firstSeenInSource lastSeenInSource expiresAt list { id } } } } } }`,
          { l: list },
        ),
      ).iocList.domains.edges as Array<{ node: Entry & { list: { id: string } } }>
    ).map(({ node: { list: l, ...e } }) => {
      expect(l.id).toBe(list);
      return e;
    });
  const hitNames = async () =>
    ((await t.dataSource.query(`SELECT DISTINCT matched_name FROM dns_hit ORDER BY matched_name`)) as Array<{ matched_name: string }>).map(
      (r) => r.matched_name,
    );
  const ms = (iso: string | null) => (iso == null ? null : new Date(iso).getTime());

  it('a name missing from the feed keeps matching for the grace period, then stops, and a retro-hunt takes its past DNS hits back', async () => {
    const list = await createList({ name: 'graced', ageingGraceSeconds: 3600 });
    await attach(list);
    const src = await source(list);
    const t1 = Date.now();
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ outcome: 'IMPORTED', added: 2, removed: 0 });
    const t1b = Date.now();
    await settleRetroHunts(t.services);
    expect(await hitNames()).toEqual([A, B]);
    const first = await entries(list);
    expect(first.map((e) => e.name)).toEqual([A, B]);
    for (const e of first) {
      expect(ms(e.firstSeenInSource)).toBeGreaterThanOrEqual(t1);
      expect(ms(e.firstSeenInSource)).toBeLessThanOrEqual(t1b);
      expect(e.lastSeenInSource).toBe(e.firstSeenInSource);
      expect(ms(e.expiresAt)).toBe(ms(e.lastSeenInSource)! + HOUR);
    }

    // Half an hour later B is gone from the feed: held, not removed; A is seen again with its ID kept.
    offset += HOUR / 2;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ outcome: 'IMPORTED', httpStatus: 200, added: 0, removed: 0, unchanged: 1 });
    // The same body again is fetched in full (no 304): the names still in it are seen again.
    offset += HOUR / 4;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ outcome: 'IMPORTED', httpStatus: 200, added: 0, removed: 0, unchanged: 1 });
    const second = await entries(list);
    expect(second.map((e) => e.id)).toEqual(first.map((e) => e.id));
    expect(second[0].firstSeenInSource).toBe(first[0].firstSeenInSource);
    expect(ms(second[0].lastSeenInSource)! - ms(first[0].lastSeenInSource)!).toBeGreaterThanOrEqual((3 * HOUR) / 4);
    expect(ms(second[0].expiresAt)).toBe(ms(second[0].lastSeenInSource)! + HOUR);
    expect(second[1]).toEqual(first[1]);
    await settleRetroHunts(t.services);
    expect(await hitNames()).toEqual([A, B]);

    // Past B's grace period: its expiry passes, the past is re-judged, and it no longer matches.
    offset += HOUR / 2;
    expect(await t.services.retroHunts.checkExpiries(Date.now())).toBe(1);
    await settleRetroHunts(t.services);
    expect(await hitNames()).toEqual([A]);
    expect(
      ok(
        await upload(
          t,
          CAPTURE.replace(/4000\d/g, (p) => String(Number(p) + 500)),
          { deviceNickname: 'edge' },
        ),
      ).logUploadCreate.userErrors,
    ).toEqual([]);
    await processQueued(t.services);
    expect(await hitNames()).toEqual([A]);

    // The next fetch without it removes the aged-out row; one that holds it again brings it back, first seen now.
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1 });
    const t4 = Date.now();
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 1, removed: 0 });
    await settleRetroHunts(t.services);
    expect(await hitNames()).toEqual([A, B]);
    const back = (await entries(list)).find((e) => e.name === B)!;
    expect(back.id).not.toBe(first[1].id);
    expect(ms(back.firstSeenInSource)).toBeGreaterThanOrEqual(t4);
    // Detached for the tests after this one.
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyDetachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } }));
    await settleRetroHunts(t.services);
  });

  it('a list without ageing: a REPLACE removes what the feed lacks at once, and each fetch moves the last sighting of what it holds', async () => {
    const list = await createList({ name: 'plain' });
    const src = await source(list);
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 2 });
    const first = await entries(list);
    expect(first.map((e) => [e.expiresAt, e.lastSeenInSource])).toEqual([
      [null, first[0].firstSeenInSource],
      [null, first[1].firstSeenInSource],
    ]);
    offset += HOUR;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1, unchanged: 1 });
    offset += HOUR;
    const t3 = Date.now();
    expect(await fetchNow(src, `${A}\n# again\n`)).toMatchObject({ added: 0, removed: 0, unchanged: 1 });
    const now = await entries(list);
    expect(now.map((e) => [e.id, e.firstSeenInSource, e.expiresAt])).toEqual([[first[0].id, first[0].firstSeenInSource, null]]);
    expect(ms(now[0].lastSeenInSource)).toBeGreaterThanOrEqual(t3);
    // Seen in bulk: the row's own column was not written by the REPLACEs.
    const [row] = (await t.dataSource.query(`SELECT last_seen_in_source FROM ioc_domain WHERE id = ?`, [idOfType(first[0].id, 'IocDomain')])) as Array<{
      last_seen_in_source: number | string;
    }>;
    expect(Number(row.last_seen_in_source)).toBe(ms(first[0].firstSeenInSource));
    // A name added by hand has no sighting.
    expect(
      ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: 'by-hand.example' }] } }))
        .iocAdd.userErrors,
    ).toEqual([]);
    expect((await entries(list)).find((e) => e.name === 'by-hand.example')).toMatchObject({ firstSeenInSource: null, lastSeenInSource: null });
  });

  it('a lifetime ends a name that long after it was first seen, however often the feed holds it', async () => {
    const list = await createList({ name: 'lifetime', entryLifetimeSeconds: 7200 });
    const src = await source(list);
    expect(await fetchNow(src, `${A}\n${B}\n`)).toMatchObject({ added: 2 });
    const first = await entries(list);
    expect(ms(first[0].expiresAt)).toBe(ms(first[0].firstSeenInSource)! + 2 * HOUR);
    offset += HOUR;
    expect(await fetchNow(src, `${A}\n`)).toMatchObject({ added: 0, removed: 1 });
    const kept = await entries(list);
    expect(kept.map((e) => [e.id, e.firstSeenInSource, e.expiresAt])).toEqual([[first[0].id, first[0].firstSeenInSource, first[0].expiresAt]]);
    expect(ms(kept[0].lastSeenInSource)).toBeGreaterThan(ms(first[0].lastSeenInSource)!);
    offset += 2 * HOUR;
    expect(await fetchNow(src, `# refreshed\n${A}\n`)).toMatchObject({ outcome: 'IMPORTED', added: 0, removed: 0, unchanged: 1 });
    const late = await entries(list);
    expect(late.map((e) => [e.id, e.expiresAt])).toEqual([[first[0].id, first[0].expiresAt]]);
    expect(ms(late[0].expiresAt)).toBeLessThan(Date.now());
  });

  it('an APPEND import into a list with a grace period sees the names it holds again and leaves the others as they were', async () => {
    const list = await createList({ name: 'appended', ageingGraceSeconds: 3600 });
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
    expect(await importFile(`${A}\nnew.example\n`)).toMatchObject({ added: 1, removed: 0, duplicatesInList: 1 });
    const after = await entries(list);
    const byName = new Map(after.map((e) => [e.name, e]));
    expect(byName.get(A)).toMatchObject({ id: first[0].id, firstSeenInSource: first[0].firstSeenInSource });
    expect(ms(byName.get(A)!.lastSeenInSource)! - ms(first[0].lastSeenInSource)!).toBeGreaterThanOrEqual(HOUR / 2);
    expect(ms(byName.get(A)!.expiresAt)).toBe(ms(byName.get(A)!.lastSeenInSource)! + HOUR);
    // Not in this file: APPEND removes nothing and does not hold anything either.
    expect(byName.get(B)).toEqual(first[1]);
    expect(ms(byName.get('new.example')!.expiresAt)).toBe(ms(byName.get('new.example')!.firstSeenInSource)! + HOUR);
  });
});
