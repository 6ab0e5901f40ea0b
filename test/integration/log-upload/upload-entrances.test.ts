import crypto from 'node:crypto';
import zlib from 'node:zlib';
import request from 'supertest';
import { createTestApp, gqlUpload, ok, TestApp } from '../../helpers/app';
import { packetText, pcapBytes } from '../../helpers/capture';
import { drivers } from '../../helpers/db';
import { processQueued, uploadRow } from '../../helpers/ingest';
import { toGlobalId } from '../../../src/common/ids/global-id';

const LIMIT = 200_000;
const UPLOAD = `mutation($i: LogUploadCreateInput!) { logUploadCreate(input: $i) { duplicate logUpload { id } userErrors { code field message } } }`;

type KeyName = 'uploader' | 'analyst' | 'otherAdmin';
interface Attempt {
  body: Buffer;
  key?: KeyName | null;
  nickname?: string;
  md5?: string;
  size?: number;
}
/** What a route answered, in one shape: its HTTP status, the refusal's code and message (null when accepted). */
interface Answer {
  status: number;
  code: string | null;
  message: string | null;
}

/**
 * One table of refusals through both entrances (LogUploadService.submit behind both): the form post answers
 * with an HTTP status and JSON, the GraphQL mutation with userErrors (HTTP 200) or, for a request it fails,
 * an error's extensions.code and the HTTP status. Code and message are the same; nothing is stored.
 */
