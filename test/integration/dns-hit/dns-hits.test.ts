import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';
import { RetentionService } from '../../../src/modules/report/retention.service';

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
  // The connection that followed the lookup (an IP hit of its own only when 198.51.100.7 is on an IP list).
  '1709287200.020000 IP 10.0.0.5.50000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0',
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
  const uploadTo = async (device: string) => {
    const r = ok(await upload(t, `${CAPTURE}\n`, { deviceNickname: device })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    await processQueued(t.services);
    return Number(idOfType(r.logUpload.id, 'LogUpload'));
  };

  beforeAll(async () => {
    t = await createTestApp(driver);
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    block = await newList('C2 domains', 'BLOCK', ['evil.example']);
    const allow = await newList('Allowed', 'ALLOW', ['good.evil.example']);
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [block, allow] } });
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
});
