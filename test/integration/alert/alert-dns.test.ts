import http from 'node:http';
import { AddressInfo } from 'node:net';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType } from '../../../src/common/ids/global-id';

/**
 * DNS hits raise alerts like flow hits (#19 item 1): in the transaction that writes them, throttled by (rule,
 * matched entry, internal host), and a rule's hitKinds condition picks IP hits, DNS hits or both.
 */
const CAPTURE = [
  // 10.0.0.5 asks for two names under evil.example: two DNS hits, one entry and one host, so one alert of 2 hits.
  '1709287200.000000 IP 10.0.0.5.40000 > 8.8.8.8.53: 4242+ A? www.evil.example. (34)',
  '1709287200.010000 IP 8.8.8.8.53 > 10.0.0.5.40000: 4242 1/0/0 A 198.51.100.7 (50)',
  '1709287260.000000 IP 10.0.0.5.40001 > 8.8.8.8.53: 4243+ A? mail.evil.example. (35)',
  // Another host: another alert.
  '1709287300.000000 IP 10.0.0.6.40002 > 8.8.8.8.53: 4244+ A? evil.example. (30)',
  // A flow to a listed address from 10.0.0.5: an IP hit.
  '1709287200.020000 IP 10.0.0.5.50000 > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0',
].join('\n');

