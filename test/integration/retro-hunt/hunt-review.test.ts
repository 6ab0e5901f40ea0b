import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';

/**
 * Retro-hunt exactness in sequences a review found (#17): after each, the stored hits equal what reprocessing every
 * upload from scratch gives. A detached list's removed entries coalesced with an import too large to name its
 * changes; a connection to an IPv4-mapped IPv6 address (matched as IPv4) met by IPv4 entries; device settings.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
/** A connection to C2 written as an IPv4-mapped IPv6 address: the matcher reads it as C2. */
const MAPPED = `${T0.toFixed(6)} IP6 fd00::5.50001 > ::ffff:${C2}.443: Flags [S], seq 1, win 64240, length 0\n`;
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0\n`;

describe.each(drivers)('retro-hunt after changes a review found (%s)', (driver) => {
  let t: TestApp;
  let dir: string;
  let q: (query: string, v?: Record<string, unknown>) => Promise<any>;

  async function settle() {
    const far = Date.now() + 60_000;
    await t.services.retroHunts.runDue(far);
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far);
  }
  const hits = async (): Promise<unknown[][]> =>
    (await t.dataSource.query(`SELECT upload_id, external_ip, ioc_list_id FROM flow_hit ORDER BY id`)).map((r: Record<string, unknown>) => [
      Number(r.upload_id),
      r.external_ip,
      Number(r.ioc_list_id),
    ]);
  /** What reprocessing every stored upload from scratch gives. */
  async function fromScratch() {
    const ups: Array<{ id: number }> = await t.dataSource.query(`SELECT id FROM log_upload ORDER BY id`);
    for (const u of ups)
      await t.dataSource.query(`UPDATE log_upload SET status = 'QUEUED', attempts = 0, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?`, [u.id]);
    await processQueued(t.services);
    return hits();
  }
  async function importFeed(list: number, lines: string[], mode: ImportMode) {
    const file = path.join(dir, `feed-${Date.now()}-${Math.random()}.txt`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const outcome = await t.services.feedImport.importFile(t.accountId, list, { path: file, bytes: fs.statSync(file).size }, mode);
    if (!outcome.ok) throw new Error(JSON.stringify(outcome));
    return outcome.value;
  }

  /**
   * A policy with one list attached (BLOCK, severity 5, C2_BOTNET; `fields` adds to iocListCreate's input) and the
   * device "edge" on it; `attach` attaches or detaches the list.
   */
  async function edgeWithList(fields = '') {
    const policy: string = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const listId: string = (
      await q(
        `mutation { iocListCreate(input: { name: "l", kind: BLOCK, severity: 5, category: C2_BOTNET${fields ? `, ${fields}` : ''} }) { iocList { id } } }`,
      )
    ).iocListCreate.iocList.id;
    const attach = (verb: 'policyAttachIocLists' | 'policyDetachIocLists') =>
      q(`mutation($i: PolicyIocListsInput!) { ${verb}(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [listId] } });
    await attach('policyAttachIocLists');
    const device: string = (
      await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      })
    ).deviceCreate.device.id;
    return { policy, listId, list: idOfType(listId, 'IocList')!, attach, device };
  }

  /** C2 listed, then an upload whose one connection goes to it as an IPv4-mapped IPv6 address: its hit. */
  async function mappedHit(listId: string) {
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: listId, entries: [{ value: C2 }] } });
    await settle();
    ok(await upload(t, MAPPED, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    expect((await hits()).length).toBe(1);
  }

  /** After the hunts settle, no flow hit is left, as reprocessing every upload from scratch gives. */
  async function expectNoHitsLeft() {
    await settle();
    const after = await hits();
    expect(await fromScratch()).toEqual([]);
    expect(after).toEqual([]);
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-hunt-gap-'));
    t = await createTestApp(driver);
    q = async (query, v = {}) => ok(await t.gql(query, v));
  });
  afterEach(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a list detached, then a REPLACE import of more than 50,000 changes that drops the matched entry, before the hunt is planned', async () => {
    const { listId, list, attach } = await edgeWithList();
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: listId, entries: [{ value: C2 }] } });
    ok(await upload(t, CAPTURE, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    expect((await hits()).map((h) => h[1])).toEqual([C2]);

    // Detached (the list holds C2: a hunt of the policy's uploads against the list's entries, read at planning)...
    await attach('policyDetachIocLists');
    // ...then, within the coalescing window, a feed REPLACE that no longer has C2 and changes > 50,000 entries:
    // its target is { lists, anyAddress } whose policies (usedBy) no longer include p.
    const many = Array.from({ length: 50_100 }, (_, i) => `11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    await importFeed(list, many, ImportMode.REPLACE);
    await expectNoHitsLeft();
  }, 180_000);
  it('an IPv4 entry added re-judges an upload whose connection went to its IPv4-mapped IPv6 address (::ffff:a.b.c.d)', async () => {
    const { listId } = await edgeWithList();
    ok(await upload(t, MAPPED, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    expect(await hits()).toEqual([]);

    // An entry added: reprocessing finds the connection (the matcher reads ::ffff:C2 as C2).
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: listId, entries: [{ value: C2 }] } });
    await settle();
    const afterAdd = await hits();
    const scratchAdd = await fromScratch();
    expect(scratchAdd.length).toBe(1);
    expect(afterAdd).toEqual(scratchAdd);
  }, 60_000);

  it('the hit of an IPv4-mapped address goes with the removal of its entry', async () => {
    const { listId } = await edgeWithList();
    await mappedHit(listId);
    expect((await hits()).length).toBe(1);
    const entry = (await q(`query($l: ID!) { iocList(id: $l) { iocs(first: 1) { edges { node { id } } } } }`, { l: listId })).iocList.iocs.edges[0].node.id;
    expect(
      (await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { userErrors { message } } }`, { i: { ids: [entry] } })).iocRemove.userErrors,
    ).toEqual([]);
    await expectNoHitsLeft();
  }, 60_000);
  it('a FALSE_POSITIVE verdict (allow DEVICE) on the hit of an IPv4-mapped address removes that hit', async () => {
    const { listId } = await edgeWithList();
    await mappedHit(listId);
    const [row] = await t.dataSource.query(`SELECT id FROM flow_hit`);
    const set = await q(`mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { userErrors { message } } }`, {
      i: { ids: [toGlobalId('FlowHit', Number(row.id))], status: 'FALSE_POSITIVE', allow: 'DEVICE' },
    });
    expect(set.flowHitTriage.userErrors).toEqual([]);
    await expectNoHitsLeft();
  }, 60_000);
  it("a device's internal networks and own address changed re-judge its uploads", async () => {
    const { listId, device } = await edgeWithList();
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: listId, entries: [{ value: C2 }, { value: '93.184.216.35' }] } });
    await settle();
    ok(
      await upload(t, CAPTURE + `${(T0 + 1).toFixed(6)} IP 93.184.216.35.50000 > 93.184.216.36.443: Flags [S], seq 1, win 64240, length 0\n`, {
        deviceNickname: 'edge',
      }),
    );
    await processQueued(t.services);
    await settle();
    expect((await hits()).length).toBe(2);
    const upd = async (i: Record<string, unknown>) =>
      expect(
        (await q(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, { i: { id: device, ...i } })).deviceUpdate
          .userErrors,
      ).toEqual([]);
    await upd({ internalNetworks: ['198.51.100.0/24'] });
    await upd({ ipAddress: '93.184.216.35' });
    await settle();
    const after = await hits();
    const scratch = await fromScratch();
    expect(after).toEqual(scratch);
  }, 60_000);
  it('a DOMAIN list detached, then a REPLACE import of more than 50,000 names that drops the matched name, before the hunt is planned', async () => {
    const { listId, list, attach } = await edgeWithList('entryKind: DOMAIN');
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: listId, entries: [{ value: 'evil.example' }] } });
    ok(await upload(t, `${(T0 + 1).toFixed(6)} IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ A? www.evil.example. (34)\n`, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    const dns = async (): Promise<unknown[][]> =>
      (await t.dataSource.query(`SELECT upload_id, qname, matched_name FROM dns_hit ORDER BY id`)).map((r: Record<string, unknown>) => [
        Number(r.upload_id),
        r.qname,
        r.matched_name,
      ]);
    expect((await dns()).length).toBe(1);
    await attach('policyDetachIocLists');
    const many = Array.from({ length: 50_100 }, (_, i) => `n${i}.feed.example`);
    await importFeed(list, many, ImportMode.REPLACE);
    await settle();
    const after = await dns();
    await fromScratch();
    const scratch = await dns();
    expect(scratch).toEqual([]);
    expect(after).toEqual(scratch);
  }, 180_000);

  it("an import that moves an entry's expiry to a time the expiry check has passed already re-judges its uploads", async () => {
    const { list } = await edgeWithList('ageingGraceSeconds: 3600');
    ok(await upload(t, CAPTURE, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await importFeed(list, [C2], ImportMode.APPEND);
    await settle();
    expect((await hits()).map((h) => h[1])).toEqual([C2]);
    // A grace period of 1 s (the API's least is 60 s: what matters is where the expiry lands), and the expiry check's
    // clock a minute ahead, as if it ran while the next import's transaction was open: the import moves C2's expiry
    // to a second from now, behind the clock, and active both before and after it (not a change of the import's own).
    await t.dataSource.query(`UPDATE ioc_list SET ageing_grace_seconds = 1 WHERE id = ?`, [list]);
    await t.dataSource.query(`UPDATE retro_hunt_clock SET expiry_checked_at = ? WHERE id = 1`, [Date.now() + 60_000]);
    await importFeed(list, [C2], ImportMode.APPEND);
    const [hunt] = await t.dataSource.query(`SELECT cause FROM retro_hunt ORDER BY id DESC LIMIT 1`);
    expect(hunt.cause).toBe(`Import into list ${list}: 0 entries added, 0 removed, 1 expiring at a time the expiry check has passed.`);
    await new Promise((r) => setTimeout(r, 1_200));
    await expectNoHitsLeft();
  }, 60_000);

  it("... and so does one that moves a DOMAIN entry's expiry there", async () => {
    const { list } = await edgeWithList('entryKind: DOMAIN, ageingGraceSeconds: 3600');
    const dns = async () => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM dns_hit`))[0].n);
    await importFeed(list, ['evil.example'], ImportMode.APPEND);
    ok(await upload(t, `${(T0 + 1).toFixed(6)} IP 10.0.0.5.40000 > 8.8.8.8.53: 1+ A? www.evil.example. (34)\n`, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    expect(await dns()).toBe(1);
    await t.dataSource.query(`UPDATE ioc_list SET ageing_grace_seconds = 1 WHERE id = ?`, [list]);
    await t.dataSource.query(`UPDATE retro_hunt_clock SET expiry_checked_at = ? WHERE id = 1`, [Date.now() + 60_000]);
    await importFeed(list, ['evil.example'], ImportMode.APPEND);
    await new Promise((r) => setTimeout(r, 1_200));
    await settle();
    expect(await dns()).toBe(0);
    await fromScratch();
    expect(await dns()).toBe(0);
  }, 60_000);
});
