/**
 * Alerts and live updates benchmark (#19): the real server in this process over a fresh database, a local webhook
 * receiver, and a graphql-ws client subscribed to hitsFound.
 *
 *   node -r @swc-node/register bench/alerts.bench.ts [--uploads 100] [--rules 2] [--mysql-url mysql://root@127.0.0.1:3306]
 *
 * 1. `--uploads` small uploads with hits, one after another, each from a new internal host (so each raises a new
 *    alert): the time from the upload's finishedAt (COMPLETED) to the webhook receiving its alert, and to the
 *    hitsFound event arriving; p50/p95/max beside the targets (alert <= 2 s, event <= 500 ms, p95), and their ratio
 *    to a baseline measured in the same run: the time from the upload's acknowledgment to COMPLETED. Once with a
 *    flow hit per upload (an address entry), once with a DNS hit (a query under a listed domain).
 * 2. One upload with 1,000 hits over 20 entries and 5 internal hosts, `--rules` rules: alerts sent (target:
 *    at most rules x 100, not 1,000 per rule); flow hits, then DNS hits (1,000 names under 20 listed domains).
 *
 * Default settings (ALERT_POLL_MS, LIVE_POLL_MS, WORKER_POLL_MS) unless given in the environment. Prints figures,
 * asserts nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { AddressInfo } from 'node:net';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config';
import { startServer } from '../src/app/server';
import { silentLogger } from '../src/app/logger';
import { dropMysqlDatabase, freshMysqlDatabase } from './lib/mysql-db';
import { argValue } from './lib/args';

const UPLOADS = Number(argValue('uploads') ?? 100);
const RULES = Number(argValue('rules') ?? 2);
const MYSQL_URL = argValue('mysql-url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const BAD = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);
const BAD_DOMAINS = Array.from({ length: 20 }, (_, i) => `c2-${i + 1}.bad.example`);

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-alerts-bench-'));
  const mysqlName = `pcd_alerts_bench_${process.pid}`;
  const mysql = MYSQL_URL ? { url: await freshMysqlDatabase(MYSQL_URL, mysqlName) } : null;
  const arrivals = new Map<string, number>();
  let posts = 0;
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      const body = req.headers['idempotency-key'];
      if (typeof body === 'string' && !arrivals.has(body)) arrivals.set(body, Date.now());
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
  const config = loadConfig({
    ...process.env,
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    RETENTION_DAYS: '0',
    RATE_LIMIT_UPLOADS_PER_MINUTE: '0',
    ALERT_DESTINATION_ALLOW: '127.0.0.0/8',
    ...(mysql ? { DATABASE_URL: mysql.url } : { DATA_DIR: dir }),
  });
  const server = await startServer(config, silentLogger());
  const key = server.bootstrapSecret!;
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
    const body: any = await res.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const upload = async (text: string): Promise<{ id: string; ackedAt: number }> => {
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({
        query: `mutation($f: Upload!) { logUploadCreate(input: { deviceNickname: "hq", file: $f }) { logUpload { id } userErrors { message } } }`,
        variables: { f: null },
      }),
    );
    form.append('map', JSON.stringify({ 0: ['variables.f'] }));
    form.append('0', new Blob([text]), 'capture.txt');
    const res = await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true' }, body: form });
    const body: any = await res.json();
    return { id: body.data.logUploadCreate.logUpload.id, ackedAt: Date.now() };
  };
  const finished = async (id: string): Promise<number> => {
    for (;;) {
      const u = (await gql(`query($id: ID!) { logUpload(id: $id) { status finishedAt } }`, { id })).logUpload;
      if (u.status === 'COMPLETED') return Date.parse(u.finishedAt);
      if (u.status === 'FAILED') throw new Error(`upload ${id} failed`);
      await sleep(20);
    }
  };

  const policy = (await gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (await gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 4, category: MALWARE }) { iocList { id } } }`)).iocListCreate
    .iocList.id;
  await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: BAD.map((value) => ({ value })) } });
  const domains = (
    await gql(`mutation { iocListCreate(input: { name: "bad domains", kind: BLOCK, entryKind: DOMAIN, severity: 4, category: C2_BOTNET }) { iocList { id } } }`)
  ).iocListCreate.iocList.id;
  await gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: domains, entries: BAD_DOMAINS.map((value) => ({ value })) } });
  await gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list, domains] } });
  await gql(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, {
    i: { nickname: 'hq', ipType: 'STATIC', ipAddress: '8.8.8.8', policy },
  });
  const dest = (
    await gql(`mutation($i: AlertDestinationCreateInput!) { alertDestinationCreate(input: $i) { alertDestination { id } } }`, {
      i: { name: 'hook', webhook: { url: hookUrl } },
    })
  ).alertDestinationCreate.alertDestination.id;
  const rules: string[] = [];
  for (let r = 0; r < RULES; r++) {
    rules.push(
      (await gql(`mutation($i: AlertRuleCreateInput!) { alertRuleCreate(input: $i) { alertRule { id } } }`, { i: { name: `rule ${r}`, destinations: [dest] } }))
        .alertRuleCreate.alertRule.id,
    );
  }

  const events = new Map<string, number>();
  const ws = createClient({ url: server.url.replace(/^http/, 'ws'), connectionParams: { apiKey: key }, webSocketImpl: WebSocket });
  const unsubscribe = ws.subscribe<{ hitsFound: { logUpload: { id: string } } }>(
    { query: `subscription { hitsFound { logUpload { id } } }` },
    { next: (r) => r.data && events.set(r.data.hitsFound.logUpload.id, Date.now()), error: (e) => console.error(e), complete: () => undefined },
  );
  await sleep(500);

  // 1. Latency after COMPLETED: flow hits (an address entry), then DNS hits (a domain entry).
  const latency = async (lineOf: (u: number, host: string) => string) => {
    const alertMs: number[] = [];
    const eventMs: number[] = [];
    const processMs: number[] = [];
    for (let u = 0; u < UPLOADS; u++) {
      const seen = new Set(arrivals.keys());
      const { id, ackedAt } = await upload(`${lineOf(u, `10.${hostBlock}.${u % 250}.9`)}\n`);
      const doneAt = await finished(id);
      processMs.push(doneAt - ackedAt);
      // One new alert per rule; the first to arrive counts.
      while (arrivals.size < seen.size + RULES) await sleep(5);
      const first = Math.min(...[...arrivals].filter(([k]) => !seen.has(k)).map(([, at]) => at));
      alertMs.push(first - doneAt);
      while (!events.has(id)) await sleep(5);
      eventMs.push(events.get(id)! - doneAt);
      if (u % 250 === 249) hostBlock++;
    }
    hostBlock++;
    return { alertMs, eventMs, processMs };
  };
  // Each upload from a new internal host, so each raises a new alert.
  let hostBlock = 0;
  const ip = await latency((u, host) => `${(1717000000 + u).toFixed(6)} IP ${host}.40000 > ${BAD[u % BAD.length]}.443: Flags [S], seq 1, win 1, length 0`);
  const dns = await latency(
    (u, host) => `${(1717100000 + u).toFixed(6)} IP ${host}.40000 > 9.9.9.9.53: ${4000 + u}+ A? www.${BAD_DOMAINS[u % BAD_DOMAINS.length]}. (40)`,
  );

  // 2. Throttle: 1,000 hits over 20 entries and 5 hosts, flow hits and then DNS hits (1,000 distinct names under 20
  // listed domains: a DNS hit is a (host, name, type), so each name is a hit of its own).
  const throttle = async (lineOf: (i: number) => string) => {
    const postsBefore = posts;
    const big = await upload(`${Array.from({ length: 1000 }, (_, i) => lineOf(i)).join('\n')}\n`);
    await finished(big.id);
    const counts = (await gql(`query($id: ID!) { logUpload(id: $id) { hits dnsHits } }`, { id: big.id })).logUpload;
    for (let i = 0; i < 100; i++) {
      const pending = (await gql(`{ alertDeliveries(filter: { status: PENDING }) { totalCount } }`)).alertDeliveries.totalCount;
      if (pending === 0) break;
      await sleep(100);
    }
    await sleep(1500);
    return { hits: counts.hits + counts.dnsHits, sent: posts - postsBefore };
  };
  const ipThrottle = await throttle(
    (i) => `${(1718000000 + i).toFixed(6)} IP 10.200.0.${1 + (i % 5)}.${20000 + i} > ${BAD[Math.floor(i / 5) % 20]}.443: Flags [S], seq 1, win 1, length 0`,
  );
  const dnsThrottle = await throttle(
    (i) => `${(1718100000 + i).toFixed(6)} IP 10.201.0.${1 + (i % 5)}.${20000 + i} > 9.9.9.9.53: ${i}+ A? n${i}.${BAD_DOMAINS[Math.floor(i / 5) % 20]}. (40)`,
  );

  const line = (name: string, xs: number[], target: string) =>
    console.log(
      `${name.padEnd(38)} p50 ${String(pct(xs, 50)).padStart(5)} ms  p95 ${String(pct(xs, 95)).padStart(5)} ms  max ${String(Math.max(...xs)).padStart(5)} ms  ${target}`,
    );
  console.log(
    `alerts bench: ${mysql ? 'MySQL' : 'SQLite'}, ${UPLOADS} uploads of each kind, ${RULES} rules, ALERT_POLL_MS=${config.alerts.pollMs}, LIVE_POLL_MS=${config.livePollMs}`,
  );
  for (const [kind, r] of [
    ['IP', ip],
    ['DNS', dns],
  ] as const) {
    line(`${kind}: baseline acknowledged->COMPLETED`, r.processMs, '');
    line(
      `${kind}: alert delivered after COMPLETED`,
      r.alertMs,
      `target p95 <= 2000 ms; p95 ratio to baseline ${(pct(r.alertMs, 95) / Math.max(1, pct(r.processMs, 95))).toFixed(2)}`,
    );
    line(
      `${kind}: hitsFound event after COMPLETED`,
      r.eventMs,
      `target p95 <= 500 ms; p95 ratio to baseline ${(pct(r.eventMs, 95) / Math.max(1, pct(r.processMs, 95))).toFixed(2)}`,
    );
  }
  for (const [kind, r] of [
    ['IP', ipThrottle],
    ['DNS', dnsThrottle],
  ] as const)
    console.log(
      `throttle ${kind}: ${r.hits} hits over 20 entries x 5 hosts, ${RULES} rules -> ${r.sent} alerts sent (target <= ${RULES * 100}; unthrottled would be ${r.hits * RULES})`,
    );

  unsubscribe();
  await ws.dispose();
  await server.stop();
  receiver.close();
  if (MYSQL_URL) await dropMysqlDatabase(MYSQL_URL, mysqlName);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
