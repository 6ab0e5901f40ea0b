import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';

/**
 * Alert destinations over TLS against real local servers with a private CA's certificate (test/fixtures/tls):
 * HTTPS webhooks, SMTP with STARTTLS and with TLS from the start, syslog over TLS (RFC 5425). The certificate is
 * verified by default (an untrusted one fails), and trusted through the destination's caCertificate.
 */
const FIXTURES = path.join(__dirname, '../../fixtures/tls');
const CA = fs.readFileSync(path.join(FIXTURES, 'ca.pem'), 'utf8');
const KEY = fs.readFileSync(path.join(FIXTURES, 'server.key'));
const CERT = fs.readFileSync(path.join(FIXTURES, 'server.pem'));

const CREATE = `mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id webhook { caCertificate } } userErrors { code field message } } }`;
const TEST = `mutation($id: ID!) { alertDestinationTest(input: { id: $id }) { delivered error userErrors { message } } }`;

const listen = (server: net.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

interface Mail {
  data: string;
  secure: boolean;
}

function smtp(secure: boolean, mails: Mail[]): SMTPServer {
  const server = new SMTPServer({
    secure,
    key: KEY,
    cert: CERT,
    authOptional: true,
    logger: false,
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString('utf8')));
      stream.on('end', () => {
        mails.push({ data, secure: session.secure });
        cb();
      });
    },
  });
  // A client that refuses the certificate drops the connection mid-handshake: expected here, not a failure.
  server.on('error', () => undefined);
  return server;
}

