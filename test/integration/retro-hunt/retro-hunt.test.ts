import request from 'supertest';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';
import { readAddressSets } from '../../../src/modules/log-upload/address-set.store';

/**
 * Retro-hunt (#17): list changes re-judge exactly the stored uploads whose addresses they meet, through the
 * normal processor, with found-by bookkeeping and counts; manual start, coalescing, the limit, a policy move.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const SCAN = '203.0.113.9';
const V6 = '2001:db8:bad::5';
const line = (dt: number, src: string, dst: string) => `${(T0 + dt).toFixed(6)} IP ${src} > ${dst}: Flags [S], seq 1, win 64240, length 0`;
const line6 = (dt: number, src: string, dst: string) => `${(T0 + dt).toFixed(6)} IP6 ${src} > ${dst}: Flags [S], seq 1, win 64240, length 0`;
// Upload 1 talks to C2, SCAN and V6; upload 2 only to SCAN.
const CAPTURE_1 = [line(0, '10.0.0.5.50000', `${C2}.443`), line(1, `${SCAN}.4000`, '10.0.0.6.22'), line6(2, 'fd00::5.50001', `${V6}.443`)].join('\n') + '\n';
const CAPTURE_2 = [line(10, `${SCAN}.4001`, '10.0.0.7.22')].join('\n') + '\n';

describe.each(drivers)('retro-hunt (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  let block: string;
  let policy: string;
  let device: string;
  const uploads: number[] = [];
  const far = () => Date.now() + 60_000;

  async function settle() {
    // What the server's loop does: plan due hunts, let the worker re-run their uploads, complete them.
    await t.services.retroHunts.runDue(far());
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far());
  }
  async function hits() {
    const rows: any[] = await t.dataSource.query(
      `SELECT upload_id, external_ip, ioc_id, found_by, found_at, retro_hunt_id FROM flow_hit ORDER BY upload_id, external_ip, ioc_id`,
    );
    return rows.map((r) => ({
      upload: Number(r.upload_id),
      ip: r.external_ip,
      by: r.found_by,
      at: Number(r.found_at),
      hunt: r.retro_hunt_id == null ? null : Number(r.retro_hunt_id),
    }));
  }
  const HUNTS = `{ retroHunts(first: 20) { edges { node { id status cause uploadsExamined uploadsRerun uploadsDone uploadsPurged hitsAdded hitsRemoved progressPercent summary createdAt startedAt finishedAt } } } }`;
  async function latestHunt() {
    return (await q(HUNTS)).retroHunts.edges[0]?.node;
  }
  const addEntries = async (list: string, values: string[]) =>
    (await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added userErrors { message } } }`, { i: { list, entries: values.map((value) => ({ value })) } }))
      .iocAdd;

  beforeAll(async () => {
    t = await createTestApp(driver, { RETRO_HUNT_MAX_UPLOADS: '2' });
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    block = (await q(`mutation { iocListCreate(input: { name: "late intel", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [block] } });
    device = (
      await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      })
    ).deviceCreate.device.id;
    for (const body of [CAPTURE_1, CAPTURE_2]) {
      const r = ok(await upload(t, body, { deviceNickname: 'edge' })).logUploadCreate;
      expect(r.userErrors).toEqual([]);
      uploads.push(idOfType(r.logUpload.id, 'LogUpload')!);
    }
    await processQueued(t.services);
    // The attach above (before any upload) left a hunt with nothing to re-run.
    await settle();
  });
  afterAll(() => t.close());

  it('keeps each upload’s distinct matchable external addresses, sorted and packed, and none of the internal ones', async () => {
    const sets = await readAddressSets(t.dataSource.manager, uploads);
    const v4 = (n: number) => [...sets.get(uploads[n])!.v4].map((a) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'));
    expect(v4(0)).toEqual([C2, SCAN]);
    expect(sets.get(uploads[0])!.v6.toString('hex')).toBe('20010db80bad00000000000000000005');
    expect(v4(1)).toEqual([SCAN]);
    expect(sets.get(uploads[1])!.v6.length).toBe(0);
    expect(await hits()).toEqual([]);
  });

  it('re-runs exactly the uploads an added entry meets: their new hits say RETRO_HUNT and name the hunt', async () => {
    expect((await addEntries(block, [C2])).userErrors).toEqual([]);
    const queued = await latestHunt();
    expect(queued).toMatchObject({ status: 'QUEUED', cause: expect.stringContaining('1 entry added') });
    await settle();
    const hunt = await latestHunt();
    expect(hunt).toMatchObject({
      status: 'COMPLETED',
      uploadsExamined: 2,
      uploadsRerun: 1,
      uploadsDone: 1,
      hitsAdded: 1,
      hitsRemoved: 0,
      progressPercent: 100,
    });
    expect(hunt.finishedAt).not.toBeNull();
    const h = await hits();
    expect(h).toEqual([{ upload: uploads[0], ip: C2, by: 'RETRO_HUNT', at: expect.any(Number), hunt: idOfType(hunt.id, 'RetroHunt') }]);
    // Over GraphQL too, with the hunt as an object.
    const nodes = (
      await q(`query($id: ID!) { logUpload(id: $id) { flowHits(first: 10) { edges { node { foundBy foundAt retroHunt { id status } } } } } }`, {
        id: (await q(`{ logUploads(first: 10) { edges { node { id } } } }`)).logUploads.edges.find((e: any) => idOfType(e.node.id, 'LogUpload') === uploads[0])
          .node.id,
      })
    ).logUpload.flowHits.edges.map((e: any) => e.node);
    expect(nodes).toEqual([{ foundBy: 'RETRO_HUNT', foundAt: expect.any(String), retroHunt: { id: hunt.id, status: 'COMPLETED' } }]);
    // "New since the list change": the drill-down and the reports filter on how and when hits were found.
    const window = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };
    const count = async (f: Record<string, unknown>) =>
      (await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 10) { totalCount } hitReport(filter: $f) { totals { hits } } }`, {
        f: { ...window, ...f },
      })) as { flowHits: { totalCount: number }; hitReport: { totals: { hits: number } } };
    for (const [f, n] of [
      [{ foundBy: ['RETRO_HUNT'] }, 1],
      [{ foundBy: ['UPLOAD'] }, 0],
      [{ foundSince: hunt.createdAt }, 1],
      [{ foundSince: new Date(Date.now() + 60_000).toISOString() }, 0],
    ] as const) {
      const r = await count(f);
      expect([f, r.flowHits.totalCount, r.hitReport.totals.hits]).toEqual([f, n, n]);
    }
  });

  it('triage: ANALYST sets a verdict by ID or filter, kept by the hit’s identity across re-runs; another account’s hits look missing', async () => {
    const TRIAGE = `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count hits { id triageStatus } } userErrors { code field message } } }`;
    const window = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };
    const hitIds = async () =>
      (
        await q(
          `query($f: HitFilter!) { flowHits(filter: $f, first: 10) { edges { node { id externalIp triageStatus triage { status note updatedAt apiKey { name } } } } } }`,
          { f: window },
        )
      ).flowHits.edges.map((e: any) => e.node);
    const [c2] = await hitIds();
    expect(c2).toMatchObject({ externalIp: C2, triageStatus: 'OPEN', triage: null });
    const set = (await q(TRIAGE, { i: { ids: [c2.id], status: 'ACKNOWLEDGED', note: 'looking' } }, t.keys.analyst)).flowHitTriage;
    expect(set).toEqual({ result: { count: 1, hits: [{ id: c2.id, triageStatus: 'ACKNOWLEDGED' }] }, userErrors: [] });
    // Another account's hit looks missing; an uploader may not triage.
    const foreign = (await q(TRIAGE, { i: { ids: [c2.id], status: 'RESOLVED' } }, t.keys.otherAdmin)).flowHitTriage;
    expect(foreign).toEqual({ result: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'ids', '0'], message: 'No flow hit with this ID.' }] });
    expect((await t.gql(TRIAGE, { i: { ids: [c2.id], status: 'RESOLVED' } }, t.keys.uploader)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    // Reprocessing the upload gives the hit a new row id: its triage follows the identity.
    await q(`mutation($id: ID!) { logUploadReprocess(input: { id: $id }) { userErrors { message } } }`, {
      id: (await q(`{ logUploads(first: 10) { edges { node { id } } } }`)).logUploads.edges.find((e: any) => idOfType(e.node.id, 'LogUpload') === uploads[0])
        .node.id,
    });
    await processQueued(t.services);
    const [again] = await hitIds();
    expect(again.id).not.toBe(c2.id);
    expect(again).toMatchObject({
      externalIp: C2,
      triageStatus: 'ACKNOWLEDGED',
      triage: { status: 'ACKNOWLEDGED', note: 'looking', apiKey: { name: expect.any(String) } },
    });
    // By filter.
    const byFilter = (await q(TRIAGE, { i: { filter: { ...window, externalAddress: C2 }, status: 'RESOLVED' } }, t.keys.analyst)).flowHitTriage;
    expect(byFilter.result.count).toBe(1);
    expect((await hitIds())[0].triageStatus).toBe('RESOLVED');
    // The drill-down filters on the status, through the identity.
    const byStatus = async (statuses: string[]) =>
      (await q(`query($f: HitFilter!, $s: [TriageStatus!]) { flowHits(filter: $f, first: 10, triageStatuses: $s) { totalCount } }`, { f: window, s: statuses }))
        .flowHits.totalCount;
    expect([await byStatus(['RESOLVED']), await byStatus(['OPEN']), await byStatus(['OPEN', 'RESOLVED']), await byStatus(['ACKNOWLEDGED'])]).toEqual([
      1, 0, 1, 0,
    ]);
    // The status is a HitFilter field: the drill-down, hitReport, the dashboard and the export share it.
    const everywhere = async (statuses: string[]) => {
      const r = await q(
        `query($f: HitFilter!, $s: [TriageStatus!], $from: DateTimeISO!, $to: DateTimeISO!) { flowHits(filter: $f, first: 10) { totalCount }
          hitReport(filter: $f) { totals { hits } } dashboard(from: $from, to: $to, triageStatuses: $s) { inboundHits outboundHits openHits } }`,
        { f: { ...window, triageStatuses: statuses }, s: statuses, from: window.from, to: window.to },
      );
      const csv = await request(t.http.app)
        .get('/export/flow-hits.csv')
        .query({ ...window, triageStatus: statuses })
        .set('authorization', `Bearer ${t.keys.admin}`);
      expect(csv.status).toBe(200);
      const exported = csv.text.trim().split('\n').length - 1;
      return [r.flowHits.totalCount, r.hitReport.totals.hits, r.dashboard.inboundHits + r.dashboard.outboundHits, r.dashboard.openHits, exported];
    };
    expect(await everywhere(['RESOLVED'])).toEqual([1, 1, 1, 0, 1]);
    expect(await everywhere(['OPEN', 'ACKNOWLEDGED'])).toEqual([0, 0, 0, 0, 0]);
    // Set back to OPEN: open again, and counted by the dashboard.
    expect((await q(TRIAGE, { i: { ids: [again.id], status: 'OPEN' } }, t.keys.analyst)).flowHitTriage.userErrors).toEqual([]);
    expect(await everywhere(['OPEN'])).toEqual([1, 1, 1, 1, 1]);
    expect(await everywhere(['RESOLVED'])).toEqual([0, 0, 0, 0, 0]);
    const bad = await request(t.http.app)
      .get('/export/flow-hits.csv')
      .query({ ...window, triageStatus: 'DONE' })
      .set('authorization', `Bearer ${t.keys.admin}`);
    expect([bad.status, bad.text]).toEqual([400, expect.stringContaining('triageStatus: must be one of OPEN, ACKNOWLEDGED, FALSE_POSITIVE, RESOLVED')]);
    // A verdict is no new hit: hitsFound's feed (live-feed.ts) skips TRIAGE changes.
    const kinds: any[] = await t.dataSource.query(`SELECT kind FROM hit_change WHERE kind IS NOT NULL`);
    expect(kinds.length).toBeGreaterThan(0);
    // RESOLVED again, for the re-runs below to keep.
    expect((await q(TRIAGE, { i: { ids: [again.id], status: 'RESOLVED' } }, t.keys.analyst)).flowHitTriage.userErrors).toEqual([]);
  });

  it('coalesces changes in quick succession into one hunt, and a CIDR meets the addresses inside it (IPv6 too)', async () => {
    const before = (await q(HUNTS)).retroHunts.edges.length;
    await addEntries(block, ['203.0.113.0/24']);
    await addEntries(block, ['2001:db8:bad::/48']);
    expect((await q(HUNTS)).retroHunts.edges.length).toBe(before + 1);
    const kept = (await hits()).find((h) => h.ip === C2)!;
    await settle();
    const hunt = await latestHunt();
    expect(hunt.cause.split('\n')).toHaveLength(2);
    expect(hunt).toMatchObject({ status: 'COMPLETED', uploadsRerun: 2, hitsAdded: 3, hitsRemoved: 0 });
    const h = await hits();
    expect(h.map((x) => [x.upload, x.ip])).toEqual([
      [uploads[0], C2],
      [uploads[0], V6],
      [uploads[0], SCAN],
      [uploads[1], SCAN],
    ]);
    // The hit found before and found again keeps how and when it was first found, and its triage.
    expect(h.find((x) => x.ip === C2)).toEqual(kept);
    const [{ n }] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit_triage WHERE status = 'RESOLVED'`);
    expect(Number(n)).toBe(1);
  });

  it('an ALLOW entry removes past hits through a hunt that counts them', async () => {
    const allow = (await q(`mutation { iocListCreate(input: { name: "ours", kind: ALLOW, severity: 0, category: OTHER }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    const huntCount = async () => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM retro_hunt`))[0].n);
    const before = await huntCount();
    // An empty list attached (or a list attached twice) can change no hit: no hunt.
    for (let i = 0; i < 2; i++) {
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [allow] } });
    }
    await settle();
    expect(await huntCount()).toBe(before);
    await addEntries(allow, [SCAN]);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 2, hitsAdded: 0, hitsRemoved: 2 });
    expect((await hits()).map((x) => x.ip)).toEqual([C2, V6]);
  });

  it('removing an entry re-judges the uploads it met', async () => {
    const entries = (await q(`query($l: ID!) { iocList(id: $l) { iocs(first: 10) { edges { node { id cidr } } } } }`, { l: block })).iocList.iocs.edges.map(
      (e: any) => e.node,
    );
    const v6 = entries.find((e: any) => e.cidr.includes(':'));
    expect(
      (await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { userErrors { message } } }`, { i: { ids: [v6.id] } })).iocRemove.userErrors,
    ).toEqual([]);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, hitsRemoved: 1 });
    expect((await hits()).map((x) => x.ip)).toEqual([C2]);
  });

  it('a device moved to another policy is re-judged whole', async () => {
    const other = (await q(`mutation { policyCreate(input: { name: "empty" }) { policy { id } } }`)).policyCreate.policy.id;
    expect(
      (await q(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, { i: { id: device, policy: other } })).deviceUpdate
        .userErrors,
    ).toEqual([]);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 2, hitsRemoved: 1, cause: expect.stringContaining('moved') });
    expect(await hits()).toEqual([]);
    await q(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, { i: { id: device, policy } });
    await settle();
    expect((await hits()).map((x) => x.ip)).toEqual([C2]);
  });

  it('ends equal to reprocessing every upload from scratch', async () => {
    const now = await hits();
    for (const id of uploads) await t.dataSource.query(`UPDATE log_upload SET status = 'QUEUED' WHERE id = ?`, [id]);
    await t.dataSource.query(`DELETE FROM flow_hit`);
    await processQueued(t.services);
    expect((await hits()).map((h) => [h.upload, h.ip])).toEqual(now.map((h) => [h.upload, h.ip]));
  });

  it('an entry expiry that passed re-judges the uploads it met', async () => {
    const l2 = (await q(`mutation { iocListCreate(input: { name: "short-lived", kind: BLOCK, severity: 3, category: SCANNER }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [l2] } });
    const added = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
        i: { list: l2, entries: [{ value: V6, expiresAt: new Date(Date.now() + 3_600_000).toISOString() }] },
      })
    ).iocAdd;
    expect(added.userErrors).toEqual([]);
    await settle();
    expect((await hits()).map((x) => x.ip)).toEqual([C2, V6]);
    // Time passes: the entry's expiry is behind us (the list's revision bumped as an index rebuild would see it).
    const past = Date.now() - 1;
    await t.dataSource.query(`UPDATE ioc SET expires_at = ? WHERE list_id = ?`, [past, idOfType(l2, 'IocList')]);
    await t.dataSource.query(`UPDATE ioc_list SET revision = revision + 1 WHERE id = ?`, [idOfType(l2, 'IocList')]);
    expect(await t.services.retroHunts.checkExpiries()).toBe(1);
    expect(await t.services.retroHunts.checkExpiries()).toBe(0);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, hitsRemoved: 1, cause: expect.stringContaining('expired') });
    expect((await hits()).map((x) => x.ip)).toEqual([C2]);
  });

  it('manual start: re-runs what it names; refused past RETRO_HUNT_MAX_UPLOADS with the count; foreign IDs look missing', async () => {
    const START = `mutation($i: RetroHuntStartInput!) { retroHuntStart(input: $i) { retroHunt { status uploadsRerun cause } userErrors { code field message } } }`;
    const one = (await q(START, { i: { devices: [device], lists: [block] } })).retroHuntStart;
    expect(one.userErrors).toEqual([]);
    expect(one.retroHunt).toMatchObject({ status: 'RUNNING', uploadsRerun: 2, cause: expect.stringContaining('by hand') });
    await settle();
    // A third upload makes "everything" too many.
    ok(await upload(t, CAPTURE_2.replace('4001', '4002'), { deviceNickname: 'edge' }));
    await processQueued(t.services);
    await settle();
    const refused = (await q(START, { i: {} })).retroHuntStart;
    expect(refused.retroHunt).toBeNull();
    expect(refused.userErrors[0].message).toMatch(/re-run 3 stored uploads; RETRO_HUNT_MAX_UPLOADS allows 2/);
    const foreign = (await q(START, { i: { devices: [device] } }, t.keys.otherAdmin)).retroHuntStart;
    expect(foreign.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'devices', '0'], message: 'No device with this ID.' }]);
    expect((await q(HUNTS, {}, t.keys.otherAdmin)).retroHunts.edges).toEqual([]);
  });

  it('an automatic hunt past the limit is refused and says why', async () => {
    const other = (await q(`mutation { policyCreate(input: { name: "third" }) { policy { id } } }`)).policyCreate.policy.id;
    await q(`mutation($i: DeviceUpdateInput!) { deviceUpdate(input: $i) { userErrors { message } } }`, { i: { id: device, policy: other } });
    await settle();
    const hunt = await latestHunt();
    expect(hunt).toMatchObject({ status: 'REFUSED', uploadsRerun: 0, summary: expect.stringContaining('RETRO_HUNT_MAX_UPLOADS allows 2') });
  });

  it('a list detached and deleted before its hunt is planned takes its hits with it; so does one removed then detached', async () => {
    const own = (await q(`mutation { policyCreate(input: { name: "short-lived lists" }) { policy { id } } }`)).policyCreate.policy.id;
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "lab", ipType: STATIC, ipAddress: "93.184.216.40", policy: $p }) { device { id } } }`, {
      p: own,
    });
    const [A, B] = ['192.0.2.10', '192.0.2.11'];
    ok(await upload(t, [line(20, '10.0.1.5.50000', `${A}.443`), line(21, '10.0.1.5.50001', `${B}.443`)].join('\n') + '\n', { deviceNickname: 'lab' }));
    await processQueued(t.services);
    const attach = async (verb: string, list: string) =>
      (await q(`mutation($i: PolicyIocListsInput!) { ${verb}(input: $i) { userErrors { message } } }`, { i: { policy: own, iocLists: [list] } }))[verb]
        .userErrors;
    const makeList = async (name: string, value: string) => {
      const id = (
        await q(`mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, severity: 3, category: SCANNER }) { iocList { id } } }`, { n: name })
      ).iocListCreate.iocList.id;
      expect((await addEntries(id, [value])).userErrors).toEqual([]);
      expect(await attach('policyAttachIocLists', id)).toEqual([]);
      return id;
    };
    const ofList = async (list: string) =>
      Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit WHERE ioc_list_id = ?`, [idOfType(list, 'IocList')]))[0].n);
    const doomed = await makeList('doomed', A);
    const emptied = await makeList('emptied', B);
    await settle();
    expect([await ofList(doomed), await ofList(emptied)]).toEqual([1, 1]);

    // As a user does after "detach it first": detached, then deleted at once; the detach's hunt finds no entries then.
    expect(await attach('policyDetachIocLists', doomed)).toEqual([]);
    expect(
      (await q(`mutation($i: IocListDeleteInput!) { iocListDelete(input: $i) { userErrors { message } } }`, { i: { id: doomed } })).iocListDelete.userErrors,
    ).toEqual([]);
    await settle();
    expect([await ofList(doomed), await ofList(emptied)]).toEqual([0, 1]);
    // Its entry removed, then the list (empty now: its detach asks for no hunt) detached.
    const entry = (await q(`query($l: ID!) { iocList(id: $l) { iocs(first: 1) { edges { node { id } } } } }`, { l: emptied })).iocList.iocs.edges[0].node.id;
    expect(
      (await q(`mutation($i: IocRemoveInput!) { iocRemove(input: $i) { userErrors { message } } }`, { i: { ids: [entry] } })).iocRemove.userErrors,
    ).toEqual([]);
    expect(await attach('policyDetachIocLists', emptied)).toEqual([]);
    await settle();
    expect([await ofList(doomed), await ofList(emptied)]).toEqual([0, 0]);
  });
});

describe.each(drivers)('retro-hunt over purged uploads (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  let block: string;
  let policy: string;
  const DAY = 86_400_000;
  const far = () => Date.now() + 60_000;
  const HUNT = `{ retroHunts(first: 1) { edges { node { status uploadsRerun uploadsPurged summary } } } }`;
  const latestHunt = async () => (await q(HUNT)).retroHunts.edges[0]?.node;
  const START = `mutation($i: RetroHuntStartInput!) { retroHuntStart(input: $i) { retroHunt { status } userErrors { message } } }`;
  const DEVICE = `query($id: ID!) { node(id: $id) { ... on Device { uploadsPurged uploadsPurgedThrough } } }`;
  async function settle() {
    await t.services.retroHunts.runDue(far());
    await processQueued(t.services);
    await t.services.retroHunts.runDue(far());
  }
  const makeDevice = async (nickname: string, ip: string) =>
    (
      await q(
        `mutation($p: ID!, $n: String!, $ip: String!) { deviceCreate(input: { nickname: $n, ipType: STATIC, ipAddress: $ip, policy: $p }) { device { id } } }`,
        {
          p: policy,
          n: nickname,
          ip,
        },
      )
    ).deviceCreate.device.id;
  const add = (value: string) => q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: block, entries: [{ value }] } });

  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '1' });
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    block = (await q(`mutation { iocListCreate(input: { name: "late", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [block] } });
    await settle();
  });
  afterAll(() => t.close());

  it('the device keeps what retention purged, and a hunt reaching back before it says it could not judge those uploads', async () => {
    const device = await makeDevice('edge', '93.184.216.34');
    ok(await upload(t, CAPTURE_1, { deviceNickname: 'edge' }));
    await processQueued(t.services);
    const [{ received_at }] = await t.dataSource.query(`SELECT received_at FROM log_upload`);
    expect((await q(DEVICE, { id: device })).node).toEqual({ uploadsPurged: 0, uploadsPurgedThrough: null });
    // Two days on, RETENTION_DAYS=1 takes it.
    expect((await t.services.retention.purge(Date.now() + 2 * DAY)).uploads).toBe(1);
    const through = new Date(Number(received_at)).toISOString();
    expect((await q(DEVICE, { id: device })).node).toEqual({ uploadsPurged: 1, uploadsPurgedThrough: through });
    ok(await upload(t, CAPTURE_2, { deviceNickname: 'edge' }));
    await processQueued(t.services);

    await add(SCAN);
    await settle();
    expect(await latestHunt()).toEqual({
      status: 'COMPLETED',
      uploadsRerun: 1,
      uploadsPurged: 1,
      summary: `1 upload(s) of 1 device(s), received up to ${through}, were purged by retention (RETENTION_DAYS=1) before this hunt and could not be judged.`,
    });
    // From a time before the purged upload: the period is named, the count is not known.
    const before = new Date(Number(received_at) - 1000).toISOString();
    expect((await q(START, { i: { devices: [device], since: before } })).retroHuntStart.userErrors).toEqual([]);
    await settle();
    expect(await latestHunt()).toMatchObject({
      uploadsPurged: 0,
      summary: `Uploads of 1 device(s) received from ${before} up to ${through} were purged by retention (RETENTION_DAYS=1) before this hunt and could not be judged.`,
    });
    // From after it: nothing purged in range, nothing said.
    const after = new Date(Number(received_at) + 1).toISOString();
    expect((await q(START, { i: { devices: [device], since: after } })).retroHuntStart.userErrors).toEqual([]);
    await settle();
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, uploadsPurged: 0, summary: null });
  });

  it('an upload deleted with its device between the plan and its re-run is counted and said', async () => {
    const other = await makeDevice('other', '93.184.216.35');
    ok(await upload(t, CAPTURE_1, { deviceNickname: 'other' }));
    await processQueued(t.services);
    await add(C2);
    // Planned (its uploads queued), not yet re-run.
    await t.services.retroHunts.runDue(far());
    expect(await latestHunt()).toMatchObject({ status: 'RUNNING', uploadsRerun: 1, uploadsPurged: 1 });
    const del = (await q(`mutation($id: ID!) { deviceDelete(input: { id: $id }) { userErrors { message } } }`, { id: other })).deviceDelete;
    expect(del.userErrors).toEqual([]);
    await settle();
    // The purge of the first test's upload of "edge" (the list's policy holds both devices), then the deleted one.
    expect(await latestHunt()).toMatchObject({
      status: 'COMPLETED',
      uploadsPurged: 2,
      summary: expect.stringMatching(
        /^1 upload\(s\) of 1 device\(s\), .* could not be judged\. 1 upload\(s\) were deleted with their device before they could be re-run\.$/,
      ),
    });
  });

  it('two purges at once count each purged upload once', async () => {
    const device = await makeDevice('twice', '93.184.216.36');
    for (const body of [CAPTURE_1, CAPTURE_2]) ok(await upload(t, body, { deviceNickname: 'twice' }));
    await processQueued(t.services);
    const [a, b] = await Promise.all([t.services.retention.purge(Date.now() + 2 * DAY), t.services.retention.purge(Date.now() + 2 * DAY)]);
    // "edge"'s second upload (from the first test) goes too: 3 in all, each by one of the two.
    expect(a.uploads + b.uploads).toBe(3);
    expect((await q(DEVICE, { id: device })).node.uploadsPurged).toBe(2);
  });

  /**
   * A new device with CAPTURE_1 processed, and the uploads the purge took from the account's devices in the tests
   * before (a hunt over everything counts them in uploadsPurged).
   */
  const uploadedTo = async (nickname: string, ip: string) => {
    const device = await makeDevice(nickname, ip);
    ok(await upload(t, CAPTURE_1, { deviceNickname: nickname }));
    await processQueued(t.services);
    const [{ n }] = await t.dataSource.query(`SELECT COALESCE(SUM(uploads_purged), 0) AS n FROM device WHERE account_id = ?`, [t.accountId]);
    return { device, before: Number(n) };
  };

  it('an upload a hunt queues while the purge is deleting it is left to its re-run, not counted as deleted with its device', async () => {
    const { device, before } = await uploadedTo('late', '93.184.216.37');
    // A list change: its hunt is planned after the coalescing window (a manual start plans at once).
    await add('198.51.100.0/24');
    // The purge lists the old uploads; before it deletes this one, the hunt is planned and queues it. (Only with the two
    // clocks this far apart: the purge's two days on, the hunt's now. A hunt planned on the purge's clock leaves the
    // upload to it, as the next test shows; the purge's second look is for clocks that differ between processes.)
    const manager = t.dataSource.manager;
    const query = manager.query.bind(manager);
    let planned = false;
    const spy = jest.spyOn(manager, 'query').mockImplementation(async (sql: string, params?: unknown) => {
      const rows = await query(sql, params as unknown[]);
      if (!planned && /FROM log_upload WHERE received_at </.test(sql) && rows.length > 0) {
        planned = true;
        await t.services.retroHunts.runDue(far());
      }
      return rows;
    });
    let purged;
    try {
      purged = await t.services.retention.purge(Date.now() + 2 * DAY);
    } finally {
      spy.mockRestore();
    }
    expect(planned).toBe(true);
    expect(purged.uploads).toBe(0);
    expect(await latestHunt()).toMatchObject({ status: 'RUNNING', uploadsRerun: 1 });
    await settle();
    expect(await latestHunt()).toEqual({
      status: 'COMPLETED',
      uploadsRerun: 1,
      uploadsPurged: before,
      summary: before ? expect.not.stringMatching(/deleted with their device/) : null,
    });
    // Once the hunt is done, the next purge takes it.
    expect((await t.services.retention.purge(Date.now() + 2 * DAY)).uploads).toBe(1);
    expect((await q(DEVICE, { id: device })).node.uploadsPurged).toBe(1);
  });

  it('a hunt leaves the uploads received before the retention cutoff to the purge', async () => {
    const { device } = await uploadedTo('expiring', '93.184.216.39');
    const [{ id }] = await t.dataSource.query(`SELECT MAX(id) AS id FROM log_upload`);
    await add('198.51.100.7/31');
    // Planned two days on: the upload is past RETENTION_DAYS=1.
    await t.services.retroHunts.runDue(Date.now() + 2 * DAY);
    expect(await latestHunt()).toMatchObject({ status: 'COMPLETED', uploadsRerun: 0 });
    expect(await t.dataSource.query(`SELECT status FROM log_upload WHERE id = ?`, [id])).toEqual([{ status: 'COMPLETED' }]);
    expect((await t.services.retention.purge(Date.now() + 2 * DAY)).uploads).toBe(1);
    expect((await q(DEVICE, { id: device })).node.uploadsPurged).toBe(1);
  });

  it('an old upload whose re-run failed stays until its hunt has completed: said as failed, not as deleted', async () => {
    const { device, before } = await uploadedTo('failing', '93.184.216.38');
    await add('198.51.0.0/16');
    await t.services.retroHunts.runDue(far());
    expect(await latestHunt()).toMatchObject({ status: 'RUNNING', uploadsRerun: 1 });
    // The re-run fails for good (as after its attempts ran out); the hunt has not completed yet.
    await t.dataSource.query(`UPDATE log_upload SET status = 'FAILED', error = 'disk gone' WHERE status = 'QUEUED'`);
    expect((await t.services.retention.purge(Date.now() + 2 * DAY)).uploads).toBe(0);
    await t.services.retroHunts.runDue(far());
    expect(await latestHunt()).toEqual({
      status: 'COMPLETED',
      uploadsRerun: 1,
      uploadsPurged: before,
      summary: expect.stringMatching(/1 upload\(s\) failed on re-run; their hits are as the failure left them\.$/),
    });
    expect((await t.services.retention.purge(Date.now() + 2 * DAY)).uploads).toBe(1);
    expect((await q(DEVICE, { id: device })).node.uploadsPurged).toBe(1);
  });
});
