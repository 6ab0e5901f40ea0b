/**
 * Retro-hunt benchmark (#17): stored uploads under a large policy, then entries added that a small share of the
 * uploads saw. Measures finding the affected uploads (planning: address sets against the changed ranges), the
 * whole retro-hunt (planning, re-running the affected uploads through the processor, completion), and the
 * address sets' size against the stored compressed captures; beside them, in the same run, the time re-running
 * every stored upload takes (the baseline a service without address sets pays).
 *
 *   node -r @swc-node/register bench/retro-hunt.bench.ts [--uploads 100] [--upload-mb 1] [--entries 200000]
 *        [--added 10000] [--affected-share 0.01] [--per-day 60] [--baseline rerun|first]
 *
 * The issue's full size is --uploads 2000 --entries 1000000 (2 GB of text to process twice: far past this shared
 * machine's 2 minutes); the defaults scale it down. SQLite in memory, the processor on this thread (PARSE_THREADS=0).
 * Prints figures; asserts nothing.
 */
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { loadConfig } from '../src/config/config';
import { createDataSource } from '../src/db/data-source';
import { createServices, Services } from '../src/app/services';
import { bulkInsert } from '../src/db/bulk';
import { cidr4, cidr6 } from '../src/common/net/cidr';
import { formatIpv4 } from '../src/common/net';
import { IOC_COLUMNS, iocRow, lockList, touchList } from '../src/modules/ioc/ioc.service';
import { IocCategory, IocListKind } from '../src/modules/ioc/ioc.enums';
import { IpType } from '../src/modules/device/device.enums';
import { LogUpload } from '../src/modules/log-upload/log-upload.entity';
import { LogUploadStatus, UploadSource } from '../src/modules/log-upload/log-upload.enums';
import { BLOB_CHUNK_BYTES } from '../src/modules/log-upload/log-upload-blob.entity';
import { readAddressSets } from '../src/modules/log-upload/address-set.store';
import { generateTcpdumpText } from './lib/tcpdump-text';
import { generateIocSet } from './lib/ioc-set';
import { argValue } from './lib/args';

const UPLOADS = Number(argValue('uploads') ?? 100);
const UPLOAD_BYTES = Math.round(Number(argValue('upload-mb') ?? 1) * 1e6);
const ENTRIES = Number(argValue('entries') ?? 200_000);
const ADDED = Number(argValue('added') ?? 10_000);
const AFFECTED_SHARE = Number(argValue('affected-share') ?? 0.01);
const PER_DAY = Number(argValue('per-day') ?? 60);
const BASELINE = argValue('baseline') ?? 'rerun';
if (BASELINE !== 'rerun' && BASELINE !== 'first') throw new Error('--baseline: rerun or first');
const progress = (msg: string) => process.stderr.write(`[retro-hunt.bench +${(performance.now() / 1000).toFixed(1)}s] ${msg}\n`);

async function processAll(s: Services): Promise<number> {
  let n = 0;
  for (;;) {
    const job = await s.queue.claim('bench', 600_000);
    if (!job) return n;
    const outcome = await s.processor.process(job.uploadId, 'bench');
    if (outcome.status !== 'COMPLETED') throw new Error(`upload ${job.uploadId}: ${outcome.status} ${outcome.error ?? ''}`);
    n++;
  }
}

