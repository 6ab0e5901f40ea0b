import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';

/**
 * Retro-hunt (#17 item 2) and an upload in progress: a list change whose hunt is planned while an upload is being
 * matched against the lists before the change must not miss that upload. The worker is held after it took the
 * policy's index (the old lists) while the entry is added and the hunt planned, then let go.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const LATE = '198.51.100.77';
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${LATE}.443: Flags [S], seq 1, win 64240, length 0\n`;

describe.each(drivers)('retro-hunt and an upload in progress (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>) => Promise<any>;
  let list: string;
  const far = () => Date.now() + 60_000;

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    list = (await q(`mutation { iocListCreate(input: { name: "late", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    await t.services.retroHunts.runDue(far());
  });
  afterAll(() => t.close());

  it('re-queues an upload that was being matched against the old lists when the hunt was planned', async () => {
    const r = ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate;
    const uploadId = idOfType(r.logUpload.id, 'LogUpload')!;
    const cache = t.services.iocIndexes;
    const original = cache.forPolicy.bind(cache);
    let held = false;
    const spy = jest.spyOn(cache, 'forPolicy').mockImplementation(async (...args) => {
      const index = await original(...args);
      if (!held) {
        held = true;
        // The worker holds the index of the lists as they were; meanwhile the entry arrives and its hunt is planned.
        expect((await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value: LATE }] } })).iocAdd.added).toBe(1);
        expect(await t.services.retroHunts.runDue(far())).toBe(1);
      }
      return index;
    });
    try {
      const outcomes = await processQueued(t.services);
      // The first run (old lists) and the hunt's re-run (new lists).
      expect(outcomes.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    } finally {
      spy.mockRestore();
    }
    await t.services.retroHunts.runDue(far());
    const hunt = (await q(`{ retroHunts(first: 1) { edges { node { id status uploadsRerun uploadsDone hitsAdded } } } }`)).retroHunts.edges[0].node;
    expect(hunt).toMatchObject({ status: 'COMPLETED', uploadsRerun: 1, uploadsDone: 1, hitsAdded: 1 });
    const rows: any[] = await t.dataSource.query(`SELECT upload_id, external_ip, found_by, retro_hunt_id FROM flow_hit`);
    expect(rows.map((h) => [Number(h.upload_id), h.external_ip, h.found_by, Number(h.retro_hunt_id)])).toEqual([
      [uploadId, LATE, 'RETRO_HUNT', idOfType(hunt.id, 'RetroHunt')],
    ]);
    const [u] = await t.dataSource.query(`SELECT status FROM log_upload WHERE id = ?`, [uploadId]);
    expect(u.status).toBe('COMPLETED');
  });
});
