import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { hitsOf, processQueued, upload, uploadRow } from '../../helpers/ingest';

const SEED = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\n';
const FIXTURE = path.resolve(__dirname, '../../fixtures/tcpdump');
const md5 = (b: Buffer | string) => crypto.createHash('md5').update(b).digest('hex');

describe.each(drivers)('log uploads (%s)', (driver) => {
  let t: TestApp;
  let policyId: string;
  let deviceId: string;

  const gql = async (q: string, v: Record<string, unknown> = {}, key?: string) => ok(await t.gql(q, v, key));
  const count = async (table: string) => Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);

  beforeAll(async () => {
    t = await createTestApp(driver);
    policyId = (await gql(`mutation { policyCreate(input: { name: "Sensors" }) { policy { id } } }`)).policyCreate.policy.id;
    const mkList = async (name: string, kind: string, severity: number, category: string, values: string[]) => {
      const list = (await gql(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, { i: { name, kind, severity, category } }))
        .iocListCreate.iocList.id;
      const r = (
        await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added userErrors { message } } }`, {
          i: { list, entries: values.map((value) => ({ value })) },
        })
      ).iocAdd;
      expect(r.userErrors).toEqual([]);
      await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, {
        i: { policy: policyId, iocLists: [list] },
      });
      return list;
    };
    // Bogons include RFC 1918 and multicast: LAN chatter must never match them.
    await mkList('Bogons', 'BLOCK', 2, 'BOGON', ['10.0.0.0/8', '192.168.0.0/16', '224.0.0.0/8', '127.0.0.0/8']);
    await mkList('Scanners', 'BLOCK', 2, 'SCANNER', ['146.190.240.0/24']);
    await mkList('C2', 'BLOCK', 5, 'C2_BOTNET', ['192.1.2.0/24', '2001:db8:bad::/48', '203.0.113.66']);
    await mkList('Partners', 'ALLOW', 0, 'ALLOWLIST', ['203.0.113.66']);
    deviceId = (
      await gql(
        `mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p, internalNetworks: ["100.64.0.0/16"] }) { device { id } } }`,
        {
          p: policyId,
        },
      )
    ).deviceCreate.device.id;
  });
  afterAll(() => t.close());

  it("stores the product page's sample line, acknowledges it QUEUED, and finds its hit", async () => {
    const r = ok(await upload(t, SEED, { deviceNickname: 'EDGE', md5: md5(SEED), size: SEED.length }, { filename: 'sample.txt' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    expect(r.duplicate).toBe(false);
    expect(r.logUpload).toMatchObject({
      status: 'QUEUED',
      fileName: 'sample.txt',
      size: SEED.length,
      textBytes: SEED.length,
      md5: md5(SEED),
      source: 'GRAPHQL',
    });
    const [outcome] = await processQueued(t.services);
    expect(outcome.status).toBe('COMPLETED');
    const row = await uploadRow(t, r.logUpload.id);
    expect(row).toMatchObject({
      status: 'COMPLETED',
      lineCount: 1,
      packetLines: 1,
      skippedLines: 0,
      connections: 1,
      outboundConnections: 1,
      inboundConnections: 0,
      hits: 1,
      progressPercent: 100,
      attempts: 1,
      firstCaptureAt: '2018-02-06T15:45:55.781Z',
    });
    expect(await hitsOf(t, r.logUpload.id)).toEqual([
      {
        direction: 'OUTBOUND',
        protocol: 'TCP',
        internalIp: '10.0.2.2',
        internalPort: 53231,
        externalIp: '192.1.2.3',
        externalPort: 80,
        destinationPort: 80,
        matchedSide: 'RESPONDER',
        matchedIp: '192.1.2.3',
        matchedCidr: '192.1.2.0/24',
        severity: 5,
        category: 'C2_BOTNET',
        packets: 1,
        bytes: 0,
        packetsSent: 1,
        packetsReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        firstSeenAt: '2018-02-06T15:45:55.781Z',
        lastSeenAt: '2018-02-06T15:45:55.781Z',
        ioc: { cidr: '192.1.2.0/24' },
        iocList: { name: 'C2' },
        device: { nickname: 'edge' },
        upload: { id: r.logUpload.id },
      },
    ]);
  });

  it('answers the same file from the same device as a duplicate, never processed twice', async () => {
    const again = ok(await upload(t, SEED, { device: deviceId })).logUploadCreate;
    expect(again.duplicate).toBe(true);
    expect(again.logUpload.status).toBe('COMPLETED');
    expect(await processQueued(t.services)).toEqual([]);
    expect(Number((await t.dataSource.query(`SELECT COUNT(*) AS n FROM log_upload WHERE md5 = ?`, [md5(SEED)]))[0].n)).toBe(1);
  });

  it('matches a real capture against independently computed expectations (bogons stay quiet on LAN chatter)', async () => {
    const name = 'arcnet-rfc1051-arp-icmp-http.pcap';
    const text = fs.readFileSync(path.join(FIXTURE, 'ascii', `${name}.txt`));
    const rows = fs
      .readFileSync(path.join(FIXTURE, 'expected', `${name}.tsv`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    // Reference rows folded by unordered (address, port) pair: the connections of the file.
    const key = (r: string[]) => [`${r[1]}:${r[2]}`, `${r[3]}:${r[4]}`].sort().join('|');
    const connections = new Set(rows.map(key));
    const flow = rows.filter((r) => key(r) === ['10.80.131.1:1026', '146.190.240.163:80'].sort().join('|'));
    const sent = flow.filter((r) => r[1] === '10.80.131.1');
    const lengths = text
      .toString()
      .split('\n')
      .filter((l) => l.includes('146.190.240.163.80'))
      .map((l) => Number(/.*\blength (\d+)/.exec(l)?.[1] ?? 0));
    const r = ok(await upload(t, text, { deviceIp: '93.184.216.34' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    await processQueued(t.services);
    const row = await uploadRow(t, r.logUpload.id);
    const lines = text.toString().trimEnd().split('\n').length;
    expect(row).toMatchObject({
      status: 'COMPLETED',
      lineCount: lines,
      packetLines: rows.length,
      skippedLines: lines - rows.length,
      connections: connections.size,
      hits: 1,
    });
    expect(row.skippedByReason).toContainEqual({ reason: 'NOT_IP', count: 4 });
    const [hit] = await hitsOf(t, r.logUpload.id);
    expect(hit).toMatchObject({
      direction: 'OUTBOUND',
      protocol: 'TCP',
      internalIp: '10.80.131.1',
      internalPort: 1026,
      externalIp: '146.190.240.163',
      externalPort: 80,
      matchedCidr: '146.190.240.0/24',
      iocList: { name: 'Scanners' },
      packets: flow.length,
      packetsSent: sent.length,
      packetsReceived: flow.length - sent.length,
      bytes: lengths.reduce((a, b) => a + b, 0),
      firstSeenAt: new Date(Math.floor(Number(flow[0][0]) * 1000)).toISOString(),
      lastSeenAt: new Date(Math.floor(Number(flow[flow.length - 1][0]) * 1000)).toISOString(),
    });
  });

  it('applies direction, internal networks, IPv6, ICMP, ALLOW and local scope as specified', async () => {
    const lines = [
      // Inbound SYN from a C2 address to an internal host (device network 100.64.0.0/16).
      '1700000000.000001 IP 192.1.2.9.4444 > 100.64.3.3.22: Flags [S], seq 1, win 1024, length 0',
      '1700000000.000002 IP 100.64.3.3.22 > 192.1.2.9.4444: Flags [S.], seq 9, ack 2, win 1024, length 0',
      // Reply seen first, SYN later: still outbound from the internal host.
      '1700000001.000000 IP 192.1.2.10.443 > 10.9.9.9.50000: Flags [.], ack 1, win 1024, length 100',
      '1700000001.500000 IP 10.9.9.9.50000 > 192.1.2.10.443: Flags [S], seq 1, win 1024, length 0',
      // ICMP without ports, to a C2 address.
      '1700000002.000000 IP 10.9.9.9 > 192.1.2.11: ICMP echo request, id 1, seq 1, length 64',
      // IPv6 outbound from a unique-local address to a C2 network.
      '1700000003.000000 IP6 fd00::5.5353 > 2001:db8:bad::7.53: UDP, length 40',
      // Allow-listed address that is also on C2: no hit.
      '1700000004.000000 IP 10.9.9.9.40000 > 203.0.113.66.443: Flags [S], seq 1, win 1024, length 0',
      // LAN chatter on bogon-listed space: mDNS multicast and private to private. No hit.
      '1700000005.000000 IP 192.168.1.20.5353 > 224.0.0.251.5353: UDP, length 120',
      '1700000005.100000 IP 10.1.1.1.137 > 10.1.1.255.137: UDP, length 50',
      // Traffic from outside to outside (both ends could match): C2 source is matched as initiator.
      '1700000006.000000 IP 192.1.2.12.1234 > 8.8.8.8.53: UDP, length 30',
    ].join('\n');
    const r = ok(await upload(t, `${lines}\n`, { deviceNickname: 'edge' })).logUploadCreate;
    await processQueued(t.services);
    const row = await uploadRow(t, r.logUpload.id);
    expect(row).toMatchObject({ status: 'COMPLETED', packetLines: 10, connections: 8, hits: 5 });
    const hits = (await hitsOf(t, r.logUpload.id)).map((h: any) => [
      h.direction,
      h.protocol,
      h.internalIp,
      h.internalPort,
      h.externalIp,
      h.externalPort,
      h.matchedSide,
      h.matchedCidr,
    ]);
    expect(hits).toEqual([
      ['INBOUND', 'TCP', '100.64.3.3', 22, '192.1.2.9', 4444, 'INITIATOR', '192.1.2.0/24'],
      ['OUTBOUND', 'TCP', '10.9.9.9', 50000, '192.1.2.10', 443, 'RESPONDER', '192.1.2.0/24'],
      ['OUTBOUND', 'ICMP', '10.9.9.9', null, '192.1.2.11', null, 'RESPONDER', '192.1.2.0/24'],
      ['OUTBOUND', 'UDP', 'fd00::5', 5353, '2001:db8:bad::7', 53, 'RESPONDER', '2001:db8:bad::/48'],
      ['INBOUND', 'UDP', '8.8.8.8', 53, '192.1.2.12', 1234, 'INITIATOR', '192.1.2.0/24'],
    ]);
  });

  it('accepts gzip-compressed text and keeps the md5 of what was sent', async () => {
    const text = '1700000100.000000 IP 10.0.0.1.1000 > 192.1.2.50.80: Flags [S], seq 1, win 1, length 0\n';
    const gz = zlib.gzipSync(text);
    const r = ok(await upload(t, gz, { deviceNickname: 'edge', md5: md5(gz), size: gz.length }, { filename: 'cap.txt.gz' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    expect(r.logUpload).toMatchObject({ size: gz.length, textBytes: text.length, md5: md5(gz) });
    await processQueued(t.services);
    expect((await uploadRow(t, r.logUpload.id)).hits).toBe(1);
  });

  it.each([
    [
      'binary pcap',
      Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]),
      {},
      'UNSUPPORTED_FORMAT',
      'tcpdump -tt -n -r FILE > FILE.txt',
    ],
    ['big-endian nanosecond pcap', Buffer.from([0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4]), {}, 'UNSUPPORTED_FORMAT', 'binary pcap capture'],
    ['pcapng', Buffer.from([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]), {}, 'UNSUPPORTED_FORMAT', 'binary pcapng capture'],
    ['non-text', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]), {}, 'NOT_TEXT', 'not text'],
    ['empty file', Buffer.alloc(0), {}, 'EMPTY', 'empty'],
    ['wrong md5', Buffer.from(SEED.replace('53231', '53232')), { md5: 'd41d8cd98f00b204e9800998ecf8427e' }, 'CHECKSUM_MISMATCH', 'does not match'],
    ['wrong size', Buffer.from(SEED.replace('53231', '53233')), { size: 3 }, 'SIZE_MISMATCH', 'The client said 3 bytes'],
    ['malformed md5', Buffer.from(SEED), { md5: 'xyz' }, 'INVALID', 'md5 must be 32 hexadecimal digits'],
  ])('refuses a %s with a specific error and stores nothing', async (_name, body, extra, code, message) => {
    const before = [await count('log_upload'), await count('log_upload_blob')];
    const r = ok(await upload(t, body as Buffer, { deviceNickname: 'edge', ...(extra as object) })).logUploadCreate;
    expect(r.logUpload).toBeNull();
    expect(r.userErrors).toHaveLength(1);
    expect(r.userErrors[0].code).toBe(code);
    expect(r.userErrors[0].message).toContain(message);
    expect([await count('log_upload'), await count('log_upload_blob')]).toEqual(before);
  });

  it('refuses an upload over MAX_UPLOAD_BYTES with HTTP 413, storing nothing: a gzip bomb by what it inflates to, a padded gzip by its own size', async () => {
    const small = await createTestApp(driver, { MAX_UPLOAD_BYTES: '4KB' });
    try {
      const p = ok(await small.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
      ok(
        await small.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "d", ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { device { id } } }`, {
          p,
        }),
      );
      // A gzip of one line padded by an 8 KB header comment (valid: gzip -dc reads it): within the text limit, over
      // it in bytes held and stored. GraphQL's file limit is the feeds' (256 MB): only the count of the bytes sent stops it.
      const gz = zlib.gzipSync(SEED);
      const header = Buffer.from(gz.subarray(0, 10));
      header[3] |= 0x10;
      const padded = Buffer.concat([header, Buffer.alloc(8_000, 0x41), Buffer.from([0]), gz.subarray(10)]);
      expect(zlib.gunzipSync(padded).toString()).toBe(SEED);
      for (const body of [Buffer.from(SEED.repeat(60)), zlib.gzipSync(Buffer.from(SEED.repeat(5000))), padded]) {
        const r = await upload(small, body, { deviceNickname: 'd' });
        expect(r.status).toBe(413);
        expect(r.errors?.[0]).toMatchObject({ extensions: { code: 'PAYLOAD_TOO_LARGE' } });
        expect(r.errors?.[0].message).toContain('larger than the limit of 4000 bytes');
      }
      expect(Number((await small.dataSource.query('SELECT COUNT(*) AS n FROM log_upload'))[0].n)).toBe(0);
      expect(Number((await small.dataSource.query('SELECT COUNT(*) AS n FROM log_upload_blob'))[0].n)).toBe(0);
    } finally {
      await small.close();
    }
  });

  it('fails a capture printed without -tt, asking for -tt', async () => {
    const noTt = '21:46:16.463334 IP 131.151.32.21.7001 > 131.151.1.59.7000: UDP, length 40\n'.repeat(3);
    const r = ok(await upload(t, noTt, { deviceNickname: 'edge' })).logUploadCreate;
    await processQueued(t.services);
    const row = await uploadRow(t, r.logUpload.id);
    expect(row.status).toBe('FAILED');
    expect(row.error).toMatch(/-tt -n/);
  });

  it('stops early on a large capture printed without -tt, and fails it', async () => {
    const noTt = Array.from(
      { length: 30_000 },
      (_, i) => `21:46:${String(i % 60).padStart(2, '0')}.463334 IP 131.151.32.21.${1024 + i} > 131.151.1.59.7000: UDP, length 40`,
    ).join('\n');
    const r = ok(await upload(t, noTt, { deviceNickname: 'edge' })).logUploadCreate;
    const [outcome] = await processQueued(t.services);
    expect(outcome.status).toBe('FAILED');
    const row = await uploadRow(t, r.logUpload.id);
    expect(row.status).toBe('FAILED');
    expect(row.error).toMatch(/-tt -n/);
    // Read only until that was clear: the message counts the lines read, and says so (it said "The file has").
    const [, read, timeOfDay] =
      /^The file's first (\d+) lines have (\d+) packet line\(s\) with a time of day but no date \(it was read no further\)/.exec(row.error) ?? [];
    expect(Number(read)).toBeGreaterThan(2000);
    expect(Number(read)).toBeLessThan(30_000);
    expect(Number(timeOfDay)).toBe(Number(read));
    // One of 3,000 lines is refused at the same point, but read whole (one slice): its counts are all of it.
    const shortNoTt = noTt.split('\n').slice(0, 3_000).join('\n');
    const r2 = ok(await upload(t, shortNoTt, { deviceNickname: 'edge' })).logUploadCreate;
    await processQueued(t.services);
    expect((await uploadRow(t, r2.logUpload.id)).error).toMatch(/^The file has 3000 packet line\(s\) with a time of day but no date\. /);
  });

  it("names the device by exactly one of ID, nickname or IP; another account's devices are not usable", async () => {
    const theirPolicy = (await gql(`mutation { policyCreate(input: { name: "theirs" }) { policy { id } } }`, {}, t.keys.otherAdmin)).policyCreate.policy.id;
    const theirs = (
      await gql(
        `mutation($p: ID!) { deviceCreate(input: { nickname: "their-edge", ipType: STATIC, ipAddress: "1.0.0.1", policy: $p }) { device { id } } }`,
        { p: theirPolicy },
        t.keys.otherAdmin,
      )
    ).deviceCreate.device.id;
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ device: theirs }, 'input.device', 'No device with this ID.'],
      [{ device: 'garbage' }, 'input.device', 'No device with this ID.'],
      [{ deviceNickname: 'their-edge' }, 'input.deviceNickname', 'No device nicknamed "their-edge".'],
      [{ deviceIp: '1.0.0.1' }, 'input.deviceIp', 'No device has the address 1.0.0.1.'],
      [{}, 'input.device', 'Name the device by exactly one of device, deviceNickname or deviceIp.'],
      [{ deviceNickname: 'edge', deviceIp: '93.184.216.34' }, 'input.device', 'Name the device by exactly one of device, deviceNickname or deviceIp.'],
    ];
    const before = await count('log_upload');
    for (const [input, field, message] of cases) {
      const r = ok(await upload(t, `${SEED}#${field}\n`, input)).logUploadCreate;
      expect(r.userErrors).toEqual([{ code: expect.any(String), field: field.split('.'), message }]);
    }
    expect(await count('log_upload')).toBe(before);
  });

  it('lets UPLOADER upload and see only its own uploads; ANALYST cannot upload', async () => {
    const mine = ok(await upload(t, `${SEED}# uploader\n`, { deviceNickname: 'edge' }, { key: t.keys.uploader })).logUploadCreate.logUpload;
    const list = ok(await t.gql(`{ logUploads(first: 100) { edges { node { id } } } }`, {}, t.keys.uploader)).logUploads.edges.map((e: any) => e.node.id);
    expect(list).toEqual([mine.id]);
    expect(ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status } }`, { id: mine.id }, t.keys.uploader)).logUpload.status).toBe('QUEUED');
    const adminsUpload = ok(await t.gql(`{ logUploads(first: 100, filter: { statuses: [COMPLETED] }) { edges { node { id } } } }`)).logUploads.edges[0].node.id;
    expect(ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status } }`, { id: adminsUpload }, t.keys.uploader)).logUpload).toBeNull();
    expect(
      (await t.gql(`query($id: ID!) { logUpload(id: $id) { flowHits { totalCount } } }`, { id: mine.id }, t.keys.uploader)).errors?.[0].extensions?.code,
    ).toBe('FORBIDDEN');
    const analyst = await upload(t, `${SEED}# analyst\n`, { deviceNickname: 'edge' }, { key: t.keys.analyst });
    expect(analyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    await processQueued(t.services);
  });

  it('reprocesses against the current policy, replacing counts and hits exactly', async () => {
    const text = [
      '1700000200.000000 IP 10.0.0.7.1111 > 198.51.100.77.443: Flags [S], seq 1, win 1, length 0',
      '1700000200.100000 IP 10.0.0.7.1112 > 192.1.2.80.443: Flags [S], seq 1, win 1, length 0',
    ].join('\n');
    const id = ok(await upload(t, text, { deviceNickname: 'edge' })).logUploadCreate.logUpload.id;
    await processQueued(t.services);
    expect((await uploadRow(t, id)).hits).toBe(1);
    const busy = ok(
      await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { logUpload { status } userErrors { code } } }`, { i: { id } }),
    ).logUploadReprocess;
    expect(busy.userErrors).toEqual([]);
    expect(busy.logUpload.status).toBe('QUEUED');
    const twice = ok(
      await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { code } } }`, { i: { id } }),
    ).logUploadReprocess;
    expect(twice.userErrors).toEqual([{ code: 'INVALID_STATE' }]);
    await processQueued(t.services);
    expect((await uploadRow(t, id)).hits).toBe(1);
    // A new entry, then a reprocess: the hit appears; the old one is not duplicated.
    const c2 = ok(await t.gql(`{ iocLists(filter: { nameContains: "C2" }) { edges { node { id } } } }`)).iocLists.edges[0].node.id;
    ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: c2, entries: [{ value: '198.51.100.77' }] } }));
    ok(await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { code } } }`, { i: { id } }));
    await processQueued(t.services);
    const row = await uploadRow(t, id);
    expect(row).toMatchObject({ status: 'COMPLETED', hits: 2, attempts: 1 });
    expect((await hitsOf(t, id)).map((h: any) => h.externalIp).sort()).toEqual(['192.1.2.80', '198.51.100.77']);
    const theirs = ok(
      await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { code } } }`, { i: { id } }, t.keys.otherAdmin),
    ).logUploadReprocess;
    expect(theirs.userErrors).toEqual([{ code: 'NOT_FOUND' }]);
  });

  it("takes a job again when its worker's lease expires, and the late worker changes nothing", async () => {
    const text = '1700000300.000000 IP 10.0.0.8.2222 > 192.1.2.90.443: Flags [S], seq 1, win 1, length 0\n';
    const id = ok(await upload(t, text, { deviceNickname: 'edge' })).logUploadCreate.logUpload.id;
    const first = await t.services.queue.claim('worker-a', 1);
    expect(first).toMatchObject({ attempt: 1, recovered: false });
    await new Promise((r) => setTimeout(r, 5));
    const second = await t.services.queue.claim('worker-b', 60_000);
    expect(second).toMatchObject({ uploadId: first!.uploadId, attempt: 2, recovered: true });
    expect((await t.services.processor.process(first!.uploadId, 'worker-a')).status).toBe('LEASE_LOST');
    expect((await t.services.processor.process(second!.uploadId, 'worker-b')).status).toBe('COMPLETED');
    expect((await t.services.processor.process(second!.uploadId, 'worker-b')).status).toBe('LEASE_LOST');
    expect(await uploadRow(t, id)).toMatchObject({ status: 'COMPLETED', hits: 1, attempts: 2 });
    expect((await hitsOf(t, id)).length).toBe(1);
  });

  it('lists uploads newest first with filters', async () => {
    const all = ok(await t.gql(`{ logUploads(first: 100) { totalCount edges { node { id receivedAt status } } } }`)).logUploads;
    const times = all.edges.map((e: any) => e.node.receivedAt);
    expect([...times].sort().reverse()).toEqual(times);
    const failed = ok(await t.gql(`{ logUploads(filter: { statuses: [FAILED] }) { totalCount } }`)).logUploads.totalCount;
    // The three captures without -tt above.
    expect(failed).toBe(3);
    const byDevice = ok(await t.gql(`query($d: ID!) { logUploads(filter: { devices: [$d] }) { totalCount } }`, { d: deviceId })).logUploads.totalCount;
    expect(byDevice).toBe(all.totalCount);
    expect(ok(await t.gql(`{ logUploads { totalCount } }`, {}, t.keys.otherAdmin)).logUploads.totalCount).toBe(0);
  });
});
