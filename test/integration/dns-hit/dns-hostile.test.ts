import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { blockEvilExample } from '../../helpers/dns';

/**
 * Hostile DNS text in uploads: what a hit keeps must fit its columns on every driver, and stay bounded.
 */
describe.each(drivers)('DNS hits from hostile DNS text (%s)', (driver) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp(driver);
    await blockEvilExample(t);
  });
  afterAll(() => t.close());

  const run = async (lines: string[]) => {
    const r = ok(await upload(t, `${lines.join('\n')}\n`, { deviceNickname: 'edge' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    const [outcome] = await processQueued(t.services);
    return outcome;
  };

  it('completes an upload whose question type or answers no DNS message could carry, and keeps only answers a record can hold', async () => {
    // tcpdump prints an unknown type as `TypeN` with N a 16-bit number, and an answer name within DNS's limits.
    const longName = `${'a'.repeat(60)}.`.repeat(600);
    const outcome = await run([
      '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 4242+ Type1234567890123456? www.evil.example. (34)',
      '1709287201.000000 IP 10.0.0.5.40001 > 8.8.8.8.53: 4243+ A? www.evil.example. (34)',
      `1709287201.010000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 1/0/0 CNAME ${longName} (80)`,
      `1709287201.020000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 1/0/0 CNAME b${longName} (80)`,
      `1709287201.030000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 1/0/0 A ${'x'.repeat(60_000)} (80)`,
      '1709287201.040000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 2/0/0 CNAME cdn.example.net., A 198.51.100.7 (80)',
    ]);
    expect(outcome).toMatchObject({ status: 'COMPLETED', dnsHits: 1 });
    const rows = await t.dataSource.query(`SELECT qname, qtype, hit_count, answers FROM dns_hit`);
    expect(rows.map((r: Record<string, unknown>) => ({ ...r, hit_count: Number(r.hit_count), answers: JSON.parse(String(r.answers)) }))).toEqual([
      { qname: 'www.evil.example', qtype: 'A', hit_count: 1, answers: ['CNAME cdn.example.net', 'A 198.51.100.7'] },
    ]);
  });
});
