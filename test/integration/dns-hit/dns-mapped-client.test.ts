import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { blockEvilExample } from '../../helpers/dns';

/**
 * A DNS query from an IPv4-mapped IPv6 client (`::ffff:10.0.0.5`) is that IPv4 host's, as flow hits are: the
 * filter's internalAddress, given in either form, finds its DNS hits beside those of the plain IPv4 form, in
 * dnsHits and in hitReport. Before, the filter's canonical form (10.0.0.5) never met the stored text.
 */
const T0 = Date.UTC(2024, 2, 1, 6) / 1000;
const WINDOW = { from: new Date((T0 - 60) * 1000).toISOString(), to: new Date((T0 + 3600) * 1000).toISOString() };
const CAPTURE = [
  `${(T0 + 1).toFixed(6)} IP6 ::ffff:10.0.0.5.53000 > 2001:db8::53.53: 1001+ A? evil.example. (30)`,
  `${(T0 + 2).toFixed(6)} IP 10.0.0.5.53001 > 8.8.8.8.53: 1002+ AAAA? evil.example. (30)`,
  `${(T0 + 3).toFixed(6)} IP 10.0.0.6.53002 > 8.8.8.8.53: 1003+ A? evil.example. (30)`,
  '',
].join('\n');

describe.each(drivers)('DNS hits of an IPv4-mapped client (%s)', (driver) => {
  let t: TestApp;
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));

  beforeAll(async () => {
    t = await createTestApp(driver);
    await blockEvilExample(t);
    expect(ok(await upload(t, CAPTURE, { deviceNickname: 'edge' })).logUploadCreate.userErrors).toEqual([]);
    await processQueued(t.services);
  });
  afterAll(() => t.close());

  const listed = async (internalAddress?: string) =>
    (
      await q(`query($f: DnsHitFilter!) { dnsHits(filter: $f, first: 10) { totalCount edges { node { internalIp qtype } } } }`, {
        f: { ...WINDOW, ...(internalAddress ? { internalAddress } : {}) },
      })
    ).dnsHits;

  it('stores the client as captured', async () => {
    const all = await listed();
    expect(all.totalCount).toBe(3);
    expect(all.edges.map((e: any) => e.node.internalIp).sort()).toEqual(['10.0.0.5', '10.0.0.6', '::ffff:10.0.0.5']);
  });

  it.each(['10.0.0.5', '::ffff:10.0.0.5', '::FFFF:0a00:0005'])('internalAddress %s finds both forms of the host, and only them', async (address) => {
    const found = await listed(address);
    expect(found.edges.map((e: any) => e.node.internalIp).sort()).toEqual(['10.0.0.5', '::ffff:10.0.0.5']);
    expect(found.totalCount).toBe(2);
    const report = (await q(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits } } }`, { f: { ...WINDOW, kind: 'DNS', internalAddress: address } }))
      .hitReport;
    expect(report.totals.hits).toBe(2);
  });

  it('a plain IPv6 host is matched as itself', async () => {
    expect((await listed('2001:db8::5')).totalCount).toBe(0);
    expect((await listed('10.0.0.6')).totalCount).toBe(1);
  });
});
