import crypto from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';

/**
 * Alert destinations against real local receivers (an HTTP server, syslog over UDP and TCP, an in-process SMTP
 * server), the address guard, secrets shown once; then the outbox: hits raise throttled alerts in their
 * transaction, and the dispatcher delivers them with the idempotency key and records each attempt.
 */

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

function webhookReceiver(status: () => number) {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = status();
      res.end('ok');
    });
  });
  return { got, server };
}

const listen = (server: net.Server | http.Server) =>
  new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

const DEST_FIELDS = `id name kind failing lastError lastErrorAt webhook { url format } syslog { host port transport format } email { host port secure username from to }`;
const CREATE_DEST = `mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { ${DEST_FIELDS} } secret userErrors { code field message } } }`;
const TEST_DEST = `mutation($id: ID!) { alertDestinationTest(input: { id: $id }) { delivered error alertDestination { failing lastError } userErrors { code message } } }`;
const BAD = ['198.51.100.7', '203.0.113.9'];

describe.each(drivers)('alert destinations and delivery (%s)', (driver) => {
  let t: TestApp;
  let status = 200;
  const hook = webhookReceiver(() => status);
  let hookPort: number;
  const udpLines: string[] = [];
  const udp = dgram.createSocket('udp4');
  let udpPort: number;
  const tcpData: string[] = [];
  const tcp = net.createServer((s) => {
    let data = '';
    s.on('data', (c) => (data += c.toString('utf8')));
    s.on('end', () => tcpData.push(data));
  });
  let tcpPort: number;
  const mails: Array<{ from: string; to: string[]; data: string; user: string | undefined }> = [];
  const smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'alerts' && auth.password === 'hunter2') cb(null, { user: auth.username });
      else cb(new Error('bad credentials'));
    },
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString('utf8')));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? (session.envelope.mailFrom as { address: string }).address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  let smtpPort: number;

  const gql = async (query: string, v: Record<string, unknown> = {}, key?: string) => ok(await t.gql(query, v, key));
  const createDest = async (i: Record<string, unknown>) => (await gql(CREATE_DEST, { i })).alertDestinationCreate;

  beforeAll(async () => {
    hookPort = await listen(hook.server);
    tcpPort = await listen(tcp);
    smtpPort = await listen(smtp.server as unknown as net.Server);
    udpPort = await new Promise<number>((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    udp.on('message', (m) => udpLines.push(m.toString('utf8')));
    // Loopback is refused by default; these tests allow it explicitly, as an install with a local relay would.
    // No rate limit on alertDestinationTest here (alert-tls.test.ts tests it): these tests send to one destination often.
    t = await createTestApp(driver, { ALERT_DESTINATION_ALLOW: '127.0.0.0/8', ALERT_RETRY_BASE_MS: '1', ALERT_TEST_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
    hook.server.close();
    tcp.close();
    udp.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  });

  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(cond()).toBe(true);
  };

  it('creates a webhook, shows its secret once, and signs the test post with HMAC-SHA256 over timestamp and body', async () => {
    const r = await createDest({ name: 'hook', webhook: { url: `http://127.0.0.1:${hookPort}/in` } });
    expect(r.userErrors).toEqual([]);
    expect(r.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(r.alertDestination).toMatchObject({
      kind: 'WEBHOOK',
      webhook: { url: `http://127.0.0.1:${hookPort}/in`, format: 'JSON' },
      syslog: null,
      failing: false,
    });
    const listed = JSON.stringify(await gql(`{ alertDestinations { ${DEST_FIELDS} } }`));
    expect(listed).not.toContain(r.secret);
    const before = hook.got.length;
    const test = (await gql(TEST_DEST, { id: r.alertDestination.id })).alertDestinationTest;
    expect(test).toMatchObject({ delivered: true, error: null, alertDestination: { failing: false } });
    const got = hook.got[before];
    const ts = got.headers['x-pcd-timestamp'] as string;
    const expected = crypto.createHmac('sha256', r.secret).update(`${ts}.${got.body}`).digest('hex');
    expect(got.headers['x-pcd-signature']).toBe(`v1=${expected}`);
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({ test: true, severity: 5, internalIp: '10.0.0.1' });
    expect(got.headers['idempotency-key']).toBe(body.idempotencyKey);
  });

  it('posts a Slack-compatible body when asked', async () => {
    const r = await createDest({ name: 'slack', webhook: { url: `http://127.0.0.1:${hookPort}/slack`, format: 'SLACK' } });
    const before = hook.got.length;
    expect((await gql(TEST_DEST, { id: r.alertDestination.id })).alertDestinationTest.delivered).toBe(true);
    expect(Object.keys(JSON.parse(hook.got[before].body))).toEqual(['text']);
    expect(JSON.parse(hook.got[before].body).text).toContain('192.0.2.1/32');
  });

  it('refuses link-local and cloud metadata addresses, and loopback is refused unless allowed', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://[fe80::1]/x', 'http://100.100.100.200/']) {
      const r = await createDest({ name: 'ssrf', webhook: { url } });
      expect(r.alertDestination).toBeNull();
      expect(r.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'webhook', 'url'] });
    }
    expect((await createDest({ name: 'meta', syslog: { host: '169.254.169.254', port: 514, transport: 'UDP' } })).userErrors[0].field).toEqual([
      'input',
      'syslog',
      'host',
    ]);
    const strict = await createTestApp(driver);
    try {
      const r = ok(await strict.gql(CREATE_DEST, { i: { name: 'local', webhook: { url: `http://127.0.0.1:${hookPort}/` } } })).alertDestinationCreate;
      expect(r.userErrors[0].message).toMatch(/loopback/);
    } finally {
      await strict.close();
    }
  });

  it('changes a destination with alertDestinationUpdate: name and settings re-checked, secret rotated and shown once', async () => {
    const UPDATE = `mutation($i: AlertDestinationUpdateInput!) { alertDestinationUpdate(input: $i) { alertDestination { ${DEST_FIELDS} } secret userErrors { code field message } } }`;
    const update = async (i: Record<string, unknown>, key?: string) => (await gql(UPDATE, { i }, key)).alertDestinationUpdate;
    const created = await createDest({ name: 'rotating', webhook: { url: `http://127.0.0.1:${hookPort}/old` } });
    const id = created.alertDestination.id;
    const signedWith = async (secret: string) => {
      const before = hook.got.length;
      expect((await gql(TEST_DEST, { id })).alertDestinationTest.delivered).toBe(true);
      const got = hook.got[before];
      const mac = crypto
        .createHmac('sha256', secret)
        .update(`${got.headers['x-pcd-timestamp'] as string}.${got.body}`)
        .digest('hex');
      return got.headers['x-pcd-signature'] === `v1=${mac}`;
    };

    // New name and URL; the secret is kept (and not shown).
    const renamed = await update({ id, name: 'renamed', webhook: { url: `http://127.0.0.1:${hookPort}/new`, format: 'SLACK' } });
    expect(renamed).toMatchObject({
      userErrors: [],
      secret: null,
      alertDestination: { name: 'renamed', webhook: { url: `http://127.0.0.1:${hookPort}/new`, format: 'SLACK' } },
    });
    expect(await signedWith(created.secret)).toBe(true);

    // Rotated: the new secret is returned once and signs from now on; the old one no longer does.
    const rotated = await update({ id, rotateSecret: true });
    expect(rotated.userErrors).toEqual([]);
    expect(rotated.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(rotated.secret).not.toBe(created.secret);
    expect(await signedWith(rotated.secret)).toBe(true);
    expect(await signedWith(created.secret)).toBe(false);
    expect(JSON.stringify(await gql(`{ alertDestinations { ${DEST_FIELDS} } }`))).not.toContain(rotated.secret);

    // The address guard runs on a new URL; a refused change leaves the destination as it was.
    const refused = await update({ id, webhook: { url: 'http://169.254.169.254/latest/meta-data' } });
    expect(refused).toMatchObject({ alertDestination: null, secret: null, userErrors: [{ code: 'INVALID', field: ['input', 'webhook', 'url'] }] });
    expect((await update({ id, syslog: { host: '127.0.0.1', port: 514, transport: 'UDP' } })).userErrors[0]).toMatchObject({
      code: 'INVALID',
      field: ['input', 'syslog'],
    });
    expect((await update({ id, name: '' })).userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'name'] });
    const [row] = (await t.dataSource.query(`SELECT name, settings FROM alert_destination WHERE name = 'renamed'`)) as Array<{
      name: string;
      settings: string;
    }>;
    expect(JSON.parse(row.settings)).toMatchObject({ url: `http://127.0.0.1:${hookPort}/new` });

    // A syslog destination has no secret to rotate; its new host is checked too.
    const syslog = (await createDest({ name: 'sys', syslog: { host: '127.0.0.1', port: udpPort, transport: 'UDP' } })).alertDestination.id;
    expect((await update({ id: syslog, rotateSecret: true })).userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'rotateSecret'] });
    expect((await update({ id: syslog, syslog: { host: '169.254.169.254', port: 514, transport: 'TCP' } })).userErrors[0].field).toEqual([
      'input',
      'syslog',
      'host',
    ]);
    expect((await update({ id: syslog, syslog: { host: '127.0.0.1', port: udpPort + 1, transport: 'TCP', format: 'CEF' } })).alertDestination.syslog).toEqual({
      host: '127.0.0.1',
      port: udpPort + 1,
      transport: 'TCP',
      format: 'CEF',
    });

    // Another account's destination looks missing, and changes nothing; an analyst may not change one.
    expect((await update({ id, name: 'stolen', rotateSecret: true }, t.keys.otherAdmin)).userErrors).toEqual([
      expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'id'] }),
    ]);
    expect((await t.gql(UPDATE, { i: { id, name: 'x' } }, t.keys.analyst)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(await signedWith(rotated.secret)).toBe(true);
    expect((await gql(`{ alertDestinations { name } }`)).alertDestinations.map((d: { name: string }) => d.name)).toContain('renamed');
  });

  it('marks a destination failing with its last error, and healthy again after a success', async () => {
    const r = await createDest({ name: 'flaky', webhook: { url: `http://127.0.0.1:${hookPort}/flaky` } });
    status = 500;
    const failed = (await gql(TEST_DEST, { id: r.alertDestination.id })).alertDestinationTest;
    status = 200;
    expect(failed).toMatchObject({ delivered: false, error: 'HTTP 500', alertDestination: { failing: true, lastError: 'HTTP 500' } });
    expect((await gql(TEST_DEST, { id: r.alertDestination.id })).alertDestinationTest.alertDestination.failing).toBe(false);
  });

  it('sends RFC 5424 syslog over UDP (JSON) and TCP with octet counting (CEF)', async () => {
    const u = await createDest({ name: 'udp', syslog: { host: '127.0.0.1', port: udpPort, transport: 'UDP' } });
    expect((await gql(TEST_DEST, { id: u.alertDestination.id })).alertDestinationTest.delivered).toBe(true);
    await waitFor(() => udpLines.length === 1);
    // PRI local0 (16) * 8 + alert (1) for severity 5; VERSION 1; APP-NAME; MSGID; structured data; then the JSON.
    expect(udpLines[0]).toMatch(/^<129>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ pcap-defense \d+ ioc-hit \[pcd@32473 key="test-[^"]+"\] \{/);
    expect(JSON.parse(udpLines[0].slice(udpLines[0].indexOf('{'))).test).toBe(true);
    const c = await createDest({ name: 'tcp', syslog: { host: '127.0.0.1', port: tcpPort, transport: 'TCP', format: 'CEF' } });
    expect(c.alertDestination.syslog).toEqual({ host: '127.0.0.1', port: tcpPort, transport: 'TCP', format: 'CEF' });
    expect((await gql(TEST_DEST, { id: c.alertDestination.id })).alertDestinationTest.delivered).toBe(true);
    await waitFor(() => tcpData.length === 1);
    const [, len, msg] = /^(\d+) ([\s\S]*)$/.exec(tcpData[0])!;
    expect(Buffer.byteLength(msg)).toBe(Number(len));
    expect(msg).toMatch(/ CEF:0\|pcap-defense\|pcap-defense\|1\|ioc-hit-5\|IOC hit: 192\.0\.2\.1\/32\|10\|rt=\d+ src=10\.0\.0\.1 dst=192\.0\.2\.1 cnt=1 /);
  });

  it('sends e-mail through SMTP with authentication, and never shows the password', async () => {
    const r = await createDest({
      name: 'mail',
      email: {
        host: '127.0.0.1',
        port: smtpPort,
        username: 'alerts',
        password: 'hunter2',
        from: 'pcd@example.com',
        to: ['soc@example.com', 'noc@example.com'],
      },
    });
    expect(r.userErrors).toEqual([]);
    expect(r.secret).toBeNull();
    expect(r.alertDestination.email).toEqual({
      host: '127.0.0.1',
      port: smtpPort,
      secure: false,
      username: 'alerts',
      from: 'pcd@example.com',
      to: ['soc@example.com', 'noc@example.com'],
    });
    expect(JSON.stringify(await gql(`{ alertDestinations { ${DEST_FIELDS} } }`))).not.toContain('hunter2');
    expect((await gql(TEST_DEST, { id: r.alertDestination.id })).alertDestinationTest).toMatchObject({ delivered: true, error: null });
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ from: 'pcd@example.com', to: ['soc@example.com', 'noc@example.com'], user: 'alerts' });
    expect(mails[0].data).toMatch(/Subject: \[test\] pcap-defense: 10\.0\.0\.1 matched 192\.0\.2\.1\/32/);
    const wrong = await createDest({
      name: 'mail2',
      email: { host: '127.0.0.1', port: smtpPort, username: 'alerts', password: 'nope', from: 'a@b.c', to: ['d@e.f'] },
    });
    const failed = (await gql(TEST_DEST, { id: wrong.alertDestination.id })).alertDestinationTest;
    expect(failed.delivered).toBe(false);
    expect(failed.error).not.toContain('nope');
  });

  it('keeps alert configuration to admins of the account', async () => {
    const r = await t.gql(`{ alertDestinations { id } }`, {}, t.keys.analyst);
    expect(r.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(ok(await t.gql(`{ alertDestinations { id } }`, {}, t.keys.otherAdmin)).alertDestinations).toEqual([]);
  });

  it('writes throttled alerts with the hits and delivers each once, with its attempts', async () => {
    const policy = (await gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (await gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
      .iocList.id;
    await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
    await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
      i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
    });
    const dest = (await createDest({ name: 'outbox', webhook: { url: `http://127.0.0.1:${hookPort}/outbox` } })).alertDestination.id;
    const rule = (
      await gql(
        `mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id name minSeverity throttleMinutes destinations { id } iocLists { name } } userErrors { message } } }`,
        {
          i: { name: 'malware', minSeverity: 3, iocLists: [list], destinations: [dest] },
        },
      )
    ).alertRuleCreate;
    expect(rule.userErrors).toEqual([]);
    expect(rule.alertRule).toMatchObject({ minSeverity: 3, throttleMinutes: 60, destinations: [{ id: dest }], iocLists: [{ name: 'bad' }] });
    // Ignored: a rule whose severity is above the list's.
    await gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { userErrors { message } } }`, {
      i: { name: 'c2 only', minSeverity: 5, destinations: [dest] },
    });

    // 3 hosts x 2 bad addresses, 4 connections each: 24 hits, 6 alerts.
    const lines: string[] = [];
    for (let i = 0; i < 24; i++)
      lines.push(`${1717000000 + i}.000000 IP 10.0.0.${1 + (i % 3)}.${40000 + i} > ${BAD[Math.floor(i / 3) % 2]}.443: Flags [S], seq 1, win 1, length 0`);
    ok(await upload(t, `${lines.join('\n')}\n`, { deviceNickname: 'hq' }));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
    const alerts = (await t.dataSource.query(`SELECT hit_count FROM alert ORDER BY id`)) as Array<{ hit_count: number | string }>;
    expect(alerts.map((a) => Number(a.hit_count))).toEqual([4, 4, 4, 4, 4, 4]);

    const before = hook.got.filter((g) => g.body.includes('"test":false')).length;
    status = 503;
    await t.services.alertDispatcher.runOnce();
    status = 200;
    const pending = (await gql(`{ alertDeliveries(first: 10, filter: { status: PENDING }) { totalCount edges { node { attemptCount lastError } } } }`))
      .alertDeliveries;
    expect(pending.totalCount).toBe(6);
    expect(pending.edges.map((e: any) => e.node)).toEqual(Array(6).fill({ attemptCount: 1, lastError: 'HTTP 503' }));
    // Retried after the backoff: due a few milliseconds later with ALERT_RETRY_BASE_MS=1.
    await new Promise((r) => setTimeout(r, 20));
    await t.services.alertDispatcher.runOnce();
    const posts = hook.got.filter((g) => g.body.includes('"test":false'));
    expect(posts.length - before).toBe(12);
    const keys = new Set(posts.slice(before).map((p) => p.headers['idempotency-key']));
    expect(keys.size).toBe(6);
    const delivered = (
      await gql(
        `{ alertDeliveries(first: 10) { edges { node { status attemptCount deliveredAt lastError attempts { ok error } alert { hitCount internalIp severity rule { name } } destination { id failing } } } } }`,
      )
    ).alertDeliveries.edges.map((e: any) => e.node);
    expect(delivered).toHaveLength(6);
    for (const d of delivered) {
      expect(d).toMatchObject({
        status: 'DELIVERED',
        lastError: null,
        attempts: [
          { ok: false, error: 'HTTP 503' },
          { ok: true, error: null },
        ],
        alert: { hitCount: 4, severity: 4, rule: { name: 'malware' } },
        destination: { id: dest, failing: false },
      });
    }
    const body = JSON.parse(posts[posts.length - 1].body);
    expect(body).toMatchObject({
      test: false,
      hitCount: 4,
      severity: 4,
      category: 'MALWARE',
      foundBy: 'UPLOAD',
      iocList: { name: 'bad' },
      device: { nickname: 'hq' },
      rule: { name: 'malware' },
    });

    // The same hosts and entries again within the window: the alerts count the hits, nothing new is sent.
    ok(await upload(t, `${lines.map((l) => l.replace('.000000', '.500000')).join('\n')}\n`, { deviceNickname: 'hq' }));
    await processQueued(t.services);
    const counts = (await t.dataSource.query(`SELECT hit_count FROM alert ORDER BY id`)) as Array<{ hit_count: number | string }>;
    expect(counts.map((a) => Number(a.hit_count))).toEqual([8, 8, 8, 8, 8, 8]);
    expect(await t.services.alertDispatcher.runOnce()).toBe(0);
  });
  it('sends a daily digest at its local time of the alerts a digest rule raised, once, and none of them one by one', async () => {
    const dest = (await createDest({ name: 'digest', webhook: { url: `http://127.0.0.1:${hookPort}/digest` } })).alertDestination.id;
    const bad = await gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { userErrors { field } } }`, {
      i: { name: 'x', destinations: [dest], digest: 'WEEKLY', digestTime: '08:00', digestTimeZone: 'Europe/Paris' },
    });
    expect(bad.alertRuleCreate.userErrors).toEqual([{ field: ['input', 'digestWeekday'] }]);
    const zone = await gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { userErrors { field } } }`, {
      i: { name: 'x', destinations: [dest], digest: 'DAILY', digestTime: '08:00', digestTimeZone: 'Mars/Olympus' },
    });
    expect(zone.alertRuleCreate.userErrors).toEqual([{ field: ['input', 'digestTimeZone'] }]);
    const rule = (
      await gql(
        `mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { digest digestTime digestTimeZone digestWeekday } userErrors { field } } }`,
        {
          i: { name: 'daily', destinations: [dest], digest: 'DAILY', digestTime: '08:00', digestTimeZone: 'Europe/Paris' },
        },
      )
    ).alertRuleCreate;
    expect(rule.alertRule).toEqual({ digest: 'DAILY', digestTime: '08:00', digestTimeZone: 'Europe/Paris', digestWeekday: null });
    const lines = Array.from(
      { length: 6 },
      (_, i) => `${1718000000 + i}.000000 IP 10.9.0.${1 + (i % 2)}.${40000 + i} > ${BAD[Math.floor(i / 2) % 2]}.443: Flags [S], seq 1, win 1, length 0`,
    );
    ok(await upload(t, `${lines.join('\n')}\n`, { deviceNickname: 'hq' }));
    await processQueued(t.services);
    const digestPosts = () => hook.got.filter((g) => g.body.includes('"kind":"digest"'));
    await t.services.alertDispatcher.runOnce();
    // Not due yet (the next 08:00 in Paris is after the rule was created), and its alerts are not sent one by one.
    expect(digestPosts()).toHaveLength(0);
    expect(hook.got.filter((g) => g.body.includes('"rule":{') && g.body.includes('"name":"daily"'))).toHaveLength(0);
    const later = Date.now() + 2 * 86_400_000;
    await t.services.alertDispatcher.runOnce(later);
    await t.services.alertDispatcher.runOnce(later);
    expect(digestPosts()).toHaveLength(1);
    const digest = JSON.parse(digestPosts()[0].body);
    expect(digest).toMatchObject({ kind: 'digest', rule: { name: 'daily' }, alertCount: 4, hitCount: 6, maxSeverity: 4 });
    expect(digest.top).toHaveLength(4);
    // The period ends at 08:00 Paris time (07:00 or 06:00 UTC).
    expect(new Date(digest.periodEnd).toLocaleTimeString('en-GB', { timeZone: 'Europe/Paris' })).toBe('08:00:00');
    expect(digestPosts()[0].headers['idempotency-key']).toBe(digest.idempotencyKey);
    const listed = (await gql(`{ alertDeliveries(first: 1) { edges { node { status alert { id } digest { alertCount hitCount periodEnd } } } } }`))
      .alertDeliveries.edges[0].node;
    expect(listed).toEqual({ status: 'DELIVERED', alert: null, digest: { alertCount: 4, hitCount: 6, periodEnd: digest.periodEnd } });
  });
  it('changes a rule with alertRuleUpdate: a paused rule raises nothing, and a foreign rule is not found', async () => {
    const dest = (await createDest({ name: 'upd', webhook: { url: `http://127.0.0.1:${hookPort}/upd` } })).alertDestination.id;
    const UPDATE = `mutation($i: AlertRuleUpdateInput!) { alertRuleUpdate(input: $i) { alertRule { id name enabled minSeverity throttleMinutes } userErrors { code field } } }`;
    const id = (
      await gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id } } }`, { i: { name: 'to pause', destinations: [dest] } })
    ).alertRuleCreate.alertRule.id;
    const paused = (await gql(UPDATE, { i: { id, name: 'paused', enabled: false, minSeverity: 2, throttleMinutes: 5, destinations: [dest] } })).alertRuleUpdate;
    expect(paused).toEqual({ alertRule: { id, name: 'paused', enabled: false, minSeverity: 2, throttleMinutes: 5 }, userErrors: [] });
    const foreign = ok(await t.gql(UPDATE, { i: { id, name: 'mine', destinations: [dest] } }, t.keys.otherAdmin)).alertRuleUpdate;
    expect(foreign).toEqual({ alertRule: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'id'] }] });
    const ruleId = Number(Buffer.from(id, 'base64url').toString('utf8').split(':').pop());
    ok(await upload(t, `1719000000.000000 IP 10.8.0.1.40000 > ${BAD[0]}.443: Flags [S], seq 1, win 1, length 0\n`, { deviceNickname: 'hq' }));
    await processQueued(t.services);
    expect(await t.dataSource.query(`SELECT id FROM alert WHERE rule_id = ?`, [ruleId])).toEqual([]);
    await gql(UPDATE, { i: { id, name: 'paused', enabled: true, destinations: [dest] } });
    ok(await upload(t, `1719000001.000000 IP 10.8.0.1.40001 > ${BAD[0]}.443: Flags [S], seq 1, win 1, length 0\n`, { deviceNickname: 'hq' }));
    await processQueued(t.services);
    expect(await t.dataSource.query(`SELECT id FROM alert WHERE rule_id = ?`, [ruleId])).toHaveLength(1);
  });
});
