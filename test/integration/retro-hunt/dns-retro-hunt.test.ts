import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { ImportMode } from '../../../src/modules/ioc/ioc.enums';
import { readNameSets } from '../../../src/modules/log-upload/name-set.store';

/**
 * DNS retro-hunts (#18 item 4): a DOMAIN-list change re-runs exactly the stored uploads that asked a name at or under a
 * changed entry (their name sets, upload_name_set), and the uploads whose questions are unknown (parsed with DNS off).
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const ask = (name: string, at: number) => `${(T0 + at).toFixed(6)} IP 10.0.0.5.40000 > 8.8.8.8.53: ${at}+ A? ${name}. (34)\n`;

describe.each(drivers)('DNS retro-hunt (%s)', (driver) => {
  let t: TestApp;
  let dir: string;
  let policy: string;
  let block: string;
  let late: string;
  const uploads: Record<string, number> = {};
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const settle = () => settleRetroHunts(t.services);
  const latestHunt = async () => {
    const [h] = await t.dataSource.query(`SELECT id, scope, status, uploads_examined, uploads_rerun FROM retro_hunt ORDER BY id DESC LIMIT 1`);
    return { ...h, uploads_examined: Number(h.uploads_examined), uploads_rerun: Number(h.uploads_rerun), scope: JSON.parse(h.scope) };
  };
  const rerunOf = async (huntId: number) =>
    (await t.dataSource.query(`SELECT upload_id FROM retro_hunt_upload WHERE retro_hunt_id = ? ORDER BY upload_id`, [huntId])).map((r: any) =>
      Number(r.upload_id),
    );
  const dnsHits = async () =>
    (await t.dataSource.query(`SELECT upload_id, qname, matched_name FROM dns_hit ORDER BY upload_id, qname`)).map(
      (r: any) => `${Number(r.upload_id)} ${r.qname} ${r.matched_name}`,
    );
  const add = async (list: string, value: string) => {
    const r = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { domains { id name } userErrors { message } } }`, { i: { list, entries: [{ value }] } })
    ).iocAdd;
    expect(r.userErrors).toEqual([]);
    return r.domains[0].id as string;
  };
  const huntCounts = async (id: number) =>
    (
      await q(`query($id: ID!) { node(id: $id) { ... on RetroHunt { status uploadsRerun dnsHitsAdded dnsHitsRemoved hitsAdded } } }`, {
        id: toGlobalId('RetroHunt', id),
      })
    ).node;
  /** Plans the due hunt and returns which uploads it queued (before they run). */
  const plan = async (at = Date.now() + 60_000) => {
    await t.services.retroHunts.runDue(at);
    const hunt = await latestHunt();
    return { hunt, queued: await rerunOf(Number(hunt.id)) };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-dns-hunt-'));
    t = await createTestApp(driver);
    policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const domainList = async (name: string) =>
      (
        await q(
          `mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, entryKind: DOMAIN, severity: 5, category: C2_BOTNET }) { iocList { id } } }`,
          {
            n: name,
          },
        )
      ).iocListCreate.iocList.id as string;
    block = await domainList('c2');
    late = await domainList('late');
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    // Parsed with DNS off: the policy has no DOMAIN list yet.
    for (const [key, text] of [
      ['evil', ask('www.evil.example', 1) + ask('benign.example', 2)],
      ['bad', ask('cdn.bad.test', 3)],
      ['quiet', ask('benign.example', 4)],
    ]) {
      const r = ok(await upload(t, text, { deviceNickname: 'edge' })).logUploadCreate;
      expect(r.userErrors).toEqual([]);
      uploads[key] = idOfType(r.logUpload.id, 'LogUpload')!;
    }
    await processQueued(t.services);
  });
  afterAll(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an upload parsed with DNS off has no name set; attaching a DOMAIN list re-runs it and keeps its names', async () => {
    expect((await readNameSets(t.dataSource.manager, Object.values(uploads))).size).toBe(0);
    await add(block, 'evil.example');
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [block] } });
    const { queued } = await plan();
    // Their questions were unknown: all three may ask evil.example.
    expect(queued).toEqual([uploads.evil, uploads.bad, uploads.quiet]);
    await settle();
    expect(await dnsHits()).toEqual([`${uploads.evil} www.evil.example evil.example`]);
    const sets = await readNameSets(t.dataSource.manager, Object.values(uploads));
    expect(sets.get(uploads.evil)).toEqual(['benign.example', 'www.evil.example']);
    expect(sets.get(uploads.bad)).toEqual(['cdn.bad.test']);
  });

  it('iocAdd re-runs only the uploads that asked the name or a name under it', async () => {
    await add(block, 'bad.test');
    const { hunt, queued } = await plan();
    expect(hunt.uploads_examined).toBe(3);
    expect(queued).toEqual([uploads.bad]);
    await settle();
    expect(await dnsHits()).toEqual([`${uploads.evil} www.evil.example evil.example`, `${uploads.bad} cdn.bad.test bad.test`]);
    expect(await huntCounts(Number(hunt.id))).toEqual({ status: 'COMPLETED', uploadsRerun: 1, dnsHitsAdded: 1, dnsHitsRemoved: 0, hitsAdded: 0 });
    // A name nobody asked re-runs nothing; a suffix that is not at a label boundary neither.
    await add(block, 'nobody.example');
    await add(block, 'ad.test');
    expect((await plan()).queued).toEqual([]);
  });

  it('iocRemove of a domain entry (its IocDomain ID) re-runs the uploads that asked it and removes their DNS hits', async () => {
    const [row] = await t.dataSource.query(`SELECT id FROM ioc_domain WHERE name = 'bad.test'`);
    const r = (
      await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { removed { id } removedDomains { name } userErrors { message } } }`, {
        i: { ids: [toGlobalId('IocDomain', Number(row.id))] },
      })
    ).iocRemove;
    expect(r).toEqual({ removed: [], removedDomains: [{ name: 'bad.test' }], userErrors: [] });
    const removal = await plan();
    expect(removal.queued).toEqual([uploads.bad]);
    await settle();
    expect(await dnsHits()).toEqual([`${uploads.evil} www.evil.example evil.example`]);
    expect(await huntCounts(Number(removal.hunt.id))).toEqual({ status: 'COMPLETED', uploadsRerun: 1, dnsHitsAdded: 0, dnsHitsRemoved: 1, hitsAdded: 0 });
    // An unknown ID refuses the call, naming its place.
    const refused = (
      await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { removedDomains { name } userErrors { field message } } }`, {
        i: { ids: [toGlobalId('IocDomain', Number(row.id))] },
      })
    ).iocRemove;
    expect(refused.userErrors).toEqual([{ field: ['input', 'ids', '0'], message: 'No IOC entry with this ID.' }]);
  });

  it('an import (APPEND, then REPLACE) re-runs the uploads that asked the names it added or removed', async () => {
    const feed = (names: string[]) => {
      const file = path.join(dir, `feed-${Math.random()}.txt`);
      fs.writeFileSync(file, names.join('\n') + '\n');
      return { path: file, bytes: fs.statSync(file).size };
    };
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [late] } });
    // An empty DOMAIN list attached: nothing to re-judge.
    expect((await plan()).queued).toEqual([]);
    expect((await t.services.feedImport.importFile(t.accountId, idOfType(late, 'IocList'), feed(['benign.example', 'x.org']), ImportMode.APPEND)).ok).toBe(
      true,
    );
    const appended = await plan();
    // With the policies using the list at the change (usedBy): they are re-judged even if it is detached before the plan.
    expect(appended.hunt.scope).toEqual([{ lists: [idOfType(late, 'IocList')], usedBy: [idOfType(policy, 'Policy')] }]);
    expect(appended.queued).toEqual([uploads.evil, uploads.quiet]);
    await settle();
    expect((await t.services.feedImport.importFile(t.accountId, idOfType(late, 'IocList'), feed(['x.org']), ImportMode.REPLACE)).ok).toBe(true);
    expect((await plan()).queued).toEqual([uploads.evil, uploads.quiet]);
    await settle();
    expect(await dnsHits()).toEqual([`${uploads.evil} www.evil.example evil.example`]);
  });

  it("a domain entry's expiry re-runs the uploads that asked it", async () => {
    const soon = new Date(Date.now() + 60_000);
    const r = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
        i: { list: block, entries: [{ value: 'cdn.bad.test', expiresAt: soon.toISOString() }] },
      })
    ).iocAdd;
    expect(r.userErrors).toEqual([]);
    await settle();
    expect(await dnsHits()).toContain(`${uploads.bad} cdn.bad.test cdn.bad.test`);
    expect(await t.services.retroHunts.checkExpiries(soon.getTime() + 1)).toBe(1);
    const [n] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM retro_hunt_domain`);
    expect(Number(n.n)).toBe(1);
    expect((await plan(soon.getTime() + 10_000)).queued).toEqual([uploads.bad]);
    await settle();
    expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM retro_hunt_domain`))[0].n)).toBe(0);
  });

  it("an upload's name set goes with the upload", async () => {
    expect((await readNameSets(t.dataSource.manager, Object.values(uploads))).size).toBe(3);
    const [device] = await t.dataSource.query(`SELECT id FROM device`);
    const r = (
      await q(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, { i: { id: toGlobalId('Device', Number(device.id)) } })
    ).deviceDelete;
    expect(r.userErrors).toEqual([]);
    const [n] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM upload_name_set`);
    expect(Number(n.n)).toBe(0);
  });
});