describe.each(drivers)('DNS hits raise alerts (%s)', (driver) => {
  let t: TestApp;
  const posts: string[] = [];
  let status = 200;
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      posts.push(body);
      res.statusCode = status;
      res.end('ok');
    });
  });
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const rule = async (name: string, destination: string, hitKinds?: string[]) => {
    const r = (
      await q(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id hitKinds } userErrors { message } } }`, {
        i: { name, minSeverity: 0, destinations: [destination], ...(hitKinds ? { hitKinds } : {}) },
      })
    ).alertRuleCreate;
    expect(r.userErrors).toEqual([]);
    expect(r.alertRule.hitKinds).toEqual(hitKinds ?? []);
    return Number(idOfType(r.alertRule.id, 'AlertRule'));
  };
  const alerts = async () =>
    (
      (await t.dataSource.query(
        `SELECT r.name, a.hit_kind, a.internal_ip, a.external_ip, a.qname, a.hit_count FROM alert a JOIN alert_rule r ON r.id = a.rule_id
          ORDER BY r.name, a.hit_kind, a.internal_ip`,
      )) as Array<Record<string, string | number | null>>
    ).map((r) => [r.name, r.hit_kind, r.internal_ip, r.external_ip, r.qname, Number(r.hit_count)]);
  const uploadCapture = async (text: string) => {
    const r = ok(await upload(t, `${text}\n`, { deviceNickname: 'edge' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    const [outcome] = await processQueued(t.services);
    expect(outcome).toMatchObject({ status: 'COMPLETED' });
    return Number(idOfType(r.logUpload.id, 'LogUpload'));
  };

  let destination: string;
  beforeAll(async () => {
    const port = await new Promise<number>((resolve) => hook.listen(0, '127.0.0.1', () => resolve((hook.address() as AddressInfo).port)));
    // Retries 1 ms apart (doubling, with jitter), given up 1.5 s after the alert: the last test waits that long.
    t = await createTestApp(driver, { ALERT_DESTINATION_ALLOW: '127.0.0.0/8', ALERT_RETRY_BASE_MS: '1', ALERT_RETRY_FOR_MS: '1500' });
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const domains = (
      await q(`mutation { iocListCreate(input: { name: "C2 domains", kind: BLOCK, entryKind: DOMAIN, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)
    ).iocListCreate.iocList.id;
    const ips = (await q(`mutation { iocListCreate(input: { name: "C2 IPs", kind: BLOCK, severity: 4, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    for (const [list, value] of [
      [domains, 'evil.example'],
      [ips, '198.51.100.7'],
    ]) {
      const added = (await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value }] } })).iocAdd;
      expect(added.userErrors).toEqual([]);
    }
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [domains, ips] } });
    const created = (
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { userErrors { message } } }`, {
        i: { nickname: 'edge', ipType: 'STATIC', ipAddress: '93.184.216.34', policy },
      })
    ).deviceCreate;
    expect(created.userErrors).toEqual([]);
    const dest = (
      await q(`mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } userErrors { message } } }`, {
        i: { name: 'hook', webhook: { url: `http://127.0.0.1:${port}/hook` } },
      })
    ).alertDestinationCreate;
    expect(dest.userErrors).toEqual([]);
    destination = dest.alertDestination.id;
  });
  afterAll(async () => {
    await t.close();
    hook.close();
  });

  let first: number;
  it('writes an alert per (rule, matched entry, internal host) for DNS hits, with the flow hits, as each rule asks', async () => {
    await rule('any', destination);
    await rule('dns', destination, ['DNS']);
    await rule('ip', destination, ['IP']);
    first = await uploadCapture(CAPTURE);
    expect(await alerts()).toEqual([
      ['any', 'DNS', '10.0.0.5', '', 'www.evil.example', 2],
      ['any', 'DNS', '10.0.0.6', '', 'evil.example', 1],
      ['any', 'IP', '10.0.0.5', '198.51.100.7', null, 1],
      ['dns', 'DNS', '10.0.0.5', '', 'www.evil.example', 2],
      ['dns', 'DNS', '10.0.0.6', '', 'evil.example', 1],
      ['ip', 'IP', '10.0.0.5', '198.51.100.7', null, 1],
    ]);
    const [deliveries] = (await t.dataSource.query(`SELECT COUNT(*) AS n FROM alert_delivery WHERE status = 'PENDING'`)) as Array<{ n: number | string }>;
    expect(Number(deliveries.n)).toBe(6);
  });

  it('does not alert again for the DNS hits a reprocess finds again, and adds new ones in the window to their alert', async () => {
    expect((await t.services.logUploads.reprocess(t.accountId, first)).ok).toBe(true);
    await processQueued(t.services);
    const before = await alerts();
    expect(before.map((a) => a[5])).toEqual([2, 1, 1, 2, 1, 1]);
    // A later upload: 10.0.0.6 asks again (same entry and host: its alert counts it), 10.0.0.7 for the first time.
    await uploadCapture(
      [
        '1709287500.000000 IP 10.0.0.6.40010 > 8.8.8.8.53: 4250+ A? cdn.evil.example. (34)',
        '1709287500.000000 IP 10.0.0.7.40011 > 8.8.8.8.53: 4251+ A? evil.example. (30)',
      ].join('\n'),
    );
    expect(await alerts()).toEqual([
      ['any', 'DNS', '10.0.0.5', '', 'www.evil.example', 2],
      ['any', 'DNS', '10.0.0.6', '', 'evil.example', 2],
      ['any', 'DNS', '10.0.0.7', '', 'evil.example', 1],
      ['any', 'IP', '10.0.0.5', '198.51.100.7', null, 1],
      ['dns', 'DNS', '10.0.0.5', '', 'www.evil.example', 2],
      ['dns', 'DNS', '10.0.0.6', '', 'evil.example', 2],
      ['dns', 'DNS', '10.0.0.7', '', 'evil.example', 1],
      ['ip', 'IP', '10.0.0.5', '198.51.100.7', null, 1],
    ]);
    const [deliveries] = (await t.dataSource.query(`SELECT COUNT(*) AS n FROM alert_delivery`)) as Array<{ n: number | string }>;
    expect(Number(deliveries.n)).toBe(8);
  });

  it('delivers a DNS alert with its hit kind, queried name and matched domain', async () => {
    await t.services.alertDispatcher.runOnce();
    const bodies = posts.map((p) => JSON.parse(p) as Record<string, any>);
    expect(bodies).toHaveLength(8);
    const dns = bodies.filter((b) => b.hitKind === 'DNS' && b.internalIp === '10.0.0.7');
    expect(dns).toHaveLength(2);
    expect(dns[0]).toMatchObject({ hitKind: 'DNS', qname: 'evil.example', externalIp: '', ioc: { cidr: 'evil.example' }, iocList: { name: 'C2 domains' } });
    expect(idOfType(dns[0].ioc.id, 'IocDomain')).toBeGreaterThan(0);
    const ip = bodies.filter((b) => b.hitKind === 'IP');
    expect(ip).toHaveLength(2);
    expect(ip[0]).toMatchObject({ qname: null, externalIp: '198.51.100.7', ioc: { cidr: '198.51.100.7/32' } });
  });

  it('does not retry a delivery the destination refuses for good (a 4xx): FAILED after one attempt, the destination failing', async () => {
    status = 404;
    await uploadCapture('1709287600.000000 IP 10.0.0.8.40012 > 8.8.8.8.53: 4252+ A? evil.example. (30)');
    await t.services.alertDispatcher.runOnce();
    await t.services.alertDispatcher.runOnce();
    status = 200;
    const failed = (
      await q(
        `{ alertDeliveries(first: 10, filter: { status: FAILED }) { totalCount edges { node { attemptCount lastError alert { internalIp } destination { failing lastError } } } } }`,
      )
    ).alertDeliveries;
    expect(failed.totalCount).toBe(2);
    for (const e of failed.edges) {
      expect(e.node).toEqual({
        attemptCount: 1,
        lastError: 'HTTP 404',
        alert: { internalIp: '10.0.0.8' },
        destination: { failing: true, lastError: 'HTTP 404' },
      });
    }
    expect((await q(`{ alertDeliveries(first: 1, filter: { status: PENDING }) { totalCount } }`)).alertDeliveries.totalCount).toBe(0);
  });

  it('retries a delivery the destination keeps failing (a 5xx) with backoff, and gives it up ALERT_RETRY_FOR_MS after its alert', async () => {
    status = 503;
    await uploadCapture('1709287700.000000 IP 10.0.0.9.40013 > 8.8.8.8.53: 4253+ A? evil.example. (30)');
    const FAILED = `{ alertDeliveries(first: 10, filter: { status: FAILED }) { edges { node {
      status attemptCount lastError createdAt alert { internalIp } destination { failing lastError } attempts { attemptedAt ok error } } } } }`;
    const mine = async () => (await q(FAILED)).alertDeliveries.edges.map((e: any) => e.node).filter((n: any) => n.alert.internalIp === '10.0.0.9');
    const deadline = Date.now() + 10_000;
    let given: any[] = [];
    // What the worker's loop does: a pass whenever a retry is due.
    while (Date.now() < deadline && (given = await mine()).length < 2) {
      await t.services.alertDispatcher.runOnce();
      await new Promise((r) => setTimeout(r, 20));
    }
    status = 200;
    // The rules "any" and "dns" match it; both deliveries are given up.
    expect(given).toHaveLength(2);
    for (const d of given) {
      expect(d).toMatchObject({ status: 'FAILED', lastError: 'HTTP 503', destination: { failing: true, lastError: 'HTTP 503' } });
      // Retried, not given up at the first failure; every attempt recorded with its outcome, in order.
      expect(d.attemptCount).toBeGreaterThan(2);
      expect(d.attempts).toHaveLength(d.attemptCount);
      expect(d.attempts.every((a: any) => a.ok === false && a.error === 'HTTP 503')).toBe(true);
      const times = d.attempts.map((a: any) => Date.parse(a.attemptedAt));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      // Given up only once the period had passed: its last attempt is the first to end 1.5 s after the alert.
      expect(times[times.length - 1] - Date.parse(d.createdAt)).toBeGreaterThanOrEqual(1500 - 100);
      expect(times[times.length - 2] - Date.parse(d.createdAt)).toBeLessThan(1500);
    }
    // Given up is final: no more attempts.
    const attempts = given.map((d) => d.attemptCount);
    await t.services.alertDispatcher.runOnce();
    expect((await mine()).map((d: any) => d.attemptCount)).toEqual(attempts);
  });
});
