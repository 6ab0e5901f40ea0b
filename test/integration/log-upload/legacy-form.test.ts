import zlib from 'node:zlib';
import crypto from 'node:crypto';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued } from '../../helpers/ingest';

const line = (n: number) => `17000${String(n).padStart(5, '0')}.000000 IP 10.0.0.1.1000 > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n`;
const md5 = (b: string | Buffer) => crypto.createHash('md5').update(b).digest('hex');

describe.each(drivers)('legacy form upload /logupload (%s)', (driver) => {
  let t: TestApp;
  let proxied: TestApp;
  let n = 0;

  /** What tsupload.sh sends: curl -F upfile=@FILE -F upfile_size=N -F md5_client=HEX. */
  const post = (
    app: TestApp,
    opts: { body?: string | Buffer; key?: string; fields?: Record<string, string>; path?: string; xff?: string; size?: string; md5?: string } = {},
  ) => {
    const body = opts.body ?? line(++n);
    const req = request(app.http.app).post(opts.path ?? '/logupload');
    if (opts.key) req.set('authorization', `Bearer ${opts.key}`);
    if (opts.xff) req.set('x-forwarded-for', opts.xff);
    req.attach('upfile', Buffer.from(body), 'tcpdump-ascii.1234');
    req.field('upfile_size', opts.size ?? String(Buffer.byteLength(body)));
    req.field('md5_client', opts.md5 ?? md5(body));
    for (const [k, v] of Object.entries(opts.fields ?? {})) req.field(k, v);
    return req;
  };
  const uploads = async (app: TestApp) => Number((await app.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n);

  const setup = async (app: TestApp) => {
    const p = ok(await app.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const mk = async (nickname: string, ip: string, byIp: boolean) =>
      ok(
        await app.gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } userErrors { message } } }`, {
          i: { nickname, ipType: 'STATIC', ipAddress: ip, policy: p, identifyByUploaderIp: byIp },
        }),
      ).deviceCreate.device.id as string;
    return { gw: await mk('gw', '93.184.216.34', true), other: await mk('other', '8.8.4.4', false) };
  };

  let devices: { gw: string; other: string };
  beforeAll(async () => {
    t = await createTestApp(driver);
    proxied = await createTestApp(driver, { TRUST_PROXY: 'loopback' });
    devices = await setup(t);
    await setup(proxied);
  });
  afterAll(async () => {
    await t.close();
    await proxied.close();
  });

  it("accepts tsupload.sh's fields with a key and a nickname, on both paths, and the upload is processed", async () => {
    const body = line(++n);
    const res = await post(t, { body, key: t.keys.uploader, fields: { nickname: 'gw' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'QUEUED', duplicate: false, device: 'gw', size: Buffer.byteLength(body), md5: md5(body) });
    const alias = await post(t, { key: t.keys.admin, fields: { device: devices.other }, path: '/cgi-bin/logupload.pl' });
    expect(alias.status).toBe(201);
    expect(alias.body.device).toBe('other');
    await processQueued(t.services);
    const row = ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status hits source } }`, { id: res.body.id })).logUpload;
    expect(row).toEqual({ status: 'COMPLETED', hits: 0, source: 'FORM' });
    const again = await post(t, { body, key: t.keys.uploader, fields: { nickname: 'gw' } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: res.body.id, duplicate: true, status: 'COMPLETED' });
  });

  it('takes the key from a token field, and a key bound to a device needs nothing else', async () => {
    const bound = ok(
      await t.gql(
        `mutation($d: ID!) { apiKeyCreate(input: { name: "gw script", role: UPLOADER, device: $d }) { secret apiKey { device { nickname } } userErrors { message } } }`,
        { d: devices.other },
      ),
    ).apiKeyCreate;
    expect(bound.apiKey.device.nickname).toBe('other');
    const res = await post(t, { fields: { token: bound.secret } });
    expect(res.status).toBe(201);
    expect(res.body.device).toBe('other');
    const adminBound = ok(
      await t.gql(`mutation($d: ID!) { apiKeyCreate(input: { name: "x", role: ADMIN, device: $d }) { userErrors { code field } } }`, { d: devices.other }),
    ).apiKeyCreate;
    expect(adminBound.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'device'] }]);
  });

  it("identifies an opted-in device by the uploader's address only through a trusted proxy", async () => {
    const before = await uploads(t);
    const spoofed = await post(t, { xff: '93.184.216.34' });
    expect(spoofed.status).toBe(401);
    expect(spoofed.body.error).toMatch(/no device is identified by the address/);
    expect(await uploads(t)).toBe(before);
    const viaProxy = await post(proxied, { xff: '93.184.216.34' });
    expect(viaProxy.status).toBe(201);
    expect(viaProxy.body.device).toBe('gw');
    // A device that did not opt in is not identified by its address.
    expect((await post(proxied, { xff: '8.8.4.4' })).status).toBe(401);
  });

  it.each([
    ['an unknown key', { key: `pcd_${'x'.repeat(43)}`, fields: { nickname: 'gw' } }, 401, 'Unknown or revoked API key.'],
    ['an unknown token field', { fields: { token: 'nope', nickname: 'gw' } }, 401, 'Unknown or revoked API key.'],
    ['an ANALYST key', { keyRole: 'analyst', fields: { nickname: 'gw' } }, 403, "Your API key's role may not upload."],
    ["another account's device", { keyRole: 'otherAdmin', fields: { nickname: 'gw' } }, 404, 'No device nicknamed "gw".'],
    ['no device named', { keyRole: 'uploader' }, 400, 'Name the device'],
    [
      'a binary pcap',
      { keyRole: 'uploader', fields: { nickname: 'gw' }, body: Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]) },
      415,
      'tcpdump -tt -n -r FILE > FILE.txt',
    ],
    ['a wrong md5', { keyRole: 'uploader', fields: { nickname: 'gw' }, md5: 'd41d8cd98f00b204e9800998ecf8427e' }, 422, 'does not match'],
    ['a wrong size', { keyRole: 'uploader', fields: { nickname: 'gw' }, size: '1' }, 422, 'The client said 1 bytes'],
    ['a non-numeric size', { keyRole: 'uploader', fields: { nickname: 'gw' }, size: 'abc' }, 400, "the form's upfile_size) must be a whole number"],
  ])('refuses %s with a specific status and stores nothing', async (_name, opts: any, status, message) => {
    const before = await uploads(t);
    const key = opts.key ?? (opts.keyRole ? t.keys[opts.keyRole as keyof TestApp['keys']] : undefined);
    const res = await post(t, { ...opts, key });
    expect(res.status).toBe(status);
    expect(res.body.error).toContain(message);
    expect(await uploads(t)).toBe(before);
  });

  it('refuses a body that is not multipart, a form without the file, and a file over the limit', async () => {
    const json = await request(t.http.app).post('/logupload').set('authorization', `Bearer ${t.keys.uploader}`).send({ upfile: 'x' });
    expect(json.status).toBe(415);
    const noFile = await request(t.http.app)
      .post('/logupload')
      .set('authorization', `Bearer ${t.keys.uploader}`)
      .field('nickname', 'gw')
      .field('upfile_size', '3');
    expect(noFile.status).toBe(400);
    expect(noFile.body.error).toMatch(/field "upfile"/);
    const small = await createTestApp(driver, { MAX_UPLOAD_BYTES: '2KB' });
    try {
      await setup(small);
      const big = await post(small, { key: small.keys.uploader, fields: { nickname: 'gw' }, body: line(1).repeat(100) });
      expect(big.status).toBe(413);
      expect(big.body.error).toMatch(/larger than the limit of 2000 bytes/);
      // A gzip over the limit in its own bytes (one line, padded by a 500 KB header comment): busboy cuts it at the
      // limit, and the cut is the limit's, not a broken gzip (it was answered 415 NOT_TEXT).
      const gz = zlib.gzipSync(line(2));
      const header = Buffer.from(gz.subarray(0, 10));
      header[3] |= 0x10;
      const padded = Buffer.concat([header, Buffer.alloc(500_000, 0x41), Buffer.from([0]), gz.subarray(10)]);
      const bigGzip = await post(small, { key: small.keys.uploader, fields: { nickname: 'gw' }, body: padded });
      expect(bigGzip.status).toBe(413);
      expect(bigGzip.body.error).toMatch(/larger than the limit of 2000 bytes/);
      expect(await uploads(small)).toBe(0);
    } finally {
      await small.close();
    }
  });
});
