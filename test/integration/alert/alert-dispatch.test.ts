import http from 'node:http';
import { AddressInfo } from 'node:net';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { AlertDispatcher } from '../../../src/modules/alert/alert.dispatcher';
import { AddressGuard } from '../../../src/modules/alert/destinations/address-guard';
import { silentLogger } from '../../../src/app/logger';
import { AlertRule } from '../../../src/modules/alert/alert-rule.entity';
import { idOfType } from '../../../src/common/ids/global-id';

/**
 * The dispatcher's running loop against real receivers: a slow destination holds its own sends only (others, of
 * this account or another, are claimed and delivered meanwhile), every send ends at ALERT_TIMEOUT_MS, another
 * worker takes nothing that is being sent, and stop() waits for the sends in flight. Then what an alert needs to
 * be delivered: its rule may have been deleted since; a redirect fails it at once, saying why.
 *
 * Timings here are generous bounds, never measurements: the receivers would trickle for TRICKLE_MS, and the
 * checks are about order (delivered while the trickle's own send was still in flight) and recorded outcomes.
 */
const TIMEOUT_MS = 1_000;
/**
 * The send timeout of the first test's workers: the deliveries raised during the trickle must be delivered while
 * its send is still in flight, which a worker that waited for its batch would do only after the cut. Longer than
 * raising and delivering them ever takes, shorter than the trickle.
 */
const SLOW_TIMEOUT_MS = 6_000;
const TRICKLE_MS = 20_000;

interface Receiver {
  url: string;
  /** Requests received, by path. */
  got: string[];
  /** The last body received at each path. */
  bodies: Map<string, string>;
  /** Trickles the sender cut before they ended, and trickles that ran to their end. */
  cut: number;
  finished: number;
  /** Called when a request has been read (before it is answered). */
  onRequest: ((path: string) => void) | null;
  status: number;
  close(): void;
}

