import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { seedC2Hits, settleRetroHunts } from '../../helpers/ingest';

/** A FALSE_POSITIVE verdict that allows the entry in the policy: the past hits go through a retro-hunt (#17). */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE = [0, 1].map((i) => `${(T0 + i).toFixed(6)} IP 10.0.0.${5 + i}.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0`).join('\n') + '\n';
const WINDOW = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };

describe.each(drivers)('flowHitTriage FALSE_POSITIVE with allowInPolicy (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  const settle = () => settleRetroHunts(t.services);
  const hits = async () =>
    (await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 10) { edges { node { id internalIp triageStatus } } } }`, { f: WINDOW })).flowHits.edges.map(
      (e: any) => e.node,
    );

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    await seedC2Hits(t, C2, CAPTURE);
    await settle();
  });
  afterAll(() => t.close());

  it('refuses allowInPolicy with another verdict', async () => {
    const [hit] = await hits();
    const r = (
      await q(
        `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { userErrors { code field } } }`,
        { i: { ids: [hit.id], status: 'RESOLVED', allowInPolicy: true } },
        t.keys.analyst,
      )
    ).flowHitTriage;
    expect(r.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'allowInPolicy'] }]);
  });

  it("puts the entry on the policy's false-positive ALLOW list, and the retro-hunt removes the past hits it covers", async () => {
    const before = await hits();
    expect(before).toHaveLength(2);
    const r = (
      await q(
        `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } userErrors { message } } }`,
        { i: { ids: [before[0].id], status: 'FALSE_POSITIVE', note: 'our CDN', allowInPolicy: true } },
        t.keys.analyst,
      )
    ).flowHitTriage;
    expect(r).toEqual({ result: { count: 1 }, userErrors: [] });
    const lists = (await q(`{ iocLists(first: 10) { edges { node { name kind entryCount } } } }`)).iocLists.edges.map((e: any) => e.node);
    expect(lists).toContainEqual({ name: expect.stringMatching(/^False positives/), kind: 'ALLOW', entryCount: 1 });
    await settle();
    expect(await hits()).toEqual([]);
    const [hunt] = (await q(`{ retroHunts(first: 1) { edges { node { status hitsRemoved } } } }`)).retroHunts.edges.map((e: any) => e.node);
    expect(hunt).toEqual({ status: 'COMPLETED', hitsRemoved: 2 });
    // The verdict stays recorded for the hit's identity.
    const [{ n }] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit_triage WHERE status = 'FALSE_POSITIVE'`);
    expect(Number(n)).toBe(1);
  });
});
