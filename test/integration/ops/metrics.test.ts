import crypto from 'node:crypto';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { toGlobalId } from '../../../src/common/ids/global-id';
import { IpType } from '../../../src/modules/device/device.enums';
import { IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';

const TOKEN = 'scrape-token-0123456789abcdef';
/** Outbound to 192.1.2.3, which the policy's list holds: one connection, one hit. */
const SEED = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\n';
const OTHER = '1517931956.000001 IP 10.0.2.2.53232 > 8.8.8.8.53: UDP, length 40\n';
const md5 = (b: string) => crypto.createHash('md5').update(b).digest('hex');

/** Prometheus text: every sample as "name{labels} value", by metric family (# TYPE lines). */
function parseExposition(text: string): { families: Set<string>; value(name: string, labels?: Record<string, string>): number | undefined } {
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  return {
    families,
    value(name, labels = {}) {
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
      }
      return undefined;
    },
  };
}

describe.each(drivers)('GET /metrics (%s)', (driver) => {
  let t: TestApp;
  let disabled: TestApp;
  let device: string;

  beforeAll(async () => {
    t = await createTestApp(driver, { METRICS_ENABLED: 'true', METRICS_TOKEN: TOKEN });
    disabled = await createTestApp(driver);
    const s = t.services;
    const policy = await s.policies.create(t.accountId, { name: 'Sensors' });
    const list = await s.iocLists.create(t.accountId, { name: 'C2', kind: IocListKind.BLOCK, severity: 5, category: IocCategory.C2_BOTNET });
    if (!policy.ok || !list.ok) throw new Error('setup');
    expect((await s.iocs.add(t.accountId, list.value.id, [{ value: '192.1.2.0/24' }, { value: '203.0.113.0/24' }])).ok).toBe(true);
    expect((await s.policies.attachIocLists(t.accountId, policy.value.id, [list.value.id])).ok).toBe(true);
    const d = await s.devices.create(t.accountId, { nickname: 'gw', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id });
    if (!d.ok) throw new Error('device');
    device = toGlobalId('Device', d.value.id);
  });
  afterAll(async () => {
    await t.close();
    await disabled.close();
  });

  const scrape = (app: TestApp, auth?: string) => {
    const req = request(app.http.app).get('/metrics');
    if (auth) req.set('authorization', auth);
    return req;
  };

  it('is 404 when METRICS_ENABLED is off, whatever the token', async () => {
    expect((await scrape(disabled)).status).toBe(404);
    expect((await scrape(disabled, `Bearer ${TOKEN}`)).status).toBe(404);
  });

  it('refuses a scrape without its token, with a wrong one, or with an API key (401)', async () => {
    for (const auth of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, `Bearer ${t.keys.admin}`]) {
      const res = await scrape(t, auth);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.text).not.toContain('pcap_defense_');
    }
  });

  it('exposes every metric family once an upload is processed', async () => {
    expect((await upload(t, SEED, { device, md5: md5(SEED) }, { key: t.keys.uploader })).data.logUploadCreate.userErrors).toEqual([]);
    expect((await upload(t, SEED, { device }, { key: t.keys.uploader })).data.logUploadCreate.duplicate).toBe(true);
    expect((await upload(t, OTHER, { device, md5: md5('not it') }, { key: t.keys.uploader })).data.logUploadCreate.userErrors[0].code).toBe(
      'CHECKSUM_MISMATCH',
    );
    const form = await request(t.http.app)
      .post('/logupload')
      .attach('upfile', Buffer.from(OTHER), 'capture.txt')
      .field('nickname', 'gw')
      .field('token', t.keys.uploader);
    expect(form.status).toBe(201);
    // Queued before the scrape, processed after: the depth gauge is read at scrape time.
    let m = parseExposition((await scrape(t, `Bearer ${TOKEN}`)).text);
    expect(m.value('pcap_defense_queue_depth', { status: 'QUEUED' })).toBe(2);
    const outcomes = await processQueued(t.services);
    expect(outcomes.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);

    const res = await scrape(t, `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    m = parseExposition(res.text);
    for (const family of [
      'pcap_defense_http_requests_total',
      'pcap_defense_http_request_duration_seconds',
      'pcap_defense_uploads_received_total',
      'pcap_defense_uploads_accepted_total',
      'pcap_defense_uploads_refused_total',
      'pcap_defense_upload_bytes_received_total',
      'pcap_defense_queue_depth',
      'pcap_defense_jobs_total',
      'pcap_defense_job_duration_seconds',
      'pcap_defense_parse_throughput_bytes_per_second',
      'pcap_defense_connections_total',
      'pcap_defense_flow_hits_written_total',
      'pcap_defense_ioc_index_entries',
      'pcap_defense_ioc_index_build_seconds',
      'pcap_defense_ioc_index_builds_total',
      'pcap_defense_db_pool_connections',
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect([family, m.families.has(family)]).toEqual([family, true]);
    }
    expect(m.value('pcap_defense_uploads_received_total', { via: 'graphql' })).toBe(3);
    expect(m.value('pcap_defense_uploads_accepted_total', { via: 'graphql', duplicate: 'false' })).toBe(1);
    expect(m.value('pcap_defense_uploads_accepted_total', { via: 'graphql', duplicate: 'true' })).toBe(1);
    expect(m.value('pcap_defense_uploads_accepted_total', { via: 'form', duplicate: 'false' })).toBe(1);
    expect(m.value('pcap_defense_uploads_refused_total', { via: 'graphql', reason: 'CHECKSUM_MISMATCH' })).toBe(1);
    expect(m.value('pcap_defense_upload_bytes_received_total', { via: 'graphql' })).toBe(2 * SEED.length);
    expect(m.value('pcap_defense_upload_bytes_received_total', { via: 'form' })).toBe(OTHER.length);
    expect(m.value('pcap_defense_queue_depth', { status: 'COMPLETED' })).toBe(2);
    expect(m.value('pcap_defense_queue_depth', { status: 'QUEUED' })).toBe(0);
    expect(m.value('pcap_defense_jobs_total', { outcome: 'completed' })).toBe(2);
    expect(m.value('pcap_defense_job_duration_seconds_count', { outcome: 'completed' })).toBe(2);
    expect(m.value('pcap_defense_parse_throughput_bytes_per_second_count')).toBe(2);
    expect(m.value('pcap_defense_connections_total')).toBe(2);
    expect(m.value('pcap_defense_flow_hits_written_total')).toBe(1);
    const policyId = String((await t.dataSource.query('SELECT id FROM policy'))[0].id);
    expect(m.value('pcap_defense_ioc_index_entries', { policy: policyId })).toBe(2);
    expect(m.value('pcap_defense_ioc_index_build_seconds', { policy: policyId })).toBeGreaterThanOrEqual(0);
    expect(m.value('pcap_defense_ioc_index_builds_total', { policy: policyId })).toBe(1);
    // The helper's upload mutation is anonymous: operation "".
    expect(m.value('pcap_defense_http_requests_total', { route: '/graphql', operation: '', status: '200', method: 'POST' })).toBeGreaterThanOrEqual(3);
    expect(m.value('pcap_defense_http_requests_total', { route: '/logupload', status: '201' })).toBe(1);
    expect(m.value('pcap_defense_http_requests_total', { route: '/metrics', status: '401' })).toBe(5);
    const inUse = m.value('pcap_defense_db_pool_connections', { state: 'in_use' });
    const free = m.value('pcap_defense_db_pool_connections', { state: 'free' });
    expect(inUse).toBeGreaterThanOrEqual(0);
    expect(free).toBeGreaterThanOrEqual(driver === 'sqlite' ? 1 : 0);
  });

  it('labels requests by GraphQL operation name, and bounds the label set', async () => {
    await t.gql('query Dashboard { viewer { role } }');
    const junk = await request(t.http.app)
      .post('/graphql')
      .set('authorization', `Bearer ${t.keys.admin}`)
      .send({ query: 'query { viewer { role } }', operationName: 'not a name!' });
    expect(junk.status).toBe(400);
    const m = parseExposition((await scrape(t, `Bearer ${TOKEN}`)).text);
    expect(m.value('pcap_defense_http_requests_total', { route: '/graphql', operation: 'Dashboard', status: '200' })).toBe(1);
    expect(m.value('pcap_defense_http_request_duration_seconds_count', { route: '/graphql', operation: 'Dashboard' })).toBe(1);
    expect(m.value('pcap_defense_http_requests_total', { route: '/graphql', operation: '_invalid' })).toBe(1);
    for (let i = 0; i < 300; i++) t.services.metrics.operationLabel(`Op${i}`);
    expect(t.services.metrics.operationLabel('Op299')).toBe('_other');
    expect(t.services.metrics.operationLabel('Dashboard')).toBe('Dashboard');
  });
});