/** Answers `status` at once, except on /trickle: 200, then a byte every 100 ms for TRICKLE_MS. */
async function receiver(): Promise<Receiver> {
  const sockets = new Set<import('node:net').Socket>();
  const r: Receiver = {
    url: '',
    got: [],
    bodies: new Map(),
    cut: 0,
    finished: 0,
    onRequest: null,
    status: 200,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const path = req.url ?? '';
      r.got.push(path);
      r.bodies.set(path, body);
      r.onRequest?.(path);
      if (!path.startsWith('/trickle')) {
        res.statusCode = r.status;
        if (r.status >= 300 && r.status < 400) res.setHeader('location', 'http://169.254.169.254/');
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('.');
      const timer = setInterval(() => res.write('.'), 100);
      const end = setTimeout(() => {
        clearInterval(timer);
        r.finished++;
        res.end('.');
      }, TRICKLE_MS);
      res.on('close', () => {
        clearInterval(timer);
        clearTimeout(end);
        if (!res.writableEnded) r.cut++;
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  r.url = `http://127.0.0.1:${port}`;
  return r;
}

interface DeliveryRow {
  id: number;
  status: string;
  attempts: number;
  lastError: string | null;
  deliveredAt: number | null;
  leaseUntil: number | null;
  nextAttemptAt: number;
}

describe.each(drivers)('alert dispatch (%s)', (driver) => {
  let t: TestApp;
  let hook: Receiver;
  let n = 0;
  const policies = new Map<string, string>();

  const gql = async (query: string, v: Record<string, unknown> = {}, key?: string) => ok(await t.gql(query, v, key));

  /** Deliveries to the destination named `name`, oldest first. */
  const deliveries = async (name: string): Promise<DeliveryRow[]> =>
    (
      (await t.dataSource.query(
        `SELECT d.id, d.status, d.attempts, d.last_error, d.delivered_at, d.lease_until, d.next_attempt_at FROM alert_delivery d
           JOIN alert_destination s ON s.id = d.destination_id WHERE s.name = ? ORDER BY d.id`,
        [name],
      )) as Array<Record<string, string | number | null>>
    ).map((r) => ({
      id: Number(r.id),
      status: String(r.status),
      attempts: Number(r.attempts),
      lastError: r.last_error === null ? null : String(r.last_error),
      deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
      leaseUntil: r.lease_until === null ? null : Number(r.lease_until),
      nextAttemptAt: Number(r.next_attempt_at),
    }));
  const attempts = async (deliveryId: number) =>
    (
      (await t.dataSource.query(`SELECT ok, error, duration_ms FROM alert_attempt WHERE delivery_id = ? ORDER BY id`, [deliveryId])) as Array<
        Record<string, string | number | boolean | null>
      >
    ).map((a) => ({ ok: Boolean(Number(a.ok)), error: a.error, durationMs: Number(a.duration_ms) }));

  const waitFor = async (what: string, cond: () => Promise<boolean> | boolean, ms = 5_000) => {
    const until = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  /**
   * A destination and a rule of their own in the account of `key`, on a list of their own holding `bad`: an upload of
   * the device's flows to `bad` raises alerts for this rule only. Returns the rule's id.
   */
  const route = async (key: string, destination: string, path: string, bad: string, rule: Record<string, unknown> = {}) => {
    const dest = ok(
      await t.gql(
        `mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } userErrors { message } } }`,
        { i: { name: destination, webhook: { url: `${hook.url}${path}` } } },
        key,
      ),
    ).alertDestinationCreate.alertDestination.id;
    const list = (
      await gql(
        `mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`,
        { i: { name: `list ${++n}`, kind: 'BLOCK', severity: 4, category: 'MALWARE' } },
        key,
      )
    ).iocListCreate.iocList.id;
    await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: [{ value: bad }] } }, key);
    await gql(
      `mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`,
      { i: { policy: policies.get(key), iocLists: [list] } },
      key,
    );
    return (
      await gql(
        `mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id } userErrors { message } } }`,
        { i: { name: `rule ${destination}`, iocLists: [list], destinations: [dest], ...rule } },
        key,
      )
    ).alertRuleCreate.alertRule.id as string;
  };

  /** Uploads a flow from each of `hosts` internal hosts to `bad` (one alert each) and processes it. */
  const raise = async (key: string, bad: string, hosts = 1) => {
    const lines = Array.from(
      { length: hosts },
      (_, i) => `${1717000000 + ++n}.000000 IP 10.0.${n % 250}.${1 + i}.${40000 + i} > ${bad}.443: Flags [S], seq 1, win 1, length 0`,
    );
    ok(await upload(t, `${lines.join('\n')}\n`, { deviceNickname: 'hq' }, { key }));
    expect((await processQueued(t.services)).map((o) => o.status)).toEqual(['COMPLETED']);
  };

  beforeAll(async () => {
    hook = await receiver();
    t = await createTestApp(driver, {
      ALERT_DESTINATION_ALLOW: '127.0.0.0/8',
      ALERT_TIMEOUT_MS: String(TIMEOUT_MS),
      ALERT_POLL_MS: '50',
      // A failed attempt is retried half a minute or more later: no test here sees a retry it did not ask for.
      ALERT_RETRY_BASE_MS: '60000',
      ALERT_CONCURRENCY: '4',
      ALERT_DESTINATION_CONCURRENCY: '2',
    });
    for (const key of [t.keys.admin, t.keys.otherAdmin]) {
      const policy = (await gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`, {}, key)).policyCreate.policy.id;
      policies.set(key, policy);
      await gql(
        `mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`,
        { i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy } },
        key,
      );
    }
  });
  afterEach(async () => {
    await t.services.alertDispatcher.stop();
    // What a test left pending is not due in the next ones.
    await t.dataSource.query(`UPDATE alert_delivery SET status = 'FAILED', lease_until = NULL WHERE status = 'PENDING'`);
    hook.onRequest = null;
    hook.status = 200;
  });
  afterAll(async () => {
    await t.close();
    hook.close();
  });

  it("a webhook that trickles its answer holds up no other delivery, not even its own account's; it is cut at ALERT_TIMEOUT_MS", async () => {
    await route(t.keys.admin, 'trickle', '/trickle', '198.51.100.11');
    await route(t.keys.admin, 'fast', '/ok', '198.51.100.12');
    await route(t.keys.otherAdmin, 'other account', '/other', '198.51.100.13');
    const worker = (pollMs: number) =>
      new AlertDispatcher(
        t.dataSource,
        t.services.alerts,
        { guard: new AddressGuard(['127.0.0.0/8']), timeoutMs: SLOW_TIMEOUT_MS },
        { pollMs, leaseMs: t.config.alerts.leaseMs, retryBaseMs: 60_000, retryForMs: 86_400_000, concurrency: 4, destinationConcurrency: 2 },
        silentLogger(),
      );
    const first = worker(50);
    const second = worker(60_000);
    try {
      await raise(t.keys.admin, '198.51.100.11');
      first.start();
      await waitFor('the trickle request', () => hook.got.includes('/trickle'));
      // While the trickle is being sent: another worker finds its delivery leased, and takes nothing (nothing else
      // is due yet).
      const [sending] = await deliveries('trickle');
      expect(sending).toMatchObject({ status: 'PENDING', attempts: 0 });
      expect(sending.leaseUntil).not.toBeNull();
      expect(await second.runOnce()).toBe(0);

      // Raised while the trickle is in flight: the fast destination's alert and another account's.
      await raise(t.keys.admin, '198.51.100.12');
      await raise(t.keys.otherAdmin, '198.51.100.13');
      const then: { trickle?: DeliveryRow } = {};
      await waitFor(
        'both other deliveries',
        async () => {
          if ((await deliveries('fast'))[0]?.status !== 'DELIVERED' || (await deliveries('other account'))[0]?.status !== 'DELIVERED') return false;
          [then.trickle] = await deliveries('trickle');
          return true;
        },
        SLOW_TIMEOUT_MS + 10_000,
      );
      // Both were delivered while the trickle's own send was still in flight: not attempted yet, still leased.
      expect(then.trickle).toMatchObject({ status: 'PENDING', attempts: 0 });
      expect(then.trickle?.leaseUntil).not.toBeNull();

      await waitFor('the trickle attempt', async () => (await deliveries('trickle'))[0].attempts === 1, SLOW_TIMEOUT_MS + 10_000);
      const [trickle] = await deliveries('trickle');
      // A failed attempt, retried with the backoff; the receiver saw its connection cut, not finished.
      expect(trickle).toMatchObject({ status: 'PENDING', attempts: 1, leaseUntil: null, deliveredAt: null });
      expect(trickle.lastError).toMatch(new RegExp(`timed out.*${SLOW_TIMEOUT_MS} ms.*ALERT_TIMEOUT_MS`));
      expect(trickle.nextAttemptAt).toBeGreaterThan(Date.now() + 10_000);
      const [attempt] = await attempts(trickle.id);
      expect(attempt).toMatchObject({ ok: false, error: trickle.lastError });
      await waitFor('the cut to reach the receiver', () => hook.cut === 1);
      expect(hook.finished).toBe(0);
      expect(hook.got.filter((p) => p.startsWith('/trickle'))).toHaveLength(1);
    } finally {
      await first.stop();
    }
  }, 60_000);

  it('sends at most ALERT_DESTINATION_CONCURRENCY to one slow destination at once, leaving the other slots to the rest', async () => {
    await route(t.keys.admin, 'slow many', '/trickle-many', '198.51.100.21');
    await route(t.keys.admin, 'quick', '/quick', '198.51.100.22');
    await raise(t.keys.admin, '198.51.100.21', 6);
    await raise(t.keys.admin, '198.51.100.22');
    expect(await deliveries('slow many')).toHaveLength(6);
    // Sends in flight to it, as the database shows them: the deliveries leased (a send's outcome clears its lease in
    // the transaction that records it, before the slot takes the next). The receiver's own count of open requests
    // could see a new request before the close of the one cut.
    let mostLeased = 0;
    const slow = async () => {
      const rows = await deliveries('slow many');
      mostLeased = Math.max(mostLeased, rows.filter((d) => d.leaseUntil !== null).length);
      return rows;
    };
    t.services.alertDispatcher.start();
    await waitFor('the quick delivery', async () => (await slow()) && (await deliveries('quick'))[0].status === 'DELIVERED');
    // Every slow one is sent in time (two at a time, each cut at the deadline), each failing with the timeout.
    await waitFor('every slow delivery tried', async () => (await slow()).every((d) => d.attempts === 1), 6 * TIMEOUT_MS + 10_000);
    expect(mostLeased).toBe(2);
    expect(hook.finished).toBe(0);
    for (const d of await deliveries('slow many')) expect(d.lastError).toMatch(/timed out/);
  });

  it('stop() waits for the sends in flight, which end at the deadline, with their attempt recorded', async () => {
    await route(t.keys.admin, 'stopping', '/trickle-stop', '198.51.100.31');
    await raise(t.keys.admin, '198.51.100.31');
    t.services.alertDispatcher.start();
    await waitFor('the trickle request', () => hook.got.includes('/trickle-stop'));
    await t.services.alertDispatcher.stop();
    expect(hook.finished).toBe(0);
    const [d] = await deliveries('stopping');
    expect(d).toMatchObject({ status: 'PENDING', attempts: 1, leaseUntil: null });
    expect(d.lastError).toMatch(/timed out/);
    // Stopped: nothing more is claimed.
    const before = hook.got.length;
    await raise(t.keys.admin, '198.51.100.31', 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.got.length).toBe(before);
  });

  it("records a send's outcome only while its lease is still this worker's", async () => {
    await route(t.keys.admin, 'taken over', '/trickle-taken', '198.51.100.61');
    await raise(t.keys.admin, '198.51.100.61');
    let taken = false;
    hook.onRequest = (path) => {
      // As another worker would, had the lease run out: the delivery is leased anew, by someone else.
      if (path === '/trickle-taken')
        void t.dataSource.query(`UPDATE alert_delivery SET lease_until = lease_until + 1 WHERE lease_until IS NOT NULL`).then(() => (taken = true));
    };
    t.services.alertDispatcher.start();
    await waitFor('the lease taken over', () => taken);
    await t.services.alertDispatcher.stop();
    const [d] = await deliveries('taken over');
    // The send ended (cut at the deadline) without touching what the other worker holds.
    expect(d).toMatchObject({ status: 'PENDING', attempts: 0, lastError: null });
    expect(d.leaseUntil).not.toBeNull();
    expect(await attempts(d.id)).toEqual([]);
  });

  it("delivers the alerts raised before their rule was deleted (one by one, in a digest written or a last one), naming the rule's id and '(deleted rule)'", async () => {
    const rule = await route(t.keys.admin, 'gone', '/gone', '198.51.100.41');
    await raise(t.keys.admin, '198.51.100.41');
    hook.status = 500;
    await t.services.alertDispatcher.runOnce();
    expect(await deliveries('gone')).toEqual([expect.objectContaining({ status: 'PENDING', attempts: 1, lastError: 'HTTP 500' })]);

    const deleted = (await gql(`mutation($i: AlertRuleIdInput!) { alertRuleDelete(input: $i) { userErrors { message } } }`, { i: { id: rule } }))
      .alertRuleDelete;
    expect(deleted.userErrors).toEqual([]);
    hook.status = 200;
    const before = hook.got.length;
    // Past the retry's backoff.
    await t.services.alertDispatcher.runOnce(Date.now() + 120_000);
    expect(hook.got.slice(before)).toEqual(['/gone']);
    const [d] = await deliveries('gone');
    expect(d).toMatchObject({ status: 'DELIVERED', attempts: 2, lastError: null });
    // The alert stays in the history, its rule gone.
    const listed = (await gql(`{ alertDeliveries(first: 1, filter: { status: DELIVERED }) { edges { node { alert { hitCount rule { id } } } } } }`))
      .alertDeliveries.edges[0].node;
    expect(listed).toEqual({ alert: { hitCount: 1, rule: null } });
    const body = JSON.parse(hook.bodies.get('/gone')!);
    expect(body.rule).toEqual({ id: rule, name: '(deleted rule)' });
    expect(body).toMatchObject({ test: false, hitCount: 1, externalIp: '198.51.100.41' });

    // A digest written before its rule was deleted goes out the same way.
    const digestRule = await route(t.keys.admin, 'gone digest', '/gone-digest', '198.51.100.42', {
      digest: 'DAILY',
      digestTime: '08:00',
      digestTimeZone: 'UTC',
    });
    await raise(t.keys.admin, '198.51.100.42');
    hook.status = 500;
    await t.services.alertDispatcher.runOnce(Date.now() + 2 * 86_400_000);
    expect(await deliveries('gone digest')).toEqual([expect.objectContaining({ status: 'PENDING', attempts: 1 })]);
    await gql(`mutation($i: AlertRuleIdInput!) { alertRuleDelete(input: $i) { userErrors { message } } }`, { i: { id: digestRule } });
    hook.status = 200;
    await t.services.alertDispatcher.runOnce(Date.now() + 3 * 86_400_000);
    expect(await deliveries('gone digest')).toEqual([expect.objectContaining({ status: 'DELIVERED', attempts: 2 })]);
    const digest = JSON.parse(hook.bodies.get('/gone-digest')!);
    expect(digest).toMatchObject({ kind: 'digest', rule: { id: digestRule, name: '(deleted rule)' }, alertCount: 1, hitCount: 1 });

    // A digest rule deleted before its next digest: the alerts it raised since the last go out in a last digest.
    const early = await route(t.keys.admin, 'early digest', '/early-digest', '198.51.100.43', {
      digest: 'WEEKLY',
      digestTime: '08:00',
      digestTimeZone: 'UTC',
      digestWeekday: 1,
    });
    await raise(t.keys.admin, '198.51.100.43', 2);
    await t.services.alertDispatcher.runOnce();
    expect(await deliveries('early digest')).toEqual([]);
    await gql(`mutation($i: AlertRuleIdInput!) { alertRuleDelete(input: $i) { userErrors { message } } }`, { i: { id: early } });
    await t.services.alertDispatcher.runOnce();
    expect(await deliveries('early digest')).toEqual([expect.objectContaining({ status: 'DELIVERED', attempts: 1 })]);
    expect(JSON.parse(hook.bodies.get('/early-digest')!)).toMatchObject({
      kind: 'digest',
      rule: { id: early, name: '(deleted rule)' },
      alertCount: 2,
      hitCount: 2,
    });
  });

  it('a digest rule deleted while the dispatcher writes its due digest: its alerts go out once, in the last digest the delete wrote', async () => {
    const rule = await route(t.keys.admin, 'deleted meanwhile', '/deleted-meanwhile', '198.51.100.44', {
      digest: 'DAILY',
      digestTime: '08:00',
      digestTimeZone: 'UTC',
    });
    const ruleId = idOfType(rule, 'AlertRule')!;
    await raise(t.keys.admin, '198.51.100.44', 2);
    // The dispatcher reads the digest rules; the rule is deleted (writing its last digest, of the alerts since its
    // previous one); then the dispatcher comes to the digest it found due for the rule it read.
    const rules = t.dataSource.getRepository(AlertRule);
    const find = rules.find.bind(rules);
    let deletedBetween = false;
    const spy = jest.spyOn(rules, 'find').mockImplementationOnce(async (...args) => {
      const read = await find(...args);
      expect(read.map((r) => r.id)).toContain(ruleId);
      const deleted = (await gql(`mutation($i: AlertRuleIdInput!) { alertRuleDelete(input: $i) { userErrors { message } } }`, { i: { id: rule } }))
        .alertRuleDelete;
      expect(deleted.userErrors).toEqual([]);
      deletedBetween = true;
      return read;
    });
    try {
      expect(await t.services.alertDispatcher.writeDigests(Date.now() + 2 * 86_400_000)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(deletedBetween).toBe(true);
    const digests = (await t.dataSource.query(`SELECT alert_count FROM alert_digest WHERE rule_id = ?`, [ruleId])) as Array<{ alert_count: number | string }>;
    expect(digests.map((d) => Number(d.alert_count))).toEqual([2]);
    await t.services.alertDispatcher.runOnce();
    expect(await deliveries('deleted meanwhile')).toEqual([expect.objectContaining({ status: 'DELIVERED', attempts: 1 })]);
    expect(JSON.parse(hook.bodies.get('/deleted-meanwhile')!)).toMatchObject({ kind: 'digest', rule: { name: '(deleted rule)' }, alertCount: 2 });
  });

  it('fails a delivery answered with a redirect at once, saying redirects are not followed', async () => {
    await route(t.keys.admin, 'moved', '/moved', '198.51.100.51');
    await raise(t.keys.admin, '198.51.100.51');
    hook.status = 308;
    await t.services.alertDispatcher.runOnce();
    const [d] = await deliveries('moved');
    expect(d).toMatchObject({ status: 'FAILED', attempts: 1 });
    expect(d.lastError).toMatch(/^HTTP 308: redirects are not followed/);
  });
});
