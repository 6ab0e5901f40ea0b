import { countStatements } from '../../helpers/sql-count';
import { turnCounter } from '../../helpers/turns';
import express from 'express';
import http from 'node:http';
import net from 'node:net';
import { AddressInfo } from 'node:net';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { toGlobalId } from '../../../src/common/ids/global-id';
import { EXPORT_BATCH, EXPORT_COLUMNS } from '../../../src/modules/report/export/hit-export';
import { FlowHit } from '../../../src/modules/flow-hit/flow-hit.entity';
import { exportRouter } from '../../../src/app/export-route';
import { silentLogger } from '../../../src/app/logger';

// Names that need CSV quoting and the formula prefix; capture lines with TCP, UDP and (port-less) ICMP.
const DEVICE = '-site, "east"';
const LIST = '=HYPERLINK("x"),bad';
const BAD = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
const START = Date.parse('2024-03-30T00:00:00Z');
const WINDOW = { from: '2024-03-29T00:00:00Z', to: '2024-04-10T00:00:00Z' };
const text = Array.from({ length: 120 }, (_, i) => {
  const at = (START / 1000 + i * 60).toFixed(6);
  const inside = `10.0.${i % 4}.${1 + (i % 7)}`;
  const bad = BAD[i % 3];
  if (i % 10 === 0) return `${at} IP ${inside} > ${bad}: ICMP echo request, id 1, seq 1, length 64`;
  if (i % 10 === 1) return `${at} IP ${inside}.${40000 + i} > ${bad}.53: UDP, length 40`;
  return `${at} IP ${inside}.${40000 + i} > ${bad}.443: Flags [S], seq 1, win 1, length ${10 + i}`;
}).join('\n');

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// The route's output before it read raw rows (entities, one record object per row): the reference.
function csvCell(v: unknown): string {
  if (v == null) return '';
  const s = String(v);
  const safe = /^[=+\-@]/.test(s) && !/^-\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
function reference(hits: FlowHit[], deviceName: Map<number, string>, listName: Map<number, string>, format: 'csv' | 'ndjson'): string {
  const lines = hits.map((h) => {
    const record = {
      id: toGlobalId('FlowHit', h.id),
      first_seen_at: h.firstSeenAt.toISOString(),
      last_seen_at: h.lastSeenAt.toISOString(),
      device_id: toGlobalId('Device', h.deviceId),
      device: deviceName.get(h.deviceId) ?? null,
      upload_id: toGlobalId('LogUpload', h.uploadId),
      direction: h.direction,
      protocol: h.protocol,
      internal_ip: h.internalIp,
      internal_port: h.internalPort,
      external_ip: h.externalIp,
      external_port: h.externalPort,
      destination_port: h.destinationPort,
      matched_side: h.matchedSide,
      matched_ip: h.matchedIp,
      matched_cidr: h.matchedCidr,
      ioc_id: toGlobalId('Ioc', h.iocId),
      ioc_list_id: toGlobalId('IocList', h.iocListId),
      ioc_list: listName.get(h.iocListId) ?? null,
      severity: h.severity,
      category: h.category,
      packets_sent: h.packetsForward,
      packets_received: h.packetsReverse,
      bytes_sent: h.bytesForward,
      bytes_received: h.bytesReverse,
      found_by: h.foundBy,
      found_at: h.foundAt.toISOString(),
      retro_hunt_id: h.retroHuntId == null ? null : toGlobalId('RetroHunt', h.retroHuntId),
    };
    return format === 'csv' ? EXPORT_COLUMNS.map((c) => csvCell((record as Record<string, unknown>)[c])).join(',') : JSON.stringify(record);
  });
  return (format === 'csv' ? `${EXPORT_COLUMNS.join(',')}\n` : '') + lines.map((l) => `${l}\n`).join('');
}

/** GET through a real socket, reading at about `bytesPerS` so the server's writes meet backpressure. */
function slowGet(base: string, path: string, key: string, bytesPerS: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          res.pause();
          setTimeout(() => res.resume(), (chunk.length / bytesPerS) * 1000);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe.each(drivers)('export streaming (%s)', (driver) => {
  let t: TestApp;
  let server: http.Server;
  let base: string;
  let hits: FlowHit[];
  let deviceName: Map<number, string>;
  let listName: Map<number, string>;
  beforeAll(async () => {
    t = await createTestApp(driver);
    const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const list = (
      await q(`mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`, { n: LIST })
    ).iocListCreate.iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
    await q(`mutation($p: ID!, $n: String!) { deviceCreate(input: { nickname: $n, ipType: STATIC, ipAddress: "8.8.8.8", policy: $p }) { device { id } } }`, {
      p: policy,
      n: DEVICE,
    });
    ok(await upload(t, `${text}\n`, { deviceNickname: DEVICE }));
    await processQueued(t.services);
    // 120 hits doubled 9 times (61,440, a dozen batches), each copy shifted by 0-255 ms: many rows share a
    // first_seen_at across batch boundaries, which the (first_seen_at, id) cursor must keep apart.
    const columns = Object.keys((await t.dataSource.query('SELECT * FROM flow_hit LIMIT 1'))[0]).filter((c) => c !== 'id');
    for (let k = 0; k < 9; k++) {
      const select = columns.map((c) => (c === 'first_seen_at' || c === 'last_seen_at' ? `${c} + ${(k * 37) % 256}` : c)).join(', ');
      await t.dataSource.query(`INSERT INTO flow_hit (${columns.join(', ')}) SELECT ${select} FROM flow_hit`);
    }
    // Byte counters beyond 2^32 (BIGINT): mysql2 may return them as strings.
    await t.dataSource.query('UPDATE flow_hit SET bytes_forward = bytes_forward + 5000000000 WHERE id % 7 = 0');
    hits = await t.dataSource.getRepository(FlowHit).find({ order: { firstSeenAt: 'ASC', id: 'ASC' } });
    expect(hits.length).toBe(120 * 2 ** 9);
    expect(hits.length).toBeGreaterThan(10 * EXPORT_BATCH);
    deviceName = new Map([[hits[0].deviceId, DEVICE]]);
    listName = new Map([[hits[0].iocListId, LIST]]);
    server = http.createServer(t.http.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  it('streams many batches to a slow client byte for byte as the entity-based export did, with no listener left per wait', async () => {
    // Every write of the response: its result, and how many 'close'/'drain' listeners the response holds then.
    const writes: Array<{ ok: boolean; close: number; drain: number }> = [];
    const write = http.ServerResponse.prototype.write;
    const spy = jest.spyOn(http.ServerResponse.prototype, 'write').mockImplementation(function (this: http.ServerResponse, ...args: unknown[]) {
      const result = (write as (...a: unknown[]) => boolean).apply(this, args);
      writes.push({ ok: result, close: this.listenerCount('close'), drain: this.listenerCount('drain') });
      return result;
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const res = await slowGet(base, `/export/flow-hits.csv?from=${WINDOW.from}&to=${WINDOW.to}`, t.keys.analyst, 8 * 1024 * 1024);
      expect(res.status).toBe(200);
      expect(res.text).toBe(reference(hits, deviceName, listName, 'csv'));
    } finally {
      spy.mockRestore();
      process.off('warning', onWarning);
    }
    // The client was slower than the server: the route waited for 'drain' many times...
    expect(writes.filter((w) => !w.ok).length).toBeGreaterThanOrEqual(5);
    // ...and the listeners it added for each wait went away with it.
    const first = writes[0];
    expect(Math.max(...writes.map((w) => w.close))).toBeLessThanOrEqual(first.close + 2);
    expect(Math.max(...writes.map((w) => w.drain))).toBeLessThanOrEqual(first.drain + 2);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('exports NDJSON with the same values and key order as before, over the same batches', async () => {
    const nd = await request(t.http.app).get('/export/flow-hits.ndjson').query(WINDOW).set('authorization', `Bearer ${t.keys.admin}`);
    expect(nd.status).toBe(200);
    expect(nd.text).toBe(reference(hits, deviceName, listName, 'ndjson'));
    // A filter narrows every batch alike (port-less ICMP hits have no destination port).
    const icmp = await request(t.http.app)
      .get('/export/flow-hits.ndjson')
      .query({ ...WINDOW, protocol: 'ICMP' })
      .set('authorization', `Bearer ${t.keys.admin}`);
    const expected = hits.filter((h) => h.protocol === 'ICMP');
    expect(icmp.text).toBe(reference(expected, deviceName, listName, 'ndjson'));
    expect(JSON.parse(icmp.text.split('\n')[0])).toMatchObject({ internal_port: null, destination_port: null, device: DEVICE, ioc_list: LIST });
  });

  it('gives the event loop a turn after every batch, so other requests are answered during a download', async () => {
    // Which turn of the event loop each write of the response ran in. On SQLite every batch is read synchronously,
    // and a socket that takes a write at once emits 'drain' on process.nextTick: before the route yielded, a
    // fast client got the whole download in one turn, and no other request was read until it ended.
    const turns = turnCounter();
    const writeTurns: number[] = [];
    const write = http.ServerResponse.prototype.write;
    const spy = jest.spyOn(http.ServerResponse.prototype, 'write').mockImplementation(function (this: http.ServerResponse, ...args: unknown[]) {
      // The download's writes only (the GraphQL request sent meanwhile answers through the same prototype).
      if (String(this.getHeader('content-type')).startsWith('text/csv')) writeTurns.push(turns.now);
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    });
    let status = 0;
    let during: number | null = null;
    let answeredFirst: number | null = null;
    try {
      await new Promise<void>((resolve, reject) => {
        http
          .get(`${base}/export/flow-hits.csv?from=${WINDOW.from}&to=${WINDOW.to}`, { headers: { authorization: `Bearer ${t.keys.analyst}` } }, (res) => {
            status = res.statusCode ?? 0;
            let asked = false;
            res.on('data', () => {
              if (asked) return;
              asked = true;
              // A second request sent once the download is under way is answered before it ends.
              void request(t.http.app)
                .post('/graphql')
                .set('authorization', `Bearer ${t.keys.analyst}`)
                .send({ query: '{ __typename }' })
                .then((r) => (during = r.status));
            });
            res.on('end', () => {
              answeredFirst = during;
              resolve();
            });
            res.on('error', reject);
          })
          .on('error', reject);
      });
    } finally {
      spy.mockRestore();
      turns.stop();
    }
    expect(status).toBe(200);
    expect(answeredFirst).toBe(200);
    // The header row, then one write per batch: each batch's in a later turn than the one before.
    const batches = writeTurns.slice(1);
    expect(batches.length).toBe(Math.ceil(hits.length / EXPORT_BATCH));
    for (let i = 1; i < batches.length; i++) expect(batches[i]).toBeGreaterThan(batches[i - 1]);
  });

  it('stops reading when the client goes away mid-export', async () => {
    const statements = await countStatements(t.dataSource, async () => {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(
          `${base}/export/flow-hits.csv?from=${WINDOW.from}&to=${WINDOW.to}`,
          { headers: { authorization: `Bearer ${t.keys.analyst}` } },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    // Auth, devices, lists, and the batches read before the server's socket learns the client is gone (SQLite
    // reads ~13, MySQL's one statement ~2): far from the 31 the whole export needs.
    expect(Math.ceil(hits.length / EXPORT_BATCH)).toBe(31);
    expect(statements).toBeLessThan(3 + 20);
    // The server still answers.
    expect(
      (
        await request(t.http.app)
          .get('/export/flow-hits.csv')
          .query({ ...WINDOW, protocol: 'UDP' })
          .set('authorization', `Bearer ${t.keys.analyst}`)
      ).status,
    ).toBe(200);
  });

  it('cuts a download whose client stops reading, once it has taken nothing for the stall limit, and gives its slot back', async () => {
    // The route as the server mounts it, with a stall limit of 500 ms instead of the hour.
    const app = express().use(exportRouter(t.services, silentLogger(), EXPORT_BATCH, 500));
    const stalling = http.createServer(app);
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    // A client that sends its request and reads nothing: its receive window stays small, the server's socket
    // buffer fills, and the download waits for a 'drain' that never comes.
    const client = net.connect((stalling.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => undefined);
    try {
      await new Promise<void>((resolve) => client.once('connect', resolve));
      client.pause();
      client.write(`GET /export/flow-hits.csv?from=${WINDOW.from}&to=${WINDOW.to} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.keys.analyst}\r\n\r\n`);
      await until('the download to take its slot', () => t.services.exportAdmission.inFlight === 1);
      await until('the stalled download to give its slot back', () => t.services.exportAdmission.inFlight === 0, 15_000);
    } finally {
      client.destroy();
      stalling.closeAllConnections();
      await new Promise((resolve) => stalling.close(resolve));
    }
  });
});
