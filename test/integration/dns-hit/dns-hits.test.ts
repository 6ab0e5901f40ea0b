import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { RetentionService } from '../../../src/modules/report/retention.service';
import type { ProcessOutcome } from '../../../src/modules/log-upload/log-upload.processor';

/**
 * DNS hits on upload (#18 item 4), on a synthetic capture: no name in the real captures is on a real feed.
 * BLOCK evil.example (severity 5, C2) and ALLOW good.evil.example: a question for a name under evil.example is a hit
 * unless the ALLOW entry contains it; notevil.example never matches (label boundaries).
 */
const CAPTURE = [
  '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 4242+ A? WWW.Evil.Example. (34)',
  '1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 4242 2/0/0 CNAME cdn.evil-cdn.net., A 198.51.100.7 (80)',
  '1709287260.000000 IP 10.0.0.5.40001 > 8.8.8.8.53: 4243+ A? www.evil.example. (34)',
  '1709287260.010000 IP 8.8.8.8.53 > 10.0.0.5.40001: 4243 1/0/0 A 198.51.100.8 (50)',
  '1709287300.000000 IP 10.0.0.6.40002 > 8.8.8.8.53: 4244+ A? x.good.evil.example. (34)',
  '1709287300.000000 IP 10.0.0.6.40003 > 8.8.8.8.53: 4245+ A? notevil.example. (34)',
  '1709287400.000000 IP 203.0.113.9.5000 > 10.0.0.53.53: 7+ AAAA? Evil.Example. (30)',
  // Connections to listed addresses (IP hits): after the lookup that resolved to it, before it, and to an address no
  // lookup resolved to.
  '1709287200.020000 IP 10.0.0.5.50000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0',
  '1709287100.000000 IP 10.0.0.7.50001 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0',
  '1709287210.000000 IP 10.0.0.5.50002 > 203.0.113.200.443: Flags [S], seq 1, win 64240, length 0',
].join('\n');

const HIT_COLUMNS = `device_id, upload_id, first_seen_at, last_seen_at, direction, internal_ip, qname, qtype, hit_count, answers, matched_name, severity, category`;

