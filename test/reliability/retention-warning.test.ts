import crypto from 'node:crypto';
import request from 'supertest';
import { drivers } from '../helpers/db';
import { createTestApp, gqlUpload, ok, TestApp } from '../helpers/app';
import { processQueued } from '../helpers/ingest';
import { IpType } from '../../src/modules/device/device.enums';
import { IocCategory, IocListKind } from '../../src/modules/ioc/ioc.enums';

const DAY = 24 * 3600_000;
/** One TCP connection to the listed 192.1.2.3 (a hit), from a port of its own per call. */
let port = 2000;
const packet = (atMs: number) => `${(atMs / 1000).toFixed(6)} IP 10.0.0.1.${++port} > 192.1.2.3.80: Flags [S], seq 1, win 1, length 0\n`;
/** Lines that are not packets, to push a capture's two ends apart past the sampled bytes. */
const filler = (bytes: number) => '# not a packet line, skipped\n'.repeat(Math.ceil(bytes / 29));
const md5 = (b: string) => crypto.createHash('md5').update(b).digest('hex');

const CREATE = `mutation($input: LogUploadCreateInput!) { logUploadCreate(input: $input) {
  duplicate logUpload { id } warnings { code message } userErrors { code message } } }`;
const ROW = `query($id: ID!) { logUpload(id: $id) { status hits hitsPurged warnings { code message } flowHits(first: 10) { totalCount } } }`;

describe.each(drivers)('captures older than RETENTION_DAYS (%s)', (driver) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp(driver, { RETENTION_DAYS: '35' });
    const s = t.services;
    const policy = await s.policies.create(t.accountId, { name: 'Sensors' });
    const list = await s.iocLists.create(t.accountId, { name: 'C2', kind: IocListKind.BLOCK, severity: 5, category: IocCategory.C2_BOTNET });
    if (!policy.ok || !list.ok) throw new Error('seed');
    expect((await s.iocs.add(t.accountId, list.value.id, [{ value: '192.1.2.0/24' }])).ok).toBe(true);
    expect((await s.policies.attachIocLists(t.accountId, policy.value.id, [list.value.id])).ok).toBe(true);
    expect((await s.devices.create(t.accountId, { nickname: 'gw', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id })).ok).toBe(
      true,
    );
  });
  afterAll(() => t.close());

  const create = async (text: string) =>
    ok(await gqlUpload(t, CREATE, { input: { deviceNickname: 'gw', file: null } }, 'input.file', Buffer.from(text))).logUploadCreate;
  const rowOf = async (id: string) => ok(await t.gql(ROW, { id })).logUpload;

  it('warns at acceptance, counts at processing, and after the purge the upload claims only the hits still stored', async () => {
    const now = Date.now();
    const text = packet(now - 60 * DAY) + packet(now - 59 * DAY);
    const res = await create(text);
    expect(res.userErrors).toEqual([]);
    expect(res.warnings).toEqual([{ code: 'BEYOND_RETENTION', message: expect.stringMatching(/older than the retention period .*RETENTION_DAYS=35/) }]);
    await processQueued(t.services);
    const id = res.logUpload.id;
    const processed = await rowOf(id);
    expect(processed).toMatchObject({ status: 'COMPLETED', hits: 2, hitsPurged: 0, flowHits: { totalCount: 2 } });
    expect(processed.warnings).toEqual([
      { code: 'BEYOND_RETENTION', message: expect.stringMatching(/^2 of 2 connections \(2 of 2 flow hits\) were captured before .*RETENTION_DAYS=35/) },
    ]);

    expect((await t.services.retention.purge()).flowHits).toBe(2);
    expect(await rowOf(id)).toMatchObject({ status: 'COMPLETED', hits: 0, hitsPurged: 2, flowHits: { totalCount: 0 } });
    // The same file again is a duplicate, and is warned about as well.
    const again = await create(text);
    expect(again).toMatchObject({ duplicate: true, logUpload: { id }, warnings: [{ code: 'BEYOND_RETENTION' }] });
  });

  it('a capture that straddles the cutoff: the acknowledgment says it starts before it; the upload keeps the recent hit', async () => {
    const now = Date.now();
    const res = await create(packet(now - 40 * DAY) + filler(10_000) + packet(now - 1 * DAY));
    expect(res.warnings).toEqual([{ code: 'BEYOND_RETENTION', message: expect.stringMatching(/starts before the retention period/) }]);
    await processQueued(t.services);
    const id = res.logUpload.id;
    expect((await rowOf(id)).warnings[0].message).toMatch(/^1 of 2 connections \(1 of 2 flow hits\)/);
    await t.services.retention.purge();
    expect(await rowOf(id)).toMatchObject({ hits: 1, hitsPurged: 1, flowHits: { totalCount: 1 } });
  });

  it('a recent capture gets no warning; an old one in the middle of a recent file is found by the worker', async () => {
    const now = Date.now();
    const recent = await create(packet(now - 2 * DAY));
    expect(recent.warnings).toEqual([]);
    // The acknowledgment reads the file's ends only: the old packet in between is news to the worker.
    const mixed = await create(packet(now - 3 * DAY) + filler(10_000) + packet(now - 50 * DAY) + filler(10_000) + packet(now - 3 * DAY));
    expect(mixed.warnings).toEqual([]);
    await processQueued(t.services);
    expect((await rowOf(recent.logUpload.id)).warnings).toEqual([]);
    expect((await rowOf(mixed.logUpload.id)).warnings[0]).toMatchObject({ code: 'BEYOND_RETENTION', message: expect.stringMatching(/^1 of 3 connections/) });
  });

  it("the form post's JSON answer carries the same warning", async () => {
    const body = packet(Date.now() - 90 * DAY);
    const res = await request(t.http.app)
      .post('/cgi-bin/logupload.pl')
      .set('authorization', `Bearer ${t.keys.uploader}`)
      .field('nickname', 'gw')
      .field('upfile_size', String(body.length))
      .field('md5_client', md5(body))
      .attach('upfile', Buffer.from(body), 'tcpdump-ascii.1');
    expect(res.status).toBe(201);
    expect(res.body.warnings).toEqual([{ code: 'BEYOND_RETENTION', message: expect.stringMatching(/older than the retention period/) }]);
    const recent = packet(Date.now());
    const fresh = await request(t.http.app)
      .post('/logupload')
      .set('authorization', `Bearer ${t.keys.uploader}`)
      .field('nickname', 'gw')
      .attach('upfile', Buffer.from(recent), 'tcpdump-ascii.2');
    expect(fresh.status).toBe(201);
    expect(fresh.body.warnings).toEqual([]);
  });
});