async function main(): Promise<void> {
  const config = {
    // The seeded uploads span days: with a retention period, hunts would leave the oldest to the purge.
    ...loadConfig({ NODE_ENV: 'test', PARSE_THREADS: '0', RETRO_HUNT_MAX_UPLOADS: String(UPLOADS), RETENTION_DAYS: '0' }),
    database: { type: 'sqlite', file: ':memory:', url: undefined },
  } as ReturnType<typeof loadConfig>;
  const ds = createDataSource(config.database);
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const s = createServices(ds, config);
  const boot = await s.accounts.bootstrap('bench');
  if (!boot) throw new Error('no account');
  const accountId = boot.apiKey.accountId;
  const policy = await s.policies.create(accountId, { name: 'p' });
  const list = await s.iocLists.create(accountId, { name: 'big', kind: IocListKind.BLOCK, severity: 4, category: IocCategory.C2_BOTNET });
  const late = await s.iocLists.create(accountId, { name: 'late intel', kind: IocListKind.BLOCK, severity: 5, category: IocCategory.C2_BOTNET });
  if (!policy.ok || !list.ok || !late.ok) throw new Error('setup');
  await s.policies.attachIocLists(accountId, policy.value.id, [list.value.id, late.value.id]);
  const device = await s.devices.create(accountId, {
    nickname: 'edge',
    ipType: IpType.STATIC,
    ipAddress: '93.184.216.34',
    policyId: policy.value.id,
    internalNetworks: [],
  });
  if (!device.ok) throw new Error('device');

  progress(`${ENTRIES} entries`);
  const set = generateIocSet(ENTRIES, 7);
  await ds.transaction(async (em) => {
    const l = await lockList(em, accountId, list.value.id);
    const now = Date.now();
    let rows: unknown[][] = [];
    for (let i = 0; i < set.n4; i++) rows.push(iocRow(accountId, list.value.id, cidr4(set.v4Net[i], set.v4Prefix[i]), null, null, now));
    for (let i = 0; i < set.v6Net.length; i++) rows.push(iocRow(accountId, list.value.id, cidr6(set.v6Net[i], set.v6Prefix[i]), null, null, now));
    for (let i = 0; i < rows.length; i += 20_000) await bulkInsert(em, 'ioc', IOC_COLUMNS, rows.slice(i, i + 20_000));
    await touchList(em, l!, rows.length, false);
    rows = [];
  });

  progress(`${UPLOADS} uploads of ${UPLOAD_BYTES / 1e6} MB, stored as the upload path stores them (gzip, chunked), ${PER_DAY} a day`);
  let storedBytes = 0;
  // Seeding in bulk: 25 uploads (rows and chunks) per transaction.
  for (let first = 0; first < UPLOADS; first += 25) {
    const batch = Array.from({ length: Math.min(25, UPLOADS - first) }, (_, k) => {
      const i = first + k;
      const text = generateTcpdumpText({ targetBytes: UPLOAD_BYTES, seed: 1000 + i, hot: { v4: set.hotV4, v6: set.hotV6, share: 0.002 } });
      const stored = zlib.gzipSync(text);
      storedBytes += stored.length;
      return { i, text, stored };
    });
    await ds.transaction(async (em) => {
      const repo = em.getRepository(LogUpload);
      const rows = await repo.save(
        batch.map(({ i, text, stored }) =>
          repo.create({
            accountId,
            deviceId: device.value.id,
            source: UploadSource.GRAPHQL,
            apiKeyId: null,
            fileName: `u${i}.txt`,
            size: stored.length,
            textBytes: text.length,
            storedBytes: stored.length,
            storedEncoding: 'gzip',
            md5: crypto.createHash('md5').update(text).digest('hex'),
            status: LogUploadStatus.QUEUED,
            attempts: 0,
            // 35 days of 60 a day at the full size: the newest now.
            receivedAt: new Date(Date.now() - (UPLOADS - i) * (86_400_000 / PER_DAY)),
            progressBytes: 0,
            progressLines: 0,
            hitsPurged: 0,
          }),
        ),
        { chunk: 25 },
      );
      const chunks: unknown[][] = [];
      rows.forEach((row, k) => {
        const stored = batch[k].stored;
        for (let off = 0, seq = 0; off < stored.length; off += BLOB_CHUNK_BYTES, seq++)
          chunks.push([row.id, seq, stored.subarray(off, off + BLOB_CHUNK_BYTES)]);
      });
      for (let c = 0; c < chunks.length; c += 200) await bulkInsert(em, 'log_upload_blob', ['upload_id', 'seq', 'data'], chunks.slice(c, c + 200));
    });
  }
  // The index first, so that neither processing below pays its build.
  await s.iocIndexes.forPolicy(policy.value.id);
  progress('first processing of every upload');
  let t = performance.now();
  await processAll(s);
  const firstRunMs = performance.now() - t;
  await s.retroHunts.runDue(Date.now() + 60_000);

  // The baseline: re-running every stored upload. --baseline first takes the first processing above instead (the
  // same parse and match of every capture, without replacing earlier hits): half the seeding time at full size.
  let fullRerunMs = firstRunMs;
  if (BASELINE === 'rerun') {
    progress('baseline: re-running every stored upload');
    await ds.query(`UPDATE log_upload SET status = 'QUEUED', attempts = 0`);
    t = performance.now();
    await processAll(s);
    fullRerunMs = performance.now() - t;
  }

  const [{ n: setBytes }] = await ds.query(`SELECT SUM(LENGTH(data)) AS n FROM upload_address_set`);
  const [{ n: blobBytes }] = await ds.query(`SELECT SUM(LENGTH(data)) AS n FROM log_upload_blob`);

  // The new entries: one address seen by each of AFFECTED_SHARE of the uploads, the rest random public /32s.
  const ids: number[] = (await ds.query(`SELECT id FROM log_upload ORDER BY id`)).map((r: { id: number }) => Number(r.id));
  const chosen = ids.filter((_, i) => i % Math.round(1 / AFFECTED_SHARE) === 0);
  const sets = await readAddressSets(ds.manager, chosen);
  const values = new Set<string>();
  for (const id of chosen) {
    const v4 = sets.get(id)!.v4;
    values.add(formatIpv4(v4[Math.floor(v4.length / 2)]));
  }
  let seed = 12345;
  while (values.size < ADDED) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    values.add(`${[45, 52, 64, 93, 104][seed % 5]}.${(seed >>> 8) & 255}.${(seed >>> 16) & 255}.${1 + ((seed >>> 24) % 254)}`);
  }
  progress(`adding ${values.size} entries (${chosen.length} aimed at stored uploads), ${Math.ceil(values.size / 1000)} iocAdd calls, coalesced`);
  const all = [...values];
  for (let i = 0; i < all.length; i += 1000) {
    const r = await s.iocs.add(
      accountId,
      late.value.id,
      all.slice(i, i + 1000).map((value) => ({ value })),
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
  }
  const due = Date.now() + 60_000;
  t = performance.now();
  await s.retroHunts.runDue(due);
  const planMs = performance.now() - t;
  // The policy's index is rebuilt for the changed list (any upload after the change pays it too): timed apart.
  const ti = performance.now();
  await s.iocIndexes.forPolicy(policy.value.id);
  const indexMs = performance.now() - ti;
  await processAll(s);
  await s.retroHunts.runDue(due);
  const huntMs = performance.now() - t;
  const [hunt] = await ds.query(`SELECT * FROM retro_hunt ORDER BY id DESC LIMIT 1`);

  const row = (k: string, v: string) => console.log(`${k.padEnd(48)} ${v}`);
  console.log(`\nretro-hunt bench: ${UPLOADS} uploads x ${UPLOAD_BYTES / 1e6} MB text, ${ENTRIES} entries in the policy, ${values.size} added (SQLite)`);
  row('hunt', `${hunt.status}: examined ${hunt.uploads_examined}, re-run ${hunt.uploads_rerun}, hits +${hunt.hits_added} -${hunt.hits_removed}`);
  row('finding the affected uploads (planning)', `${planMs.toFixed(0)} ms  (target <= 1000 ms)`);
  row('whole retro-hunt', `${huntMs.toFixed(0)} ms  (target <= 30000 ms)`);
  row('  of which the policy index rebuild', `${indexMs.toFixed(0)} ms`);
  row(`baseline: ${BASELINE === 'rerun' ? 're-running' : 'first processing of'} every upload`, `${fullRerunMs.toFixed(0)} ms`);
  row('  first processing of every upload', `${firstRunMs.toFixed(0)} ms`);
  row('ratio whole retro-hunt / baseline', `${(huntMs / fullRerunMs).toFixed(4)}`);
  row('ratio without the index rebuild', `${((huntMs - indexMs) / fullRerunMs).toFixed(4)}`);
  row(
    'address sets / stored compressed captures',
    `${Number(setBytes)} / ${Number(blobBytes)} bytes = ${((100 * Number(setBytes)) / Number(blobBytes)).toFixed(2)}%  (target <= 5%)`,
  );
  row('stored compressed (generated)', `${storedBytes} bytes`);
  await ds.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
