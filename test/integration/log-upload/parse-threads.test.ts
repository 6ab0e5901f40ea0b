import fs from 'node:fs';
import { threadTime } from '../../../src/common/threads/thread-priority';
import net from 'node:net';
import path from 'node:path';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { upload } from '../../helpers/ingest';
import { generateCapture, GeneratedCapture } from '../../helpers/capture';
import { captureLog } from '../../helpers/logs';
import type { FaultMode } from '../../helpers/faulty-parse-thread';
import { LogUploadProcessor, ProcessOutcome } from '../../../src/modules/log-upload/log-upload.processor';
import { INSERT_COLUMNS } from '../../../src/modules/flow-hit/flow-hit.columns';
import { LogUploadWorker } from '../../../src/modules/log-upload/log-upload.worker';
import { ParsePool } from '../../../src/modules/log-upload/parse-thread/parse-pool';
import { SLICE } from '../../../src/modules/log-upload/parse-thread/parse-stored-file';
import { idOfType } from '../../../src/common/ids/global-id';

const FIXTURE = path.resolve(__dirname, '../../fixtures/tcpdump');
const FAULTY = path.resolve(__dirname, '../../helpers/faulty-parse-thread.ts');
const RESULT_COLUMNS =
  'status, error, line_count, packet_lines, skipped_lines, skipped, connections, inbound_connections, outbound_connections, hits, warnings, first_capture_at, last_capture_at, progress_bytes, progress_lines';

/** Every fixture capture's addresses (the expected rows' source and destination), so that the corpus has hits. */
function fixtureAddresses(): string[] {
  const out = new Set<string>();
  for (const f of fs.readdirSync(path.join(FIXTURE, 'expected'))) {
    for (const line of fs.readFileSync(path.join(FIXTURE, 'expected', f), 'utf8').split('\n')) {
      const cols = line.split('\t');
      for (const ip of [cols[1], cols[3]]) if (ip && net.isIP(ip)) out.add(ip);
    }
  }
  return [...out];
}

