import crypto from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';

/**
 * alertDestinationUpdate (#19): a destination's name and settings change, checked and address-guarded as at
 * creation; a webhook's secret is rotated only when asked, shown once, and signs from then on; another account's
 * destination looks missing. alertDestinationTest is rate-limited per destination (ALERT_TEST_INTERVAL_MS).
 */
const FIELDS = `id name kind webhook { url format } syslog { host port transport format }`;
const CREATE = `mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { ${FIELDS} } secret userErrors { code field message } } }`;
const UPDATE = `mutation($i: AlertDestinationUpdateInput!) { alertDestinationUpdate(input: $i) { alertDestination { ${FIELDS} } secret userErrors { code field message } } }`;
const TEST = `mutation($id: ID!) { alertDestinationTest(input: { id: $id }) { delivered error userErrors { code field message } } }`;

describe.each(drivers)('alertDestinationUpdate and the test rate limit (%s)', (driver) => {
  let t: TestApp;
  const got: Array<{ path: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.end('ok');
    });
  });
  let port: number;
  const gql = async (query: string, v: Record<string, unknown>, key?: string) => ok(await t.gql(query, v, key));
  const signedWith = (secret: string, r: { headers: http.IncomingHttpHeaders; body: string }) =>
    r.headers['x-pcd-signature'] === `v1=${crypto.createHmac('sha256', secret).update(`${r.headers['x-pcd-timestamp']}.${r.body}`).digest('hex')}`;

  beforeAll(async () => {
    port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    t = await createTestApp(driver, { ALERT_DESTINATION_ALLOW: '127.0.0.0/8', ALERT_TEST_INTERVAL_MS: '60000' });
  });
  afterAll(async () => {
    await t.close();
    server.close();
  });

  it('renames and re-points a webhook, keeps its secret unless rotated, and a rotated secret signs from then on', async () => {
    const created = (await gql(CREATE, { i: { name: 'hook', webhook: { url: `http://127.0.0.1:${port}/a` } } })).alertDestinationCreate;
    const id = created.alertDestination.id;
    const moved = (await gql(UPDATE, { i: { id, name: 'renamed', webhook: { url: `http://127.0.0.1:${port}/b`, format: 'SLACK' } } })).alertDestinationUpdate;
    expect(moved).toEqual({
      alertDestination: { id, name: 'renamed', kind: 'WEBHOOK', webhook: { url: `http://127.0.0.1:${port}/b`, format: 'SLACK' }, syslog: null },
      secret: null,
      userErrors: [],
    });
    // Settings changed, secret kept (no rotation asked).
    expect((await t.services.alerts.destinations(t.accountId)).find((d) => d.name === 'renamed')?.secret).toBe(created.secret);
    const rotated = (await gql(UPDATE, { i: { id, rotateSecret: true } })).alertDestinationUpdate;
    expect(rotated.userErrors).toEqual([]);
    expect(rotated.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(rotated.secret).not.toBe(created.secret);
    expect(JSON.stringify(await gql(`{ alertDestinations { ${FIELDS} } }`, {}))).not.toContain(rotated.secret);
    // The test post goes to the new URL, signed with the new secret and no longer with the old one.
    expect((await gql(TEST, { id })).alertDestinationTest).toEqual({ delivered: true, error: null, userErrors: [] });
    expect(got.at(-1)!.path).toBe('/b');
    expect(signedWith(rotated.secret, got.at(-1)!)).toBe(true);
    expect(signedWith(created.secret, got.at(-1)!)).toBe(false);
    // Tested once a minute at most: the second test is refused with when to ask again, and sends nothing.
    const before = got.length;
    const again = (await gql(TEST, { id })).alertDestinationTest;
    expect(again.delivered).toBe(false);
    expect(again.userErrors).toEqual([
      {
        code: 'RATE_LIMITED',
        field: ['input', 'id'],
        message: expect.stringMatching(/^This destination was tested less than 60 s ago; test it again in \d+ s\.$/),
      },
    ]);
    expect(got.length).toBe(before);
    // Another destination has its own allowance.
    const hook2 = (await gql(CREATE, { i: { name: 'hook2', webhook: { url: `http://127.0.0.1:${port}/c` } } })).alertDestinationCreate.alertDestination.id;
    expect((await gql(TEST, { id: hook2 })).alertDestinationTest.delivered).toBe(true);
  });

  it('checks new settings as at creation: the address guard, the kind, and the fields', async () => {
    const id = (await gql(CREATE, { i: { name: 'sys', syslog: { host: '127.0.0.1', port: 514, transport: 'UDP' } } })).alertDestinationCreate.alertDestination
      .id;
    const update = (i: Record<string, unknown>) => gql(UPDATE, { i: { id, ...i } }).then((r) => r.alertDestinationUpdate);
    expect((await update({ syslog: { host: '169.254.169.254', port: 514, transport: 'UDP' } })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'syslog', 'host'], message: expect.stringContaining('169.254.169.254') },
    ]);
    expect((await update({ syslog: { host: '127.0.0.1', port: 70000, transport: 'TCP' } })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'syslog', 'port'], message: 'A port is 1-65535.' },
    ]);
    expect((await update({ webhook: { url: `http://127.0.0.1:${port}/x` } })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'webhook'], message: 'This destination is a syslog one; create another destination for another kind.' },
    ]);
    expect((await update({ rotateSecret: true })).userErrors).toEqual([
      { code: 'INVALID', field: ['input', 'rotateSecret'], message: 'Only a webhook has a signing secret.' },
    ]);
    expect((await update({ name: ' ' })).userErrors).toEqual([{ code: 'INVALID', field: ['input', 'name'], message: 'A name has 1-64 characters.' }]);
    // Nothing refused was kept.
    expect((await update({})).alertDestination).toEqual({
      id,
      name: 'sys',
      kind: 'SYSLOG',
      webhook: null,
      syslog: { host: '127.0.0.1', port: 514, transport: 'UDP', format: 'JSON' },
    });
    const ok2 = await update({ syslog: { host: '127.0.0.1', port: 6514, transport: 'TCP', format: 'CEF' } });
    expect(ok2.alertDestination.syslog).toEqual({ host: '127.0.0.1', port: 6514, transport: 'TCP', format: 'CEF' });
  });

  it("keeps other accounts' destinations missing, and is for admins only", async () => {
    const id = (await gql(CREATE, { i: { name: 'mine', webhook: { url: `http://127.0.0.1:${port}/m` } } })).alertDestinationCreate.alertDestination.id;
    const foreign = (await gql(UPDATE, { i: { id, name: 'theirs' } }, t.keys.otherAdmin)).alertDestinationUpdate;
    expect(foreign).toEqual({
      alertDestination: null,
      secret: null,
      userErrors: [{ code: 'NOT_FOUND', field: ['input', 'id'], message: 'No such alert destination.' }],
    });
    const analyst = await t.gql(UPDATE, { i: { id, name: 'x' } }, t.keys.analyst);
    expect(analyst.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