describe.each(drivers)('the form post and logUploadCreate refuse alike (%s)', (driver) => {
  let t: TestApp;
  let n = 0;
  const stored = async () => Number((await t.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n);
  const keyOf = (a: Attempt) => (a.key === null ? null : t.keys[a.key ?? 'uploader']);

  const viaForm = async (a: Attempt): Promise<Answer> => {
    const req = request(t.http.app).post('/logupload');
    const key = keyOf(a);
    if (key) req.set('authorization', `Bearer ${key}`);
    req.field('nickname', a.nickname ?? 'gw');
    if (a.md5 !== undefined) req.field('md5_client', a.md5);
    if (a.size !== undefined) req.field('upfile_size', String(a.size));
    const res = await req.attach('upfile', a.body, 'capture.txt');
    return res.status < 300 ? { status: res.status, code: null, message: null } : { status: res.status, code: res.body.code, message: res.body.error };
  };
  const viaGraphql = async (a: Attempt): Promise<Answer> => {
    const input: Record<string, unknown> = { deviceNickname: a.nickname ?? 'gw', file: null };
    if (a.md5 !== undefined) input.md5 = a.md5;
    if (a.size !== undefined) input.size = a.size;
    const res = await gqlUpload(t, UPLOAD, { i: input }, 'i.file', a.body, { key: keyOf(a) });
    if (res.errors?.length) return { status: res.status, code: res.errors[0].extensions?.code ?? null, message: res.errors[0].message };
    const [e] = res.data.logUploadCreate.userErrors;
    return { status: res.status, code: e?.code ?? null, message: e?.message ?? null };
  };

  beforeAll(async () => {
    t = await createTestApp(driver, { MAX_UPLOAD_BYTES: String(LIMIT) });
    const p = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "gw", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p,
      }),
    );
  });
  afterAll(() => t.close());

  const line = () =>
    packetText(1)
      .toString()
      .replace(/^\d+/, String(1_700_000_000 + ++n));
  const text = () => Buffer.from(line());

  // [refusal, attempt, code, form status, GraphQL status, message]
  const TABLE: Array<[string, () => Attempt, string, number, number, RegExp]> = [
    ['an unknown device', () => ({ body: text(), nickname: 'nobody' }), 'NOT_FOUND', 404, 200, /^No device nicknamed "nobody"\.$/],
    ["another account's device", () => ({ body: text(), key: 'otherAdmin' }), 'NOT_FOUND', 404, 200, /^No device nicknamed "gw"\.$/],
    ['a wrong md5', () => ({ body: text(), md5: 'd41d8cd98f00b204e9800998ecf8427e' }), 'CHECKSUM_MISMATCH', 422, 200, /does not match the MD5 of what arrived/],
    ['a malformed md5', () => ({ body: text(), md5: 'xyz' }), 'INVALID', 400, 200, /^md5 must be 32 hexadecimal digits\.$/],
    ['a wrong size', () => ({ body: text(), size: 1 }), 'SIZE_MISMATCH', 422, 200, /^The client said 1 bytes but \d+ arrived/],
    ['a binary pcap', () => ({ body: pcapBytes(5000) }), 'UNSUPPORTED_FORMAT', 415, 200, /tcpdump -tt -n -r/],
    ['binary data', () => ({ body: crypto.randomBytes(5000).fill(0, 0, 16) }), 'NOT_TEXT', 415, 200, /^This is not text/],
    [
      'a gzip bomb',
      () => ({ body: zlib.gzipSync(packetText(LIMIT * 20), { level: 9 }) }),
      'PAYLOAD_TOO_LARGE',
      413,
      413,
      new RegExp(`larger than the limit of ${LIMIT} bytes; nothing was stored`),
    ],
    [
      'an oversize file',
      () => ({ body: packetText(LIMIT * 2) }),
      'PAYLOAD_TOO_LARGE',
      413,
      413,
      new RegExp(`larger than the limit of ${LIMIT} bytes; nothing was stored`),
    ],
    ['an empty file', () => ({ body: Buffer.alloc(0) }), 'EMPTY', 400, 200, /^The file is empty/],
    // GraphQL refuses any request without a key before its resolvers; the form's message starts with the same words.
    [
      'a missing key',
      () => ({ body: text(), key: null }),
      'UNAUTHENTICATED',
      401,
      401,
      /^A valid API key is required: send "Authorization: Bearer <key>"\. A form post may send it as a "token" field/,
    ],
    ['an ANALYST key', () => ({ body: text(), key: 'analyst' }), 'FORBIDDEN', 403, 403, /^Your API key's role may not upload\.$/],
  ];

  it.each(TABLE)('%s: the same code and message on both routes, nothing stored', async (_name, attempt, code, formStatus, graphqlStatus, message) => {
    const before = await stored();
    const a = attempt();
    const form = await viaForm(a);
    const gql = await viaGraphql(a);
    expect(form).toEqual({ status: formStatus, code, message: expect.stringMatching(message) });
    expect(gql).toEqual({ status: graphqlStatus, code, message: code === 'UNAUTHENTICATED' ? expect.any(String) : form.message });
    expect(form.message!.startsWith(gql.message!)).toBe(true);
    expect(await stored()).toBe(before);
  });

  it("sends an upload that names no device to the key's bound device, on both routes", async () => {
    const gw = ok(await t.gql(`{ devices(first: 1) { edges { node { id } } } }`)).devices.edges[0].node.id;
    const secret = ok(await t.gql(`mutation($d: ID!) { apiKeyCreate(input: { name: "bound", role: UPLOADER, device: $d }) { secret } }`, { d: gw }))
      .apiKeyCreate.secret;
    const form = await request(t.http.app).post('/logupload').set('authorization', `Bearer ${secret}`).attach('upfile', text(), 'c.txt');
    expect([form.status, form.body.device]).toEqual([201, 'gw']);
    const gql = await gqlUpload(
      t,
      `mutation($i: LogUploadCreateInput!) { logUploadCreate(input: $i) { logUpload { device { nickname } } userErrors { code } } }`,
      { i: { file: null } },
      'i.file',
      text(),
      { key: secret },
    );
    expect(ok(gql).logUploadCreate).toEqual({ logUpload: { device: { nickname: 'gw' } }, userErrors: [] });
  });

  it('accepts a file of malformed lines only on both routes, and processing answers the same for both', async () => {
    const junk = (k: number) => Buffer.from(`not a packet line ${k}\nneither is this one\n`);
    const form = await viaForm({ body: junk(1) });
    const gql = await viaGraphql({ body: junk(2) });
    expect([form, gql]).toEqual([
      { status: 201, code: null, message: null },
      { status: 200, code: null, message: null },
    ]);
    await processQueued(t.services);
    const ids = (await t.dataSource.query(`SELECT id, source FROM log_upload ORDER BY id DESC LIMIT 2`)) as Array<{ id: number; source: string }>;
    const rows = await Promise.all(ids.map((r) => uploadRow(t, toGlobalId('LogUpload', Number(r.id)))));
    const shape = (r: any) => ({ status: r.status, error: r.error, packetLines: r.packetLines, skippedLines: r.skippedLines, hits: r.hits });
    expect(shape(rows[0])).toEqual(shape(rows[1]));
    expect(shape(rows[0])).toMatchObject({ packetLines: 0, skippedLines: 2, hits: 0 });
  });
});