describe.each(drivers)('DNS hits on upload (%s)', (driver) => {
  let t: TestApp;
  let block: string;
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const newList = async (name: string, kind: string, entries: string[]) => {
    const id = (
      await q(
        `mutation($n: String!, $k: IocListKind!) { iocListCreate(input: { name: $n, kind: $k, entryKind: DOMAIN, severity: 5, category: C2_BOTNET }) { iocList { id } } }`,
        { n: name, k: kind },
      )
    ).iocListCreate.iocList.id as string;
    const added = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list: id, entries: entries.map((value) => ({ value })) } })
    ).iocAdd;
    expect(added.userErrors).toEqual([]);
    return id;
  };
  const rows = async (where = '1 = 1', params: unknown[] = []) =>
    (await t.dataSource.query(`SELECT ${HIT_COLUMNS} FROM dns_hit WHERE ${where} ORDER BY upload_id, first_seen_at, internal_ip, qname, qtype`, params)).map(
      (r: Record<string, unknown>) => ({
        ...r,
        device_id: Number(r.device_id),
        upload_id: Number(r.upload_id),
        first_seen_at: Number(r.first_seen_at),
        last_seen_at: Number(r.last_seen_at),
        hit_count: Number(r.hit_count),
        severity: Number(r.severity),
        answers: JSON.parse(String(r.answers)),
      }),
    );
  let lastOutcome: ProcessOutcome | undefined;
  // `extra` lines make the file differ from an earlier upload (the same bytes on the same device are a duplicate).
  const uploadTo = async (device: string, extra = '') => {
    const r = ok(await upload(t, `${CAPTURE}\n${extra}`, { deviceNickname: device })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    [lastOutcome] = await processQueued(t.services);
    return Number(idOfType(r.logUpload.id, 'LogUpload'));
  };

  beforeAll(async () => {
    t = await createTestApp(driver);
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    block = await newList('C2 domains', 'BLOCK', ['evil.example']);
    const allow = await newList('Allowed', 'ALLOW', ['good.evil.example']);
    const ips = (await q(`mutation { iocListCreate(input: { name: "C2 IPs", kind: BLOCK, severity: 4, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    const added = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
        i: { list: ips, entries: [{ value: '198.51.100.7' }, { value: '203.0.113.200' }] },
      })
    ).iocAdd;
    expect(added.userErrors).toEqual([]);
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, {
      i: { policy, iocLists: [block, allow, ips] },
    });
    for (const [nickname, ipAddress] of [
      ['edge', '93.184.216.34'],
      ['branch', '93.184.216.35'],
    ]) {
      const created = (
        await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { userErrors { message } } }`, {
          i: { nickname, ipType: 'STATIC', ipAddress, policy },
        })
      ).deviceCreate;
      expect(created.userErrors).toEqual([]);
    }
  });
  afterAll(() => t.close());

  let first: number;
  let edge: number;
  it('stores one hit per querying host, name and type that a BLOCK entry contains, with the answers to its queries', async () => {
    first = await uploadTo('edge');
    expect(lastOutcome).toMatchObject({ status: 'COMPLETED', hits: 3, dnsHits: 2 });
    const [device] = await t.dataSource.query(`SELECT device_id FROM log_upload WHERE id = ?`, [first]);
    edge = Number(device.device_id);
    const common = { device_id: edge, upload_id: first, matched_name: 'evil.example', severity: 5, category: 'C2_BOTNET' };
    expect(await rows()).toEqual([
      {
        ...common,
        first_seen_at: 1709287200000,
        last_seen_at: 1709287260000,
        direction: 'OUTBOUND',
        internal_ip: '10.0.0.5',
        qname: 'www.evil.example',
        qtype: 'A',
        hit_count: 2,
        answers: ['CNAME cdn.evil-cdn.net', 'A 198.51.100.7', 'A 198.51.100.8'],
      },
      {
        ...common,
        first_seen_at: 1709287400000,
        last_seen_at: 1709287400000,
        direction: 'INBOUND',
        internal_ip: '203.0.113.9',
        qname: 'evil.example',
        qtype: 'AAAA',
        hit_count: 1,
        answers: [],
      },
    ]);
  });

  it('replaces the hits exactly when the upload is reprocessed', async () => {
    const before = await rows();
    expect((await t.services.logUploads.reprocess(t.accountId, first)).ok).toBe(true);
    await processQueued(t.services);
    expect(await rows()).toEqual(before);
  });

  const DNS_HITS = `query($f: DnsHitFilter!, $first: Int, $after: String) { dnsHits(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id device { nickname } upload { id dnsHits } direction internalIp qname qtype matchedName iocDomain { name } iocList { id name }
      severity category hitCount firstSeenAt lastSeenAt answers } } } }`;
  const WINDOW = { from: '2024-03-01T00:00:00Z', to: '2024-03-02T00:00:00Z' };

  it('lists the DNS hits through dnsHits, newest first, a page at a time, with their device, upload, entry and list', async () => {
    const page1 = ok(await t.gql(DNS_HITS, { f: WINDOW, first: 1 })).dnsHits;
    expect(page1.totalCount).toBe(2);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = ok(await t.gql(DNS_HITS, { f: WINDOW, first: 1, after: page1.pageInfo.endCursor })).dnsHits;
    expect(page2.pageInfo.hasNextPage).toBe(false);
    const nodes = [...page1.edges, ...page2.edges].map((e: { node: Record<string, unknown> }) => e.node);
    const common = {
      device: { nickname: 'edge' },
      upload: { id: expect.any(String), dnsHits: 2 },
      matchedName: 'evil.example',
      iocDomain: { name: 'evil.example' },
      iocList: { id: block, name: 'C2 domains' },
      severity: 5,
      category: 'C2_BOTNET',
    };
    expect(nodes).toEqual([
      {
        ...common,
        id: expect.any(String),
        direction: 'INBOUND',
        internalIp: '203.0.113.9',
        qname: 'evil.example',
        qtype: 'AAAA',
        hitCount: 1,
        firstSeenAt: '2024-03-01T10:03:20.000Z',
        lastSeenAt: '2024-03-01T10:03:20.000Z',
        answers: [],
      },
      {
        ...common,
        id: expect.any(String),
        direction: 'OUTBOUND',
        internalIp: '10.0.0.5',
        qname: 'www.evil.example',
        qtype: 'A',
        hitCount: 2,
        firstSeenAt: '2024-03-01T10:00:00.000Z',
        lastSeenAt: '2024-03-01T10:01:00.000Z',
        answers: ['CNAME cdn.evil-cdn.net', 'A 198.51.100.7', 'A 198.51.100.8'],
      },
    ]);
    // node(id) fetches one.
    const node = ok(await t.gql(`query($id: ID!) { node(id: $id) { ... on DnsHit { qname } } }`, { id: nodes[1].id })).node;
    expect(node).toEqual({ qname: 'www.evil.example' });
  });

  it('filters by name (the name or a name under it), direction, severity and list', async () => {
    const qnames = async (f: Record<string, unknown>) =>
      ok(await t.gql(DNS_HITS, { f: { ...WINDOW, ...f } })).dnsHits.edges.map((e: { node: { qname: string } }) => e.node.qname);
    expect(await qnames({ name: 'Evil.Example.' })).toEqual(['evil.example', 'www.evil.example']);
    expect(await qnames({ name: 'www.evil.example' })).toEqual(['www.evil.example']);
    expect(await qnames({ name: 'vil.example' })).toEqual([]);
    expect(await qnames({ directions: ['OUTBOUND'] })).toEqual(['www.evil.example']);
    expect(await qnames({ minSeverity: 5, iocLists: [block] })).toEqual(['evil.example', 'www.evil.example']);
    expect(await qnames({ iocLists: [] })).toEqual([]);
    expect(await qnames({ from: '2024-03-01T10:02:00Z', to: '2024-03-02T00:00:00Z' })).toEqual(['evil.example']);
    const bad = await t.gql(DNS_HITS, { f: { ...WINDOW, name: 'http://x/' } });
    expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('looks missing to another account: no hits listed, none by node(id), its lookup counts none', async () => {
    const theirs = ok(await t.gql(DNS_HITS, { f: WINDOW }, t.keys.otherAdmin)).dnsHits;
    expect(theirs).toMatchObject({ totalCount: 0, edges: [] });
    const mine = ok(await t.gql(DNS_HITS, { f: WINDOW, first: 1 })).dnsHits.edges[0].node.id;
    expect(ok(await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: mine }, t.keys.otherAdmin)).node).toBeNull();
    const lookup = ok(await t.gql(`{ iocLookup(address: "evil.example") { hitCount firstSeenAt } }`, {}, t.keys.otherAdmin)).iocLookup;
    expect(lookup).toEqual({ hitCount: 0, firstSeenAt: null });
  });

  it('gives iocLookup of a domain the queries of DNS hits for it or a name under it, with first and last seen', async () => {
    const lookup = async (address: string) =>
      ok(await t.gql(`query($a: String!) { iocLookup(address: $a) { domain hitCount firstSeenAt lastSeenAt } }`, { a: address })).iocLookup;
    expect(await lookup('evil.example')).toEqual({
      domain: 'evil.example',
      hitCount: 3,
      firstSeenAt: '2024-03-01T10:00:00.000Z',
      lastSeenAt: '2024-03-01T10:03:20.000Z',
    });
    expect(await lookup('WWW.evil.example.')).toMatchObject({ hitCount: 2, lastSeenAt: '2024-03-01T10:01:00.000Z' });
    expect(await lookup('notevil.example')).toMatchObject({ hitCount: 0, firstSeenAt: null, lastSeenAt: null });
  });

  it('links an IP hit to the DNS hit whose answers held its address, when the lookup came first', async () => {
    const hits = ok(
      await t.gql(
        `query($f: HitFilter!) { flowHits(filter: $f, orderBy: FIRST_SEEN_ASC) { edges { node { internalIp externalIp followedDnsHit { qname internalIp } } } } }`,
        {
          f: WINDOW,
        },
      ),
    ).flowHits.edges.map((e: { node: unknown }) => e.node);
    expect(hits).toEqual([
      { internalIp: '10.0.0.7', externalIp: '198.51.100.7', followedDnsHit: null },
      { internalIp: '10.0.0.5', externalIp: '198.51.100.7', followedDnsHit: { qname: 'www.evil.example', internalIp: '10.0.0.5' } },
      { internalIp: '10.0.0.5', externalIp: '203.0.113.200', followedDnsHit: null },
    ]);
  });

  it("deletes a device's DNS hits with the device, and no other device's", async () => {
    const second = await uploadTo('branch');
    const theirs = await rows('upload_id = ?', [second]);
    expect(theirs.map((r: { qname: string }) => r.qname)).toEqual(['www.evil.example', 'evil.example']);
    const [branch] = await t.dataSource.query(`SELECT device_id FROM log_upload WHERE id = ?`, [second]);
    const id = toGlobalId('Device', Number(branch.device_id));
    expect((await q(`mutation($i: DeviceDeleteInput!) { deviceDelete(input: $i) { userErrors { message } } }`, { i: { id } })).deviceDelete.userErrors).toEqual(
      [],
    );
    expect(await rows('device_id = ?', [Number(branch.device_id)])).toEqual([]);
    expect((await rows()).length).toBe(2);
  });

  it('the retention purge deletes hits captured before its cutoff', async () => {
    const kept = new RetentionService(t.dataSource, 0);
    expect((await kept.purge()).dnsHits).toBe(0);
    // Cutoff between the two hits' capture times: only the earlier one goes.
    const now = 1709287300000 + 30 * 86_400_000;
    const purged = await new RetentionService(t.dataSource, 30, { batch: 1 }).purge(now);
    expect(purged.dnsHits).toBe(1);
    expect((await rows()).map((r: { qname: string }) => r.qname)).toEqual(['evil.example']);
  });

  it("the retention purge deletes an old upload's DNS hits with it, whatever their capture time", async () => {
    const late = await uploadTo('edge', '1709287999.000000 IP 10.0.0.9.1000 > 10.0.0.10.2000: UDP, length 1\n');
    const now = Date.now();
    // Received 40 days ago; captured (as stamped) yesterday: only the upload's age makes them go.
    await t.dataSource.query(`UPDATE log_upload SET received_at = ? WHERE id = ?`, [now - 40 * 86_400_000, late]);
    await t.dataSource.query(`UPDATE dns_hit SET first_seen_at = ?, last_seen_at = ? WHERE upload_id = ?`, [now - 86_400_000, now - 86_400_000, late]);
    expect((await rows()).map((r: { upload_id: number }) => r.upload_id)).toEqual([first, late, late]);
    const purged = await new RetentionService(t.dataSource, 30).purge(now);
    // The first upload's last hit goes by its capture time (2024), the late upload's two with the upload.
    expect(purged).toMatchObject({ uploads: 1, dnsHits: 3 });
    expect(await rows()).toEqual([]);
  });

  it('matches a domain added to a list on the next upload (the cached matcher is rebuilt)', async () => {
    const added = (
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list: block, entries: [{ value: 'notevil.example' }] } })
    ).iocAdd;
    expect(added.userErrors).toEqual([]);
    const next = await uploadTo('edge', '1709287999.000000 IP 10.0.0.9.1000 > 10.0.0.10.2001: UDP, length 1\n');
    expect((await rows('upload_id = ?', [next])).map((r: { qname: string; matched_name: string }) => [r.qname, r.matched_name])).toEqual([
      ['www.evil.example', 'evil.example'],
      ['notevil.example', 'notevil.example'],
      ['evil.example', 'evil.example'],
    ]);
  });

  it('finds no DNS hits for a device whose policy has no DOMAIN list (its uploads are parsed without DNS)', async () => {
    const policy = (await q(`mutation { policyCreate(input: { name: "ip only" }) { policy { id } } }`)).policyCreate.policy.id;
    const created = (
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { userErrors { message } } }`, {
        i: { nickname: 'plain', ipType: 'STATIC', ipAddress: '93.184.216.36', policy },
      })
    ).deviceCreate;
    expect(created.userErrors).toEqual([]);
    const r = ok(await upload(t, `${CAPTURE}\n`, { deviceNickname: 'plain' })).logUploadCreate;
    await processQueued(t.services);
    const row = ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status connections dnsHits } }`, { id: r.logUpload.id })).logUpload;
    expect(row).toEqual({ status: 'COMPLETED', connections: 8, dnsHits: 0 });
    expect(await rows('upload_id = ?', [Number(idOfType(r.logUpload.id, 'LogUpload'))])).toEqual([]);
  });
});
