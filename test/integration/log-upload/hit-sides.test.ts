import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { hitsOf, processQueued, upload, uploadRow } from '../../helpers/ingest';

/**
 * Which end of a hit is "one of our hosts", as a capture host on a public address sees it (flows/sides.ts):
 * the device's own static address is inside; when neither end is inside, the end that did not match is ours;
 * a matched IOC address and a local-scope destination (an IPv6 multicast group) never are.
 */
const STATIC = '93.184.216.34';
const C2 = '198.51.100.7';
const C2_V6 = '2001:db8:bad::5';
const OTHER_PUBLIC = '203.0.113.9';
const SERVER = '192.0.2.50';
const GROUP = 'ff02::1:ff00:11';
const WINDOW = { from: '2024-03-01T00:00:00Z', to: '2024-03-02T00:00:00Z' };

const CAPTURE = [
  // The capture host itself opens a connection to the C2 address.
  `1709287200.000000 IP ${STATIC}.50000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0`,
  `1709287200.000100 IP ${C2}.443 > ${STATIC}.50000: Flags [S.], seq 9, ack 2, win 65160, length 0`,
  // Another public host (neither end inside) opens one to the C2 address: the unmatched end is ours.
  `1709287260.000000 IP ${OTHER_PUBLIC}.40000 > ${C2}.443: Flags [S], seq 1, win 64240, length 0`,
  // The C2 address contacts a public server that is not inside: the unmatched end (the server) is ours.
  `1709287320.000000 IP ${C2}.6000 > ${SERVER}.22: Flags [S], seq 1, win 64240, length 0`,
  // A listed IPv6 address solicits a neighbour on the link: a multicast group is no host of ours.
  `1709287380.000000 IP6 ${C2_V6} > ${GROUP}: ICMP6, neighbor solicitation, who has 2001:db8:bad::11, length 32`,
].join('\n');

describe.each(drivers)('hit sides for a capture host on a public address (%s)', (driver) => {
  let t: TestApp;
  let hits: any[];
  let row: any;

  beforeAll(async () => {
    t = await createTestApp(driver);
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await q(`mutation { iocListCreate(input: { name: "C2", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    const added = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
        i: { list, entries: [{ value: C2 }, { value: '2001:db8:bad::/48' }] },
      })
    ).iocAdd;
    expect(added.userErrors).toEqual([]);
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "${STATIC}", policy: $p }) { device { id } } }`, {
      p: policy,
    });
    const r = ok(await upload(t, `${CAPTURE}\n`, { deviceNickname: 'edge' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    await processQueued(t.services);
    hits = await hitsOf(t, r.logUpload.id);
    row = await uploadRow(t, r.logUpload.id);
  });
  afterAll(() => t.close());

  it("stores the device's own address, or the unmatched end, as the internal host, with a direction that agrees", async () => {
    const sides = hits.map((h) => [h.direction, h.internalIp, h.externalIp, h.matchedSide, h.matchedIp]);
    expect(sides).toEqual([
      ['OUTBOUND', STATIC, C2, 'RESPONDER', C2],
      ['OUTBOUND', OTHER_PUBLIC, C2, 'RESPONDER', C2],
      ['INBOUND', SERVER, C2, 'INITIATOR', C2],
    ]);
    // The upload's own counts follow the same sides.
    expect(row).toMatchObject({ connections: 4, hits: 3, outboundConnections: 2, inboundConnections: 2 });
  });

  it('never reports a matched IOC address as an internal host', async () => {
    for (const h of hits) expect(h.internalIp).not.toBe(h.matchedIp);
  });

  it('never counts a multicast group as an internal host: the reports list the three hosts of ours', async () => {
    expect(hits.map((h) => h.internalIp)).not.toContain(GROUP);
    const report = ok(
      await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits internalHosts } byInternalHost(first: 10) { internalIp hits } } }`, {
        f: WINDOW,
      }),
    ).hitReport;
    expect(report.byInternalHost.map((r: { internalIp: string }) => r.internalIp)).not.toContain(GROUP);
    expect(report.byInternalHost.map((r: { internalIp: string }) => r.internalIp).sort()).toEqual([SERVER, OTHER_PUBLIC, STATIC].sort());
    expect(report.totals).toEqual({ hits: 3, internalHosts: 3 });
  });
});
