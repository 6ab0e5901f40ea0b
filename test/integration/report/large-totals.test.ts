import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { hitsOf, processQueued, upload } from '../../helpers/ingest';
import { c2Account } from '../../helpers/report-store';

// Byte totals past Int's 2^31 (tcpdump reports lengths up to 2^32-1 per packet) come back as exact JSON numbers
// of the SafeInt type: from SQLite's and mysql2's BIGINT columns and SUMs (mysql2 returns those as strings),
// through the in-memory report store and through SQL.
const C2 = '198.51.100.10';
const SENT = 3_000_000_000;
const RECEIVED = 4_000_000_000;
const CONNECTIONS = 3;
const T0 = Date.parse('2024-03-01T10:00:00Z') / 1000;
const WINDOW = { from: '2024-03-01T00:00:00Z', to: '2024-03-02T00:00:00Z' };

function capture(): string {
  const lines: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const [inside, outside] = [`10.0.0.5.${50001 + i}`, `${C2}.443`];
    lines.push(`${(T0 + i * 10).toFixed(6)} IP ${inside} > ${outside}: Flags [S], seq 1, win 512, length ${SENT}`);
    lines.push(`${(T0 + i * 10 + 1).toFixed(6)} IP ${outside} > ${inside}: Flags [S.], seq 1, win 512, length ${RECEIVED}`);
  }
  return `${lines.join('\n')}\n`;
}

const paths = drivers.flatMap((driver) => [
  [driver, 'memory'],
  [driver, 'SQL'],
]) as Array<[(typeof drivers)[number], 'memory' | 'SQL']>;

describe.each(paths)('byte totals past 2^31 (%s, %s)', (driver, path) => {
  let t: TestApp;
  let uploadId: string;
  const report = async (selection: string) => ok(await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { ${selection} } }`, { f: WINDOW })).hitReport;

  beforeAll(async () => {
    t = await createTestApp(driver, path === 'SQL' ? { REPORT_MEMORY_MAX_HITS: '0' } : {});
    await c2Account(t, { address: C2, nickname: 'hq' });
    const created = ok(await upload(t, capture(), { deviceNickname: 'hq' })).logUploadCreate;
    expect(created.userErrors).toEqual([]);
    uploadId = created.logUpload.id;
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    const held = await t.services.reportMemory.view(t.accountId);
    if (path === 'memory') expect(held?.hits).toBe(CONNECTIONS);
    else expect(held).toBeNull();
  });
  afterAll(() => t.close());

  it('on each flow hit', async () => {
    const hits = await hitsOf(t, uploadId);
    expect(hits).toHaveLength(CONNECTIONS);
    for (const h of hits) {
      expect({ bytes: h.bytes, bytesSent: h.bytesSent, bytesReceived: h.bytesReceived, packets: h.packets }).toEqual({
        bytes: SENT + RECEIVED,
        bytesSent: SENT,
        bytesReceived: RECEIVED,
        packets: 2,
      });
    }
  });

  it('in the report totals and groupings', async () => {
    const r = await report(`totals { hits packets bytes } byDirection { direction hits packets bytes } byDevice { packets hits } threats { packets hits }`);
    const total = CONNECTIONS * (SENT + RECEIVED);
    expect(r.totals).toEqual({ hits: CONNECTIONS, packets: 2 * CONNECTIONS, bytes: total });
    expect(typeof r.totals.bytes).toBe('number');
    expect(r.byDirection).toEqual([
      { direction: 'INBOUND', hits: 0, packets: 0, bytes: 0 },
      { direction: 'OUTBOUND', hits: CONNECTIONS, packets: 2 * CONNECTIONS, bytes: total },
    ]);
    expect(r.byDevice).toEqual([{ packets: 2 * CONNECTIONS, hits: CONNECTIONS }]);
    expect(r.threats).toEqual([{ packets: 2 * CONNECTIONS, hits: CONNECTIONS }]);
  });
});
