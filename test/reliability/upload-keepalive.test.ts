import http from 'node:http';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { packetText, pcapBytes, UPLOAD_TO_GW } from '../helpers/capture';
import { drivers } from '../helpers/db';
import { get, listen, multipart, post } from '../helpers/raw-http';

// Refused bodies of a few MB: more than the socket buffers and the parser hold, as real captures are.
const LIMIT = 3_000_000;
const SMALL = 2_000_000;
const text = packetText;
const pcap = pcapBytes;
const UPLOAD = UPLOAD_TO_GW;

/**
 * A refused upload is answered before its body is read. The client's next request on the same
 * keep-alive socket must be answered too: the rest of the body is dropped or the connection closed, never
 * left in the socket (then the next request waited for the keep-alive timeout and was reset).
 */
describe.each(drivers)('a refused multipart upload leaves its connection usable (%s)', (driver) => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let agent: http.Agent;

  beforeAll(async () => {
    t = await createTestApp(driver, { MAX_UPLOAD_BYTES: String(LIMIT), MAX_FEED_BYTES: String(LIMIT) });
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'gw', ipType: 'STATIC', ipAddress: '93.184.216.34', policy: p },
      }),
    );
    server = await listen(t);
  });
  beforeEach(() => {
    // One socket: the second request goes where the first went (or on a new one if the server closed it).
    agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterEach(() => agent.destroy());
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const form = (file: Buffer, key: string, withholdLast?: number) => {
    const { body, contentType } = multipart([
      { name: 'nickname', body: 'gw' },
      { name: 'upfile', filename: 'capture.txt', body: file },
    ]);
    return post(server.port, '/logupload', body, { 'content-type': contentType, authorization: `Bearer ${key}` }, { agent, withholdLast });
  };
  const graphql = (file: Buffer, key: string, withholdLast?: number) => {
    const { body, contentType } = multipart([
      { name: 'operations', body: JSON.stringify({ query: UPLOAD, variables: { f: null } }) },
      { name: 'map', body: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', filename: 'capture.txt', body: file },
    ]);
    return post(
      server.port,
      '/graphql',
      body,
      { 'content-type': contentType, authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true' },
      { agent, withholdLast },
    );
  };
  const malformed = (path: string) => {
    const body = Buffer.concat([Buffer.from('--b\r\nno colon here\r\n\r\n'), text(SMALL), Buffer.from('\r\n--b--\r\n')]);
    return post(
      server.port,
      path,
      body,
      { 'content-type': 'multipart/form-data; boundary=b', authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true' },
      { agent },
    );
  };

  const cases: Array<[string, () => ReturnType<typeof post>, number]> = [
    ['form post, unknown key (401)', () => form(text(SMALL), 'pcd_unknown'), 401],
    ['form post, oversize (413)', () => form(text(LIMIT + 500_000), t.keys.uploader), 413],
    ['form post, binary capture (415)', () => form(pcap(SMALL), t.keys.uploader), 415],
    ['form post, malformed part header (400)', () => malformed('/logupload'), 400],
    ['GraphQL, unknown key (401)', () => graphql(text(SMALL), 'pcd_unknown'), 401],
    ['GraphQL, oversize (413)', () => graphql(text(LIMIT + 500_000), t.keys.uploader), 413],
    ['GraphQL, binary capture (UNSUPPORTED_FORMAT)', () => graphql(pcap(SMALL), t.keys.uploader), 200],
    ['GraphQL, malformed part header (400)', () => malformed('/graphql'), 400],
  ];

  // Past the drain bound (the largest file the route takes, MAX_UPLOAD_BYTES or MAX_FEED_BYTES, plus MAX_REQUEST_BYTES)
  // the answer says the connection closes. The body's last MB is never sent, so the answer always finds the
  // request incomplete (a body that had all arrived by then leaves nothing in the socket, and keeps it open).
  it.each([
    ['form post', () => form(text(LIMIT + 2_000_000), t.keys.uploader, 1_000_000)],
    ['GraphQL', () => graphql(text(LIMIT + 2_000_000), t.keys.uploader, 1_000_000)],
  ])('%s far over the limit: 413 with Connection: close, then a request on a new connection', async (_name, refused) => {
    const res = await refused();
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect((await get(server.port, '/healthz', { agent })).status).toBe(200);
  });

  it.each(cases)('%s, then a request on the same connection', async (_name, refused, status) => {
    expect((await refused()).status).toBe(status);
    const next = await get(server.port, '/healthz', { agent });
    expect(next.status).toBe(200);
  });
});
