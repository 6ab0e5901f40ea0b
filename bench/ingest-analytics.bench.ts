/**
 * Ingestion with the ClickHouse analytics tier against without it (#16): the ingest bench's setup (a policy with a
 * 1M-entry BLOCK list, 15 MB `tcpdump -tt -n` uploads through the GraphQL multipart mutation, the worker to
 * COMPLETED), on two servers in this process over the same kind of SQL database: one without ANALYTICS_URL (the
 * hits go to SQL) and one with it at chDB (the hits go to ClickHouse; ANALYTICS_URL=chdb://…). Each run sends the
 * same file to both, one after the other, the order alternating, and times ack -> COMPLETED (the response received
 * until the worker's finishing transaction committed, and for the analytics tier the superseded rows settled).
 *
 *   node -r @swc-node/register --expose-gc bench/ingest-analytics.bench.ts [--db sqlite|mysql] [--entries 1000000]
 *        [--runs 10] [--mysql-url mysql://root@127.0.0.1:3306] [--control]
 *
 * --control: the second server without ANALYTICS_URL too (an A/A run): the ratio it prints is this machine's noise
 * between two identical servers, the margin any A/B ratio of this bench carries.
 *
 * Prints each mode's median and p95 and the ratio with/without (target <= 1.2x); asserts nothing (rule 12). Needs
 * chDB (npm install --prefix tools/chdb).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/config';
import { startServer, RunningServer } from '../src/app/server';
import { silentLogger } from '../src/app/logger';
import { bulkInsert } from '../src/db/bulk';
import { cidr4, cidr6 } from '../src/common/net/cidr';
import { idOfType } from '../src/common/ids/global-id';
import { IOC_COLUMNS, iocRow, lockList, touchList } from '../src/modules/ioc/ioc.service';
import { IocCategory, IocListKind } from '../src/modules/ioc/ioc.enums';
import { IpType } from '../src/modules/device/device.enums';
import { ProcessOutcome } from '../src/modules/log-upload/log-upload.processor';
import { chdbInstalled } from '../src/modules/analytics/analytics-client';
import { generateTcpdumpText } from './lib/tcpdump-text';
import { generateIocSet, IocSet } from './lib/ioc-set';
import { dropMysqlDatabase, freshMysqlDatabase } from './lib/mysql-db';
import { argValue } from './lib/args';

const DB = (argValue('db') ?? 'sqlite') as 'sqlite' | 'mysql';
if (DB !== 'sqlite' && DB !== 'mysql') throw new Error(`--db must be sqlite or mysql, not ${String(DB)}`);
const ENTRIES = Number(argValue('entries') ?? 1_000_000);
const CONTROL = process.argv.includes('--control');
const RUNS = Number(argValue('runs') ?? 10);
const MYSQL_URL = argValue('mysql-url') ?? 'mysql://root@127.0.0.1:3306';
const MAX_UPLOAD = 15_000_000;
const FILE_TARGET = MAX_UPLOAD - 400;
const TARGET_RATIO = 1.2;

const clock = () => performance.timeOrigin + performance.now();
const progress = (msg: string) => process.stderr.write(`[ingest-analytics.bench +${(performance.now() / 1000).toFixed(1)}s] ${msg}\n`);
const gc = (globalThis as { gc?: () => void }).gc;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

type Mode = 'sql' | 'clickhouse';

interface Side {
  mode: Mode;
  server: RunningServer;
  token: string;
  done: Map<number, { at: number; outcome: ProcessOutcome }>;
  waiters: Map<number, () => void>;
  /** ms in the hit writer's ClickHouse steps, per upload: staging (compare + insert) and settling. */
  stageMs: Map<number, number>;
  settleMs: Map<number, number>;
  cleanup: () => Promise<void>;
}

async function insertIocs(ds: DataSource, accountId: number, listId: number, set: IocSet): Promise<number> {
  const now = Date.now();
  return ds.transaction(async (em) => {
    const list = await lockList(em, accountId, listId);
    if (!list) throw new Error('list vanished');
    let inserted = 0;
    let rows: unknown[][] = [];
    const flush = async () => {
      inserted += await bulkInsert(em, 'ioc', IOC_COLUMNS, rows);
      rows = [];
    };
    for (let i = 0; i < set.n4; i++) {
      rows.push(iocRow(accountId, listId, cidr4(set.v4Net[i], set.v4Prefix[i]), null, null, now));
      if (rows.length === 20_000) await flush();
    }
    for (let i = 0; i < set.v6Net.length; i++) {
      rows.push(iocRow(accountId, listId, cidr6(set.v6Net[i], set.v6Prefix[i]), null, null, now));
      if (rows.length === 20_000) await flush();
    }
    await flush();
    await touchList(em, list, inserted, false);
    return inserted;
  });
}

