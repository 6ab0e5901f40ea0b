import request from 'supertest';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { seedC2Hits } from '../../helpers/ingest';

/**
 * A filter's lists come from the caller, and each value is a bound parameter of the statements that read the
 * hits (SQLite takes at most 32,766 per statement): a list repeated or too long is an answer or a refusal
 * naming the field, never an internal error.
 */
const T0 = Math.floor(Date.now() / 1000) - 3600;
const C2 = '198.51.100.7';
const CAPTURE = [0, 1, 2].map((i) => `${(T0 + i).toFixed(6)} IP 10.0.0.${5 + i}.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0`).join('\n') + '\n';
const WINDOW = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };
const MANY = 40_000;

describe.each(drivers)('long filter lists (%s)', (driver) => {
  let t: TestApp;
  const hitCount = async (f: Record<string, unknown>) =>
    t.gql(`query($f: HitFilter!) { flowHits(filter: $f, first: 10) { totalCount } }`, { f: { ...WINDOW, ...f } });

  beforeAll(async () => {
    // Reports from SQL: the in-memory store takes any list.
    t = await createTestApp(driver, { REPORT_MEMORY_MAX_HITS: '0' });
    await seedC2Hits(t, C2, CAPTURE);
  });
  afterAll(() => t.close());
  const exportCsv = (params: string[]) =>
    request(t.http.app)
      .get(`/export/flow-hits.csv?from=${WINDOW.from}&to=${WINDOW.to}&${params.join('&')}`)
      .set('authorization', `Bearer ${t.keys.analyst}`);

  it('counts each value of a repeated list once', async () => {
    for (const f of [
      { directions: Array(MANY).fill('OUTBOUND') },
      { protocols: Array(MANY).fill('TCP') },
      { categories: Array(MANY).fill('C2_BOTNET') },
      { severities: Array(MANY).fill(5) },
      { destinationPorts: Array(MANY).fill(443) },
      { excludeDestinationPorts: Array(MANY).fill(80) },
      { foundBy: Array(MANY).fill('UPLOAD') },
    ]) {
      expect(ok(await hitCount(f)).flowHits.totalCount).toBe(3);
    }
  });

  it('refuses more distinct ports or severities than a filter takes, naming the field', async () => {
    const distinct = Array.from({ length: MANY }, (_, i) => i);
    for (const field of ['destinationPorts', 'excludeDestinationPorts', 'severities']) {
      const r = await hitCount({ [field]: distinct });
      expect(r.errors?.[0]).toMatchObject({ message: `filter.${field}: at most 1000 values.`, extensions: { code: 'BAD_USER_INPUT' } });
      const triage = await t.gql(
        `mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { result { count } } }`,
        { i: { filter: { ...WINDOW, [field]: distinct }, status: 'RESOLVED' } },
        t.keys.analyst,
      );
      expect(triage.errors?.[0]).toMatchObject({ message: `filter.${field}: at most 1000 values.`, extensions: { code: 'BAD_USER_INPUT' } });
    }
    const res = await exportCsv(distinct.slice(0, 1001).map((p) => `port=${p}`));
    expect([res.status, res.body]).toEqual([400, { error: 'filter.destinationPorts: at most 1000 values.', code: 'BAD_USER_INPUT' }]);
  });

  it('reads every query parameter of an export, also past the 1000th', async () => {
    // Express's query parser keeps the first 1000 parameters: the one after them was dropped, and the export ran without it.
    const ports = Array(1000).fill('port=443');
    const refused = await exportCsv([...ports, 'minSeverity=9']);
    expect([refused.status, refused.body]).toEqual([400, { error: 'filter.minSeverity: 0-5.', code: 'BAD_USER_INPUT' }]);
    const inbound = await exportCsv([...ports, 'direction=INBOUND']);
    expect(inbound.status).toBe(200);
    expect(inbound.text.trim().split('\n')).toHaveLength(1);
  });
});
