import { QueryFailedError } from 'typeorm';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, settleRetroHunts, upload } from '../../helpers/ingest';

/**
 * retroHuntStart stores the hunt, then plans the due hunts at once as a worker would. Planning meets the other
 * planners (concurrent starts, the worker processes), which on MySQL can end in a deadlock: the hunt is stored by
 * then, so the answer is the hunt, queued for the worker, not a 503 saying that nothing was stored.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE = `${T0.toFixed(6)} IP 10.0.0.5.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0\n`;
const START = `mutation($i: RetroHuntStartInput!) { retroHuntStart(input: $i) { retroHunt { id status } userErrors { code message } } }`;

function dbError(code: string, message: string): QueryFailedError {
  return new QueryFailedError('(injected)', [], Object.assign(new Error(message), { code }));
}

describe.each(drivers)('retroHuntStart while planning meets a transient error (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>) => Promise<any>;
  let device: string;

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "c2", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value: C2 }] } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    device = (
      await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      })
    ).deviceCreate.device.id;
    expect(ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
    await settleRetroHunts(t.services);
  });
  afterAll(() => t.close());

  it('answers with the stored hunt, queued, which the next planning runs', async () => {
    const before = (await q(`{ retroHunts(first: 50) { edges { node { id } } } }`)).retroHunts.edges.length;
    const transient = driver === 'mysql' ? dbError('ER_LOCK_DEADLOCK', 'Deadlock found when trying to get lock') : dbError('SQLITE_BUSY', 'database is locked');
    const plan = jest.spyOn(t.services.retroHunts, 'runDue').mockRejectedValueOnce(transient);
    try {
      const r = await t.gql(START, { i: { devices: [device] } });
      expect([r.status, r.errors ?? null, r.data?.retroHuntStart]).toEqual([
        200,
        null,
        { retroHunt: { id: expect.any(String), status: 'QUEUED' }, userErrors: [] },
      ]);
    } finally {
      plan.mockRestore();
    }
    await settleRetroHunts(t.services);
    const hunts = (await q(`{ retroHunts(first: 50) { edges { node { status uploadsRerun uploadsDone } } } }`)).retroHunts.edges.map((e: any) => e.node);
    expect(hunts).toHaveLength(before + 1);
    expect(hunts[0]).toEqual({ status: 'COMPLETED', uploadsRerun: 1, uploadsDone: 1 });
  });
});