describe.each(drivers)('upload parsing on parse threads (%s)', (driver) => {
  let t: TestApp;
  const captures: GeneratedCapture[] = [];
  let nextSeed = 100;

  /**
   * A capture of several slices (5000 connections of 14 packets: about 2.4 MB), its bad servers on the policy's
   * list; a new one each call (no duplicates).
   */
  async function bigCapture(flows = 5000, packetsPerFlow = 12): Promise<GeneratedCapture> {
    const capture = generateCapture(nextSeed++, flows, packetsPerFlow);
    captures.push(capture);
    await addEntries(capture.badAddresses);
    return capture;
  }
  let listId: string;
  const addEntries = async (values: string[]) => {
    const r = ok(
      await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
        i: { list: listId, entries: values.map((value) => ({ value })) },
      }),
    ).iocAdd;
    expect(r.userErrors).toEqual([]);
  };
  const uploadText = async (text: Buffer | string): Promise<{ gqlId: string; duplicate: boolean }> => {
    const r = ok(await upload(t, text, { deviceNickname: 'edge' })).logUploadCreate;
    expect(r.userErrors).toEqual([]);
    return { gqlId: r.logUpload.id, duplicate: r.duplicate };
  };
  const reprocess = async (gqlId: string) => {
    expect(
      ok(await t.gql(`mutation($i: LogUploadReprocessInput!) { logUploadReprocess(input: $i) { userErrors { code } } }`, { i: { id: gqlId } }))
        .logUploadReprocess.userErrors,
    ).toEqual([]);
  };
  /** Claims the one queued job and runs `processor` on it. */
  const processNext = async (processor: LogUploadProcessor, signal?: AbortSignal): Promise<{ uploadId: number; outcome: ProcessOutcome }> => {
    const job = await t.services.queue.claim('test-worker', 60_000);
    if (!job) throw new Error('no job queued');
    return { uploadId: job.uploadId, outcome: await processor.process(job.uploadId, 'test-worker', signal) };
  };
  /** The upload's stored counts and skipped lines, and its hits (every column but the id), in a fixed order. */
  const stored = async (uploadId: number) => {
    const [row] = await t.dataSource.query(`SELECT ${RESULT_COLUMNS} FROM log_upload WHERE id = ?`, [uploadId]);
    const hits: Array<Record<string, unknown>> = await t.dataSource.query(
      `SELECT ${INSERT_COLUMNS.map((c) => c.sql).join(', ')} FROM flow_hit WHERE upload_id = ?`,
      [uploadId],
    );
    // The retention warning names the cutoff, which moves with the clock between the two runs.
    const normal = (r: Record<string, unknown>) =>
      JSON.stringify(Object.entries(r).map(([k, v]) => [k, v == null ? null : String(v).replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<cutoff>')]));
    return { row: normal(row), status: row.status as string, hitCount: hits.length, hits: hits.map(normal).sort() };
  };
  const inProcess = (options: { onProgress?: (uploadId: number, bytes: number) => void } = {}) =>
    new LogUploadProcessor(t.dataSource, t.services.queue, t.services.iocIndexes, {
      leaseMs: 60_000,
      retentionDays: t.services.config.retention.days,
      ...options,
    });
  const onThreads = (pool: ParsePool, options: { onProgress?: (uploadId: number, bytes: number) => void } = {}) =>
    new LogUploadProcessor(
      t.dataSource,
      t.services.queue,
      t.services.iocIndexes,
      { leaseMs: 60_000, retentionDays: t.services.config.retention.days, ...options },
      pool,
    );

  beforeAll(async () => {
    // The corpus is more uploads than a minute's allowance.
    t = await createTestApp(driver, { RATE_LIMIT_UPLOADS_PER_MINUTE: '0' });
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    listId = ok(await t.gql(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    await addEntries(fixtureAddresses());
    ok(await t.gql(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [listId] } }));
    ok(
      await t.gql(
        `mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p, internalNetworks: ["100.64.0.0/16"] }) { device { id } } }`,
        { p: policy },
      ),
    );
  });
  afterAll(() => t.close());

  it('stores the same counts, skipped lines and hits as parsing on the main thread, over the fixture corpus and a capture of several slices', async () => {
    expect(t.services.parsers).not.toBeNull();
    const files: Buffer[] = ['ascii', 'variants'].flatMap((dir) =>
      fs.readdirSync(path.join(FIXTURE, dir)).map((f) => fs.readFileSync(path.join(FIXTURE, dir, f))),
    );
    const big = await bigCapture();
    files.push(big.text);
    expect(big.text.length).toBeGreaterThan(2 * SLICE);
    let compared = 0;
    let hits = 0;
    const statuses = new Set<string>();
    for (const text of files) {
      const { gqlId, duplicate } = await uploadText(text);
      if (duplicate) continue;
      const threaded = await processNext(t.services.processor);
      const onThread = await stored(threaded.uploadId);
      await reprocess(gqlId);
      const main = await processNext(inProcess());
      expect(main.uploadId).toBe(threaded.uploadId);
      expect(main.outcome).toMatchObject({
        status: threaded.outcome.status,
        lines: threaded.outcome.lines,
        packets: threaded.outcome.packets,
        connections: threaded.outcome.connections,
        hits: threaded.outcome.hits,
        textBytes: threaded.outcome.textBytes,
      });
      expect(await stored(main.uploadId)).toEqual(onThread);
      // The parse's own time on its thread is known for a parse on a thread only, where Linux tells it.
      expect(main.outcome.parseThread).toBeUndefined();
      if (threaded.outcome.status === 'COMPLETED') expect(threaded.outcome.parseThread !== undefined).toBe(threadTime() !== null);
      compared++;
      hits += onThread.hitCount;
      statuses.add(onThread.status);
    }
    // The comparison covered uploads with hits, and uploads refused for their missing -tt timestamps.
    expect(compared).toBeGreaterThan(50);
    expect(hits).toBeGreaterThan(big.badFlows);
    expect([...statuses].sort()).toEqual(['COMPLETED', 'FAILED']);
    expect(t.services.parsers!.size).toBe(1);
  });

  it('hands a job back at once on abort (shutdown) and the thread takes the next job', async () => {
    const pool = new ParsePool({ threads: 1 });
    try {
      const capture = await bigCapture();
      const { gqlId } = await uploadText(capture.text);
      const abort = new AbortController();
      const progress: number[] = [];
      const aborted = await processNext(
        onThreads(pool, {
          onProgress: (_id, bytes) => {
            progress.push(bytes);
            abort.abort();
          },
        }),
        abort.signal,
      );
      expect(aborted.outcome).toMatchObject({ status: 'LEASE_LOST', hits: 0 });
      expect(progress).toHaveLength(1);
      expect(await stored(aborted.uploadId)).toMatchObject({ status: 'PROCESSING', hitCount: 0 });
      // As the worker's stop(true) does: the job goes back to the queue, and runs to its end on the same thread.
      expect(await t.services.queue.release(aborted.uploadId, 'test-worker')).toBe(true);
      const again = await processNext(onThreads(pool));
      expect(again).toMatchObject({ uploadId: aborted.uploadId, outcome: { status: 'COMPLETED', hits: capture.badFlows } });
      expect(pool.size).toBe(1);
      expect(ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status hits } }`, { id: gqlId })).logUpload).toEqual({
        status: 'COMPLETED',
        hits: capture.badFlows,
      });
    } finally {
      await pool.close();
    }
  });

  it.each<[FaultMode, string]>([
    ['throw', 'injected parse failure'],
    ['exit', 'The parse thread exited (code 3).'],
    ['crash', 'The parse thread failed: injected uncaught error'],
  ])('fails the job with a clear error when the thread fails mid-file (%s), stays up, and parses the reprocess on a new thread', async (mode, reason) => {
    const faults = new Int32Array(new SharedArrayBuffer(4));
    faults[0] = 1;
    const exits: Error[] = [];
    const pool = new ParsePool({ threads: 1, script: FAULTY, workerData: { mode, atBytes: 2 * SLICE, faults }, onThreadExit: (err) => exits.push(err) });
    const log = captureLog();
    const worker = new LogUploadWorker(t.services.queue, onThreads(pool), { leaseMs: 60_000, pollMs: 20 }, log.logger);
    const uncaught = jest.fn();
    process.on('uncaughtException', uncaught);
    worker.start();
    try {
      const capture = await bigCapture();
      const { gqlId } = await uploadText(capture.text);
      const id = idOfType(gqlId, 'LogUpload');
      const state = async () => ok(await t.gql(`query($id: ID!) { logUpload(id: $id) { status error hits } }`, { id: gqlId })).logUpload;
      const settled = async () => {
        for (;;) {
          const s = await state();
          if (s.status === 'COMPLETED' || s.status === 'FAILED') return s;
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      worker.notify();
      expect(await settled()).toEqual({ status: 'FAILED', error: 'Internal error while processing; reprocess it to try again.', hits: 0 });
      const failed = log.events('upload.failed').find((l) => l.uploadId === id);
      expect(failed?.err?.message).toBe(reason);
      expect(faults[0]).toBe(0);
      // A thread that died is reported and replaced; one whose job threw keeps serving.
      expect(exits.map((e) => e.message)).toEqual(mode === 'throw' ? [] : [reason]);
      expect(await t.dataSource.query(`SELECT COUNT(*) AS n FROM flow_hit WHERE upload_id = ?`, [id])).toEqual([{ n: expect.anything() }]);
      await reprocess(gqlId);
      worker.notify();
      expect(await settled()).toEqual({ status: 'COMPLETED', error: null, hits: capture.badFlows });
      expect(pool.size).toBe(1);
      expect(uncaught).not.toHaveBeenCalled();
    } finally {
      process.off('uncaughtException', uncaught);
      await worker.stop(false);
      await pool.close();
    }
  });
});
