import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, seedC2Hits, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';

/**
 * Verdicts racing each other on the same hits (two analysts, a filter and a list of IDs that overlap): each call
 * is answered with its verdict set, the last one committed wins, and each hit keeps one triage row. On MySQL
 * they met as deadlocks (a DELETE of a missing row takes a gap lock that the other's INSERT waits for) and all
 * but one were answered 503 "The database is unavailable". A hit whose upload is deleted (its device deleted, the
 * retention purge) between its read and its verdict looks missing, as a hit that never was.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE =
  Array.from({ length: 6 }, (_, i) => `${(T0 + i).toFixed(6)} IP 10.0.0.${5 + i}.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0`).join('\n') + '\n';
const WINDOW = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };
const TRIAGE = `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } userErrors { code message } } }`;
const STATUSES = ['ACKNOWLEDGED', 'FALSE_POSITIVE', 'RESOLVED', 'OPEN'];

describe.each(drivers)('flowHitTriage racing itself (%s)', (driver) => {
  let t: TestApp;
  let q: (query: string, v?: Record<string, unknown>, key?: string) => Promise<any>;
  let ids: string[];

  beforeAll(async () => {
    t = await createTestApp(driver);
    q = async (query, v = {}, key) => ok(await t.gql(query, v, key));
    await seedC2Hits(t, C2, CAPTURE);
    ids = (await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 10) { edges { node { id } } } }`, { f: WINDOW })).flowHits.edges.map(
      (e: any) => e.node.id,
    );
    expect(ids).toHaveLength(6);
  });
  afterAll(() => t.close());

  it.each([
    ['never triaged', 1],
    ['already triaged', 2],
  ])('answers every call on hits %s with its verdict, and keeps one row per hit', async (_, round) => {
    const calls = Array.from({ length: 12 }, (_x, i) => {
      const input = i % 3 === 0 ? { filter: WINDOW } : { ids: i % 3 === 1 ? ids : [...ids].reverse() };
      return t.gql(TRIAGE, { i: { ...input, status: STATUSES[i % 4], note: `call ${round}.${i}` } }, t.keys.analyst);
    });
    const results = await Promise.all(calls);
    expect(results.map((r) => [r.status, r.errors ?? null, r.data?.flowHitTriage])).toEqual(
      results.map(() => [200, null, { result: { count: 6 }, userErrors: [] }]),
    );
    const rows: Array<{ n: number | string; notes: number | string }> = await t.dataSource.query(
      'SELECT COUNT(*) AS n, COUNT(DISTINCT note) AS notes FROM flow_hit_triage',
    );
    expect(rows.map((r) => [Number(r.n), Number(r.notes) >= 1])).toEqual([[6, true]]);
  });

  it.each(['ids', 'filter'])('leaves out the hits of an upload deleted between their read and the verdict (by %s)', async (by) => {
    const second = ok(await upload(t, CAPTURE.replace(/length 0/g, `length ${by.length}`), { deviceNickname: 'edge' })).logUploadCreate.logUpload.id;
    await processQueued(t.services);
    const all = (await q(`query($f: HitFilter!) { flowHits(filter: $f, first: 20) { edges { node { id upload { id } } } } }`, { f: WINDOW })).flowHits.edges;
    const doomed = new Set(all.filter((e: any) => e.node.upload.id === second).map((e: any) => e.node.id));
    expect(doomed.size).toBe(6);
    await t.dataSource.query('DELETE FROM flow_hit_triage');
    // The upload goes (as with its device, or the retention purge) once the call has read the hits, before it writes.
    const transaction = t.dataSource.transaction.bind(t.dataSource);
    const spy = jest.spyOn(t.dataSource, 'transaction').mockImplementationOnce((async (...args: Parameters<typeof transaction>) => {
      await t.dataSource.query(`DELETE FROM log_upload WHERE id = ?`, [idOfType(second, 'LogUpload')]);
      return (transaction as (...a: unknown[]) => unknown)(...args);
    }) as typeof transaction);
    try {
      const input = by === 'ids' ? { ids: [ids[0], ...doomed] } : { filter: WINDOW };
      const r = await t.gql(TRIAGE, { i: { ...input, status: 'RESOLVED' } }, t.keys.analyst);
      expect(r.errors ?? null).toBeNull();
      if (by === 'ids') {
        expect(r.data.flowHitTriage).toEqual({
          result: null,
          userErrors: [...doomed].map(() => ({ code: 'NOT_FOUND', message: 'No flow hit with this ID.' })),
        });
      } else expect(r.data.flowHitTriage).toEqual({ result: { count: 6 }, userErrors: [] });
    } finally {
      spy.mockRestore();
    }
    const [{ n }] = await t.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit_triage');
    expect(Number(n)).toBe(by === 'ids' ? 0 : 6);
  });

  it('answers FALSE_POSITIVE verdicts that allow their entry at once, all creating the policy\'s "False positives" list', async () => {
    // Each call looked the list up, found none, and created it: all but the first met the name taken, after their
    // verdict was committed, and were answered with an internal error.
    const results = await Promise.all(ids.map((id) => t.gql(TRIAGE, { i: { ids: [id], status: 'FALSE_POSITIVE', allow: 'POLICY' } }, t.keys.analyst)));
    expect(results.map((r) => [r.errors ?? null, r.data?.flowHitTriage])).toEqual(results.map(() => [null, { result: { count: 1 }, userErrors: [] }]));
    const lists = (await q(`{ iocLists(first: 10) { edges { node { name kind entryCount } } } }`)).iocLists.edges.map((e: any) => e.node);
    expect(lists.filter((l: any) => l.kind === 'ALLOW')).toEqual([{ name: expect.stringMatching(/^False positives/), kind: 'ALLOW', entryCount: 1 }]);
  });
});