describe.each(drivers)('alert destinations over TLS (%s)', (driver) => {
  let t: TestApp;
  const posts: string[] = [];
  const web = https.createServer({ key: KEY, cert: CERT }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      posts.push(body);
      res.end('ok');
    });
  });
  const startTlsMails: Mail[] = [];
  const implicitMails: Mail[] = [];
  const startTls = smtp(false, startTlsMails);
  const implicit = smtp(true, implicitMails);
  const syslogFrames: string[] = [];
  const syslog = tls.createServer({ key: KEY, cert: CERT }, (s) => {
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString('utf8')));
    s.on('end', () => syslogFrames.push(data));
  });
  const ports: Record<string, number> = {};

  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const create = async (i: Record<string, unknown>) => {
    const r = (await q(CREATE, { i })).alertDestinationCreate;
    expect(r.userErrors).toEqual([]);
    return r.alertDestination.id as string;
  };
  const test = async (id: string) => (await q(TEST, { id })).alertDestinationTest as { delivered: boolean; error: string | null };
  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(cond()).toBe(true);
  };

  beforeAll(async () => {
    ports.web = await listen(web);
    ports.startTls = await listen(startTls.server as unknown as net.Server);
    ports.implicit = await listen(implicit.server as unknown as net.Server);
    ports.syslog = await listen(syslog);
    // An hour between tests of one destination: the rate-limit test's second test is refused however slow the machine.
    t = await createTestApp(driver, { ALERT_DESTINATION_ALLOW: '127.0.0.0/8', ALERT_TEST_INTERVAL_MS: '3600000' });
  });
  afterAll(async () => {
    await t.close();
    web.close();
    syslog.close();
    await new Promise<void>((resolve) => startTls.close(() => resolve()));
    await new Promise<void>((resolve) => implicit.close(() => resolve()));
  });

  it('posts to an HTTPS webhook whose certificate the destination trusts, and refuses one it does not', async () => {
    const untrusted = await create({ name: 'untrusted', webhook: { url: `https://127.0.0.1:${ports.web}/hook` } });
    const refused = await test(untrusted);
    expect(refused.delivered).toBe(false);
    expect(refused.error).toMatch(/certificate/i);
    expect(posts).toHaveLength(0);

    const trusted = await create({ name: 'trusted', webhook: { url: `https://localhost:${ports.web}/hook`, caCertificate: CA } });
    expect(await test(trusted)).toEqual({ delivered: true, error: null, userErrors: [] });
    expect(JSON.parse(posts[0])).toMatchObject({ test: true });
    const listed = (await q(`{ alertDestinations { name webhook { caCertificate } } }`)).alertDestinations;
    expect(listed.find((d: { name: string }) => d.name === 'trusted').webhook.caCertificate).toBe(CA.trim());
  });

  it('limits alertDestinationTest per destination, with a RATE_LIMITED userError that says when to retry', async () => {
    const TESTED = `mutation($id: ID!) { alertDestinationTest(input: { id: $id }) { delivered userErrors { code field message } } }`;
    const first = await create({ name: 'limited', webhook: { url: `https://localhost:${ports.web}/limited`, caCertificate: CA } });
    const second = await create({ name: 'not limited', webhook: { url: `https://localhost:${ports.web}/other`, caCertificate: CA } });
    const sent = posts.length;
    expect((await q(TESTED, { id: first })).alertDestinationTest).toEqual({ delivered: true, userErrors: [] });
    const again = (await q(TESTED, { id: first })).alertDestinationTest;
    expect(again.delivered).toBe(false);
    expect(again.userErrors).toEqual([{ code: 'RATE_LIMITED', field: ['input', 'id'], message: expect.stringMatching(/try again in \d+ s/) }]);
    expect(posts.length).toBe(sent + 1);
    // Per destination: another one is tested at once.
    expect((await q(TESTED, { id: second })).alertDestinationTest).toEqual({ delivered: true, userErrors: [] });
    const listed = (await q(`{ alertDestinations { name lastTestedAt } }`)).alertDestinations;
    expect(listed.find((d: { name: string }) => d.name === 'limited').lastTestedAt).not.toBeNull();
  });

  it('refuses a caCertificate that is not a PEM certificate', async () => {
    const r = (await q(CREATE, { i: { name: 'bad', webhook: { url: `https://127.0.0.1:${ports.web}/`, caCertificate: 'not a certificate' } } }))
      .alertDestinationCreate;
    expect(r.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'webhook', 'caCertificate'] })]);
  });

  it('sends e-mail with STARTTLS and with TLS from the start, verifying the certificate', async () => {
    const email = (port: number, secure: boolean, caCertificate?: string) => ({
      host: '127.0.0.1',
      port,
      secure,
      from: 'alerts@example.com',
      to: ['soc@example.com'],
      ...(caCertificate ? { caCertificate } : {}),
    });
    const untrusted = await create({ name: 'mail untrusted', email: email(ports.startTls, false) });
    expect((await test(untrusted)).delivered).toBe(false);
    expect(startTlsMails).toHaveLength(0);

    expect(await test(await create({ name: 'mail starttls', email: email(ports.startTls, false, CA) }))).toMatchObject({ delivered: true });
    expect(startTlsMails).toHaveLength(1);
    expect(startTlsMails[0].secure).toBe(true);

    expect((await test(await create({ name: 'mail tls untrusted', email: email(ports.implicit, true) }))).delivered).toBe(false);
    expect(await test(await create({ name: 'mail tls', email: email(ports.implicit, true, CA) }))).toMatchObject({ delivered: true });
    expect(implicitMails).toHaveLength(1);
    expect(implicitMails[0].secure).toBe(true);
    expect(implicitMails[0].data).toMatch(/^X-PCD-Idempotency-Key: test-/im);
  });

  it('sends syslog over TLS (RFC 5425) with octet counting, verifying the certificate', async () => {
    const syslogTo = (caCertificate?: string) => ({ host: '127.0.0.1', port: ports.syslog, transport: 'TLS', ...(caCertificate ? { caCertificate } : {}) });
    const untrusted = await test(await create({ name: 'syslog untrusted', syslog: syslogTo() }));
    expect(untrusted.delivered).toBe(false);
    expect(untrusted.error).toMatch(/certificate/i);
    expect(await test(await create({ name: 'syslog tls', syslog: syslogTo(CA) }))).toMatchObject({ delivered: true });
    await waitFor(() => syslogFrames.some((f) => f.length > 0));
    const frame = syslogFrames.find((f) => f.length > 0)!;
    const [, length, rest] = /^(\d+) ([\s\S]*)$/.exec(frame)!;
    expect(Buffer.byteLength(rest)).toBe(Number(length));
    expect(rest).toMatch(/^<\d+>1 \S+ \S+ pcap-defense /);
  });
});