async function startSide(mode: Mode, set: IocSet, tmp: string): Promise<Side> {
  const env: Record<string, string> = { NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', RETENTION_DAYS: '0', REPORT_MEMORY_MAX_HITS: '0' };
  let dropDb = async () => undefined as void;
  if (DB === 'sqlite') env.DATA_DIR = path.join(tmp, `sqlite-${mode}`);
  else {
    const name = `pcd_bench_ingest_${mode}`;
    env.DATABASE_URL = await freshMysqlDatabase(MYSQL_URL, name);
    dropDb = () => dropMysqlDatabase(MYSQL_URL, name);
  }
  const tier = mode === 'clickhouse' && !CONTROL;
  if (tier) env.ANALYTICS_URL = `chdb://${path.join(tmp, 'chdb')}`;
  const server = await startServer(loadConfig(env), silentLogger());
  const s = server.services;
  if (tier) {
    for (let i = 0; i < 100 && !s.analytics!.ready; i++) await new Promise((r) => setTimeout(r, 100));
    if (!s.analytics!.ready) throw new Error('chDB tables not migrated');
  }
  const token = server.bootstrapSecret;
  if (!token) throw new Error('expected a fresh database');
  const account = await s.accounts.findAccountByName('default');
  const policy = await s.policies.create(account!.id, { name: 'Bench policy' });
  const list = await s.iocLists.create(account!.id, { name: 'Bench blocklist', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.C2_BOTNET });
  if (!policy.ok || !list.ok) throw new Error('setup failed');
  await s.policies.attachIocLists(account!.id, policy.value.id, [list.value.id]);
  const device = await s.devices.create(account!.id, {
    nickname: 'bench sensor',
    ipType: IpType.STATIC,
    ipAddress: '93.184.216.34',
    policyId: policy.value.id,
    internalNetworks: [],
  });
  if (!device.ok) throw new Error('device setup failed');
  progress(`${mode}: inserting ${ENTRIES.toLocaleString('en')} IOC entries`);
  await insertIocs(server.dataSource, account!.id, list.value.id, set);
  progress(`${mode}: waiting for the index warm-up`);
  await s.indexWarmer.idle();
  await s.iocIndexes.forPolicy(policy.value.id);
  progress(`${mode}: index ready`);
  const side: Side = {
    mode,
    server,
    token,
    done: new Map(),
    waiters: new Map(),
    stageMs: new Map(),
    settleMs: new Map(),
    cleanup: async () => {
      await server.stop();
      await dropDb();
    },
  };
  const writer = s.hitWriter;
  const stage = writer.stageUpload.bind(writer);
  writer.stageUpload = async (...args) => {
    const t = performance.now();
    const out = await stage(...args);
    const upload = args[1];
    side.stageMs.set(upload.uploadId, performance.now() - t);
    return out;
  };
  const settle = writer.settle.bind(writer);
  writer.settle = async (staged) => {
    const t = performance.now();
    await settle(staged);
    if (staged) side.settleMs.set(staged.uploadId, performance.now() - t);
  };
  const processor = s.processor;
  const process = processor.process.bind(processor);
  processor.process = async (uploadId, owner, signal) => {
    const outcome = await process(uploadId, owner, signal);
    side.done.set(uploadId, { at: clock(), outcome });
    side.waiters.get(uploadId)?.();
    return outcome;
  };
  return side;
}

const UPLOAD = `mutation Upload($input: LogUploadCreateInput!) { logUploadCreate(input: $input) { logUpload { id } duplicate userErrors { message } } }`;

/** One upload: the time from the response to COMPLETED, and the hits. */
async function uploadOnce(
  side: Side,
  file: string,
): Promise<{ ackMs: number; ackToCompletedMs: number; processMs: number; hits: number; stageMs: number; settleMs: number }> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { deviceNickname: 'bench sensor', file: null } } }));
  form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.append('0', await fs.openAsBlob(file, { type: 'text/plain' }), path.basename(file));
  const t0 = clock();
  const res = await fetch(side.server.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${side.token}`, 'apollo-require-preflight': 'true' },
    body: form,
  });
  const body = (await res.json()) as { data?: { logUploadCreate: { logUpload: { id: string } | null; duplicate: boolean } } };
  const acked = clock();
  const created = body.data?.logUploadCreate;
  if (!created?.logUpload || created.duplicate) throw new Error(`upload refused: ${JSON.stringify(body)}`);
  const id = idOfType(created.logUpload.id, 'LogUpload')!;
  if (!side.done.has(id)) await new Promise<void>((resolve) => side.waiters.set(id, resolve));
  const done = side.done.get(id)!;
  if (done.outcome.status !== 'COMPLETED') throw new Error(`${side.mode}: upload ${id} ${done.outcome.status}`);
  return {
    ackMs: acked - t0,
    ackToCompletedMs: done.at - acked,
    processMs: done.outcome.durationMs,
    hits: done.outcome.hits,
    stageMs: side.stageMs.get(id) ?? 0,
    settleMs: side.settleMs.get(id) ?? 0,
  };
}

async function main(): Promise<void> {
  if (!chdbInstalled()) throw new Error('chDB is not installed: npm install --prefix tools/chdb');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-ingest-analytics-'));
  const load0 = os.loadavg();
  const sides: Side[] = [];
  try {
    progress(`generating ${ENTRIES.toLocaleString('en')} IOC entries and ${RUNS + 1} files of ${(FILE_TARGET / 1e6).toFixed(0)} MB`);
    const set = generateIocSet(ENTRIES, 7);
    const hot = { v4: set.hotV4, v6: set.hotV6, share: 0.02 };
    const files = Array.from({ length: RUNS + 1 }, (_, i) => {
      const file = path.join(tmp, `upload-${i}.txt`);
      fs.writeFileSync(file, generateTcpdumpText({ targetBytes: FILE_TARGET, seed: 200 + i, hot }));
      return file;
    });
    for (const mode of ['sql', 'clickhouse'] as const) sides.push(await startSide(mode, set, tmp));
    // A warm-up upload each (JIT, first parse thread, chDB's first insert), not counted.
    for (const side of sides) {
      const f = await uploadOnce(side, files[RUNS]);
      progress(`warm-up ${side.mode}: ack -> COMPLETED ${f.ackToCompletedMs.toFixed(0)} ms, ${f.hits} hits`);
    }
    const figures: Record<Mode, Array<Awaited<ReturnType<typeof uploadOnce>>>> = { sql: [], clickhouse: [] };
    for (let run = 0; run < RUNS; run++) {
      const order = run % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        gc?.();
        const f = await uploadOnce(side, files[run]);
        figures[side.mode].push(f);
        progress(`run ${run + 1}/${RUNS} ${side.mode}: ack ${f.ackMs.toFixed(0)} ms, ack -> COMPLETED ${f.ackToCompletedMs.toFixed(0)} ms, ${f.hits} hits`);
      }
    }
    const hits = figures.sql.map((f) => f.hits);
    if (figures.clickhouse.some((f, i) => f.hits !== hits[i])) throw new Error('the two modes found different hits');
    const row = (mode: Mode) => {
      const xs = figures[mode].map((f) => f.ackToCompletedMs);
      const median = (pick: (f: (typeof figures)[Mode][number]) => number) => pct(figures[mode].map(pick), 50);
      return {
        p50: pct(xs, 50),
        p95: pct(xs, 95),
        ack: median((f) => f.ackMs),
        process: median((f) => f.processMs),
        stage: median((f) => f.stageMs),
        settle: median((f) => f.settleMs),
      };
    };
    const sql = row('sql');
    const ch = row('clickhouse');
    const ratio50 = ch.p50 / sql.p50;
    const ratio95 = ch.p95 / sql.p95;
    const cpu = os.cpus();
    console.log(
      `node ${process.version}, ${cpu[0]?.model ?? 'cpu'} x${cpu.length}; ${DB}; ${ENTRIES.toLocaleString('en')} IOC entries; ${RUNS} interleaved runs of a ${(fs.statSync(files[0]).size / 1e6).toFixed(1)} MB upload (${pct(hits, 50)} hits median); load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, now ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    // The worker starts before the client has its answer: ack -> COMPLETED is what is left of the processing then.
    console.log(`ack -> COMPLETED    median     p95        | processing (claim -> COMPLETED) median | ack median`);
    for (const [name, r] of [
      ['SQL (no tier)    ', sql],
      [CONTROL ? 'SQL again (A/A)  ' : 'ClickHouse (chDB)', ch],
    ] as const)
      console.log(
        `  ${name} ${r.p50.toFixed(0).padStart(6)} ms  ${r.p95.toFixed(0).padStart(6)} ms  | ${r.process.toFixed(0).padStart(6)} ms | ${r.ack.toFixed(0)} ms`,
      );
    if (CONTROL) {
      console.log(
        `  A/A ratio (--control: both servers without the tier): median ${ratio50.toFixed(2)}x, p95 ${ratio95.toFixed(2)}x (1.00x but for this machine's noise)`,
      );
      return;
    }
    console.log(
      `  of which, ClickHouse: hits compared and inserted (before the COMPLETED transaction) ${ch.stage.toFixed(0)} ms, superseded rows removed ${ch.settle.toFixed(0)} ms (medians)`,
    );
    console.log(
      `  ratio ClickHouse / SQL: ack -> COMPLETED median ${ratio50.toFixed(2)}x, p95 ${ratio95.toFixed(2)}x (target <= ${TARGET_RATIO}x: ${ratio50 <= TARGET_RATIO ? 'MET' : 'MISSED'} at the median); processing median ${(ch.process / sql.process).toFixed(2)}x`,
    );
  } finally {
    for (const side of sides) await side.cleanup().catch((err) => progress(`cleanup: ${String(err)}`));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
