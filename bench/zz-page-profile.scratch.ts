// SCRATCH (to be deleted): CPU profile of the drill-down page request, to see where the GraphQL time goes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import inspector from 'node:inspector';
import { loadConfig } from '../src/config/config';
import { startServer } from '../src/app/server';
import { silentLogger } from '../src/app/logger';
import { bulkInsert } from '../src/db/bulk';
import { toGlobalId } from '../src/common/ids/global-id';
import { IocCategory, IocListKind } from '../src/modules/ioc/ioc.enums';
import { IpType } from '../src/modules/device/device.enums';

const QUERY = `query Hits($filter: HitFilter!, $after: String) {
  flowHits(filter: $filter, first: 100, after: $after) {
    edges { cursor node { id firstSeenAt lastSeenAt direction protocol internalIp internalPort externalIp externalPort destinationPort
      matchedSide matchedIp matchedCidr severity category packets bytes device { id nickname } iocList { id name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-prof-'));
  const server = await startServer(
    loadConfig({ NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', RETENTION_DAYS: '0', WORKER_ENABLED: 'false', RATE_LIMIT_REPORTS_PER_MINUTE: '0', DATABASE_URL: `sqlite://${tmp}/p.sqlite` }, tmp),
    silentLogger(),
  );
  try {
    const s = server.services;
    const account = (await s.accounts.findAccountByName('default'))!;
    const policy = await s.policies.create(account.id, { name: 'p' });
    const list = await s.iocLists.create(account.id, { name: 'l', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.MALWARE });
    if (!policy.ok || !list.ok) throw new Error('setup');
    const added = await s.iocs.add(account.id, list.value.id, [{ value: '185.220.100.1' }]);
    if (!added.ok) throw new Error('ioc');
    const dev = await s.devices.create(account.id, { nickname: 'd', ipType: IpType.STATIC, ipAddress: '93.184.216.34', policyId: policy.value.id, internalNetworks: [] });
    if (!dev.ok) throw new Error('device');
    const now = Date.now();
    await server.dataSource.transaction(async (em) => {
      await bulkInsert(em, 'log_upload', ['account_id', 'device_id', 'source', 'file_name', 'size', 'text_bytes', 'stored_bytes', 'md5', 'status', 'received_at'], [
        [account.id, dev.value.id, 'GRAPHQL', 'f', 1, 1, 1, 'a'.repeat(32), 'COMPLETED', now],
      ]);
      const rows: unknown[][] = [];
      for (let i = 0; i < 5000; i++) {
        rows.push([account.id, dev.value.id, 1, now - i * 1000, now - i * 1000 + 5, 'OUTBOUND', 'TCP', '10.0.0.5', '00000000000000000000ffff0a000005', 40000, '185.220.100.1', '00000000000000000000ffffb9dc6401', 443, 443, 'RESPONDER', '185.220.100.1', 5, 500, 4, 4000, added.value.entries[0].id, list.value.id, '185.220.100.1/32', 4, 'MALWARE']);
      }
      await bulkInsert(em, 'flow_hit', ['account_id', 'device_id', 'upload_id', 'first_seen_at', 'last_seen_at', 'direction', 'protocol', 'internal_ip', 'internal_key', 'internal_port', 'external_ip', 'external_key', 'external_port', 'destination_port', 'matched_side', 'matched_ip', 'packets_forward', 'bytes_forward', 'packets_reverse', 'bytes_reverse', 'ioc_id', 'ioc_list_id', 'matched_cidr', 'severity', 'category'], rows);
    });
    const body = JSON.stringify({ query: QUERY, variables: { filter: { from: new Date(now - 86400_000).toISOString(), to: new Date(now + 1000).toISOString(), devices: [toGlobalId('Device', dev.value.id)], minSeverity: 3 } } });
    const req = async () => {
      const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${server.bootstrapSecret}` }, body });
      const text = await res.text();
      if (res.status !== 200 || text.includes('"errors"')) throw new Error(text.slice(0, 300));
    };
    for (let i = 0; i < 300; i++) await req();
    const session = new inspector.Session();
    session.connect();
    const post = (method: string, params?: object) => new Promise<any>((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
    await post('Profiler.start');
    const t = performance.now();
    for (let i = 0; i < 400; i++) await req();
    const ms = (performance.now() - t) / 400;
    const { profile } = await post('Profiler.stop');
    // Self time per function, and inclusive time for a few markers.
    const byId = new Map<number, any>(profile.nodes.map((n: any) => [n.id, n]));
    const self = new Map<number, number>();
    for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const agg = new Map<string, number>();
    for (const [id, us] of self) {
      const n = byId.get(id);
      const f = n.callFrame;
      const where = f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/\/work\/main\//, '');
      const key = `${f.functionName || '(anon)'} ${where.split('/').slice(0, 3).join('/')}`;
      agg.set(key, (agg.get(key) ?? 0) + us);
    }
    const pkg = new Map<string, number>();
    for (const [id, us] of self) {
      const url: string = byId.get(id).callFrame.url;
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
      const k = m ? m[1] : url.includes('/work/main/src') ? 'src/' + url.split('/work/main/src/')[1]?.split('/')[0] : url.startsWith('node:') ? 'node core' : url === '' ? '(native/gc/idle)' : url;
      pkg.set(k, (pkg.get(k) ?? 0) + us);
    }
    console.log(`page request ${ms.toFixed(2)} ms mean over 400 (client in the same process)`);
    console.log('self time by package:');
    for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${((100 * v) / total).toFixed(1)}%  ${k}`);
    console.log('top functions (self):');
    for (const [k, v] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${((100 * v) / total).toFixed(1)}%  ${k}`);
  } finally {
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
