import zlib from 'node:zlib';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { packetText, pcapBytes, UPLOAD_TO_GW } from '../helpers/capture';
import { drivers } from '../helpers/db';
import { listen, multipart, post, RawResponse } from '../helpers/raw-http';

// Small enough that a refused file is quick to send, large enough for a few packet lines.
const LIMIT = 200_000;
const text = packetText;
const pcap = pcapBytes;
const UPLOAD = UPLOAD_TO_GW;

/**
 * The same refusals through both entrances: the GraphQL mutation and the legacy form post (with and
 * without `Expect: 100-continue`, as curl sends large forms), over a real socket, nothing stored.
 */
describe.each(drivers)('refused uploads are answered, with the same code on both routes (%s)', (driver) => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    t = await createTestApp(driver, { MAX_UPLOAD_BYTES: String(LIMIT) });
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
        i: { nickname: 'gw', ipType: 'STATIC', ipAddress: '93.184.216.34', policy: p },
      }),
    );
    server = await listen(t);
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const stored = async () => Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n);

  const viaForm = (file: Buffer, expectContinue = false): Promise<RawResponse> => {
    const { body, contentType } = multipart([
      { name: 'nickname', body: 'gw' },
      { name: 'upfile', filename: 'capture.txt', body: file },
    ]);
    return post(server.port, '/cgi-bin/logupload.pl', body, { 'content-type': contentType, authorization: `Bearer ${t.keys.uploader}` }, { expectContinue });
  };
  const viaGraphql = (file: Buffer): Promise<RawResponse> => {
    const { body, contentType } = multipart([
      { name: 'operations', body: JSON.stringify({ query: UPLOAD, variables: { f: null } }) },
      { name: 'map', body: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', filename: 'capture.txt', body: file },
    ]);
    return post(server.port, '/graphql', body, { 'content-type': contentType, authorization: `Bearer ${t.keys.uploader}`, 'apollo-require-preflight': 'true' });
  };

  it.each([false, true])('answers plain text over MAX_UPLOAD_BYTES with 413 on the form post (Expect: 100-continue %s)', async (expectContinue) => {
    const res = await viaForm(text(LIMIT * 4), expectContinue);
    expect(res.status).toBe(413);
    expect(res.json()).toEqual({ code: 'PAYLOAD_TOO_LARGE', error: expect.stringContaining(`${LIMIT} bytes`) });
    const gql = await viaGraphql(text(LIMIT * 4));
    expect(gql.status).toBe(413);
    expect(gql.json().errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await stored()).toBe(0);
  });

  it('answers an oversize file before the fields that follow it (a nickname after upfile) with 413', async () => {
    const { body, contentType } = multipart([
      { name: 'upfile', filename: 'capture.txt', body: text(LIMIT * 4) },
      { name: 'nickname', body: 'gw' },
    ]);
    const res = await post(server.port, '/logupload', body, { 'content-type': contentType, authorization: `Bearer ${t.keys.uploader}` });
    expect(res.status).toBe(413);
    expect(res.json().code).toBe('PAYLOAD_TOO_LARGE');
    expect(await stored()).toBe(0);
  });

  it('refuses a binary capture larger than the limit with UNSUPPORTED_FORMAT too (what it is comes before how large)', async () => {
    const form = await viaForm(pcap(LIMIT * 2));
    expect(form.json().code).toBe('UNSUPPORTED_FORMAT');
    const gql = await viaGraphql(pcap(LIMIT * 2));
    expect(gql.json().data.logUploadCreate.userErrors[0].code).toBe('UNSUPPORTED_FORMAT');
    expect(await stored()).toBe(0);
  });

  it('refuses a binary capture larger than a socket read with UNSUPPORTED_FORMAT and the conversion command on both routes', async () => {
    // Over 64 KiB: more than one socket read, so the refusal comes while the file is still arriving.
    const capture = pcap(LIMIT / 2);
    const gql = await viaGraphql(capture);
    expect(gql.json().data.logUploadCreate.userErrors).toEqual([{ code: 'UNSUPPORTED_FORMAT', message: expect.stringContaining('tcpdump -tt -n -r') }]);
    const form = await viaForm(capture);
    expect(form.status).toBe(415);
    expect(form.json()).toEqual({ code: 'UNSUPPORTED_FORMAT', error: expect.stringContaining('tcpdump -tt -n -r') });
    expect(await stored()).toBe(0);
  });

  it.each([
    ['one socket read', Buffer.alloc(LIMIT * 40, packetText(1))],
    ['several socket reads', text(LIMIT * 20)],
  ])('refuses a gzip bomb (under the limit compressed, over it inflated; %s) with 413 on both routes', async (_reads, inflated) => {
    const bomb = zlib.gzipSync(inflated, { level: 9 });
    expect(bomb.length).toBeLessThan(LIMIT);
    const gql = await viaGraphql(bomb);
    expect(gql.json().errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(gql.status).toBe(413);
    const form = await viaForm(bomb);
    expect(form.status).toBe(413);
    expect(form.json().code).toBe('PAYLOAD_TOO_LARGE');
    expect(await stored()).toBe(0);
  });

  it('still accepts a file within the limit on both routes', async () => {
    const form = await viaForm(text(LIMIT / 2));
    expect(form.status).toBe(201);
    const gql = await viaGraphql(Buffer.concat([text(LIMIT / 2), packetText(1)]));
    expect(gql.json().data.logUploadCreate.userErrors).toEqual([]);
    expect(await stored()).toBe(2);
  });
});
