import { DataSource } from 'typeorm';
import type { ThreadTime } from '../../common/threads/thread-priority';
import { execute } from '../../db/bulk';
import { Device } from '../device/device.entity';
import { IocIndexCache } from '../ioc/ioc-index.cache';
import { IocIndex, NO_MATCH } from '../ioc/matching/ioc-index';
import { MatchedSide } from '../flow-hit/flow-hit.enums';
import { newHit, NewHit } from '../flow-hit/flow-hit.columns';
import { HitWriter } from '../flow-hit/hit-writer';
import { addressSetOf } from './address-set';
import { writeAddressSet } from './address-set.store';
import { nameSetOf } from './name-set';
import { writeNameSet } from './name-set.store';
import { dropFinishedWaits, huntsWaitingFor, recordRetroHuntRun } from '../retro-hunt/retro-hunt.progress';
import { DomainIndex, NO_DOMAIN_MATCH } from '../ioc/matching/domain-index';
import { ScopedAllows } from '../ioc/matching/scoped-allows';
import { ipv4Key, ipv6WordsKey } from '../ioc/ioc-range';
import { newDnsHit, NewDnsHit } from '../dns-hit/dns-hit.columns';
import { DnsQueryGroup } from './flows/dns-queries';
import { Direction } from './flows/direction';
import { ConnectionEndpoint } from './flows/fold';
import { hasHostOfOurs, withMatchedSides } from './flows/sides';
import { missingEpochTimestamps } from './parsing';
import { ParseOutcome, parseStoredFile, StoredFile } from './parse-thread/parse-stored-file';
import type { GiveWay } from '../../common/threads/give-way';
import { ParsePool } from './parse-thread/parse-pool';
import { RetroHuntStatus } from '../retro-hunt/retro-hunt.enums';
import { LogUploadStatus } from './log-upload.enums';
import { LogUploadQueue } from './log-upload.queue';
import { processingWarnings } from './retention-warning';
import { retentionCutoff } from '../report/retention.service';
import { nextTurn } from '../../common/async/next-turn';
import { DEFAULT_RETRY, retryInPlace, RetryEvent, RetryPolicy } from './log-upload.retry';

export interface ProcessOutcome {
  status: LogUploadStatus.COMPLETED | LogUploadStatus.FAILED | 'LEASE_LOST';
  error?: string;
  lines: number;
  packets: number;
  connections: number;
  hits: number;
  /** DNS hits written (0 when the device's policy has no DOMAIN list). */
  dnsHits?: number;
  textBytes: number;
  durationMs: number;
  /** The upload's device, once known. */
  deviceId?: number;
  /** Where a completed run's time went (the upload.completed log line), ms. */
  phases?: ProcessPhases;
  /**
   * The parse thread's part of `phases.parse` (the upload.completed log line's parseThreadMs): on a core, and runnable
   * but waiting for one (what the other threads and processes of a busy machine took from it); the rest of `parse` is
   * waiting for the inflater and the hand-offs between threads. Linux only; absent when the parse ran on this thread.
   */
  parseThread?: ThreadTime;
}

/**
 * A run's time by phase, ms: reading the upload, its device and the policy's matcher index (`prepare`), parsing
 * (`parse`, on a parse thread when there is one), matching and folding on this thread (`match`), staging the hits
 * (`stage`) and the finishing transaction with its retries (`commit`).
 */
export interface ProcessPhases {
  prepare: number;
  parse: number;
  match: number;
  stage: number;
  commit: number;
}

export interface ProcessorOptions {
  leaseMs: number;
  /** The hits' writer; with ANALYTICS_URL one that writes to ClickHouse (default: SQL). */
  hitWriter?: HitWriter;
  /** RETENTION_DAYS: connections older than it are counted in a BEYOND_RETENTION warning (0: never). */
  retentionDays?: number;
  /** Called while parsing; tests use it to stop a process at a chosen moment. */
  onProgress?: (uploadId: number, bytes: number) => void;
  /** Backoff of in-place retries of the finishing transaction (WORKER_RETRY_BASE_MS). */
  retry?: RetryPolicy;
  /** Called before each in-place retry (the job.retry log line). */
  onRetry?: (event: RetryEvent) => void;
  /**
   * Called after each step of the finish, in order (tests stop a process there): `matched` the hits known, nothing
   * written yet; `staged` the hits written to ClickHouse (analytics tier; nothing on SQL); `committed` the COMPLETED
   * transaction committed (`lost`: the lease was lost instead); `settled` the superseded ClickHouse rows removed.
   */
  onStep?: (step: 'matched' | 'staged' | 'committed' | 'lost' | 'settled', uploadId: number) => void | Promise<void>;
  /** Raised while an upload parses: report work gives way to it (REPORT_GIVE_WAY_MS; services.ts). */
  giveWay?: GiveWay | null;
  /** Called with every outcome (metrics); `ERROR` when processing threw. */
  onFinished?: (outcome: ProcessOutcome | { status: 'ERROR'; textBytes: 0; durationMs: number; connections: 0; hits: 0 }) => void;
}

/**
 * Processes one claimed upload: streams its stored text through the parser and folds packets into connections
 * (on a parse thread, or on this thread a slice per event-loop turn: either way the API stays responsive),
 * matches each connection's internet-routable ends against the device policy's index (once per endpoint, not per packet), and replaces the upload's
 * hits and counts in one transaction that first checks the lease. Re-running gives the same result.
 */
export class LogUploadProcessor {
  private readonly hitWriter = this.options.hitWriter ?? new HitWriter();

  constructor(
    private readonly dataSource: DataSource,
    private readonly queue: LogUploadQueue,
    private readonly indexes: IocIndexCache,
    private readonly options: ProcessorOptions,
    /** Parse threads (PARSE_THREADS); null parses on the main thread. */
    private readonly parsers: ParsePool | null = null,
  ) {}

  async process(uploadId: number, owner: string, signal?: AbortSignal): Promise<ProcessOutcome> {
    const started = performance.now();
    let outcome: ProcessOutcome;
    // The staging's preparation (run() starts it beside the parse): settled before the run ends, however it ends,
    // so none of its ClickHouse deletes lands after the lease is handed back, among another run's staged rows.
    const preparing: { staging: Promise<unknown> | null } = { staging: null };
    try {
      outcome = await this.run(uploadId, owner, started, signal, preparing);
    } catch (err) {
      this.options.onFinished?.({ status: 'ERROR', textBytes: 0, durationMs: performance.now() - started, connections: 0, hits: 0 });
      throw err;
    } finally {
      await preparing.staging?.catch(() => undefined);
    }
    this.options.onFinished?.(outcome);
    return outcome;
  }

  private async run(
    uploadId: number,
    owner: string,
    started: number,
    signal: AbortSignal | undefined,
    preparing: { staging: Promise<unknown> | null },
  ): Promise<ProcessOutcome> {
    const base = { lines: 0, packets: 0, connections: 0, hits: 0, textBytes: 0 };
    const rows: Array<{ account_id: number; device_id: number; stored_encoding: string; retro_hunt_id: number | string | null }> = await this.dataSource.query(
      `SELECT account_id, device_id, stored_encoding, retro_hunt_id FROM log_upload WHERE id = ?`,
      [uploadId],
    );
    if (rows.length === 0) return { status: 'LEASE_LOST', ...base, durationMs: 0 };
    const accountId = Number(rows[0].account_id);
    // With the analytics tier, what staging the hits needs before they are known (the committed attempt, how its hits
    // were found, other attempts' rows removed) runs beside the index load and the parse (HitWriter.prepareStage). A
    // failure of it is met at staging, which prepares again; until then it is left unheard, not unhandled.
    const prepared = this.hitWriter.prepareStage(this.dataSource.manager, { accountId, uploadId });
    preparing.staging = prepared;
    prepared?.catch(() => undefined);
    // The retro-hunts waiting for a run of this upload, read before the lists: each was planned after its changes
    // were committed, so this run judges the upload against them and counts for each (retro-hunt.service.ts). Hunts
    // planned from now on wait for the next run.
    const waiting = await huntsWaitingFor(this.dataSource.manager, uploadId);
    // Queued by a retro-hunt: hits this run finds that the last did not are the hunt's, the one that queued it or
    // else the first waiting (a run that stopped before it finished leaves the hunts named while it ran waiting).
    const named = rows[0].retro_hunt_id == null ? null : Number(rows[0].retro_hunt_id);
    const retroHuntId = named !== null && waiting.includes(named) ? named : (waiting[0] ?? null);
    // The account's retro-hunts waiting to be planned, read before the device, the clock and the lists: every change
    // they count now was committed before this run reads what it matches with, so a hunt that still counts as many
    // when it is planned need not re-run this upload (retro-hunt.service.ts).
    const judgedHunts = await pendingHunts(this.dataSource, accountId);
    const device = await this.dataSource.getRepository(Device).findOneBy({ id: Number(rows[0].device_id) });
    if (!device) return this.failed(uploadId, owner, 'The device was deleted.', base, started);
    const withDevice = { ...base, deviceId: device.id };
    const now = Date.now();
    let index: IocIndex;
    let domains: DomainIndex | null;
    let scoped: ScopedAllows;
    try {
      ({ index, domains, scoped } = await this.indexes.forPolicy(device.policyId, now, signal));
    } catch (err) {
      // Shutdown while the index was being built: the job was handed back, nothing is written.
      if (signal?.aborted) return { status: 'LEASE_LOST', ...withDevice, durationMs: performance.now() - started };
      throw err;
    }
    const blobs: Array<{ data: Buffer }> = await this.dataSource.query(`SELECT data FROM log_upload_blob WHERE upload_id = ? ORDER BY seq`, [uploadId]);
    const file: StoredFile = {
      encoding: rows[0].stored_encoding,
      blobs: blobs.map((b) => b.data),
      internalNetworks: device.internalNetworks,
      ownAddress: device.ipAddress,
      // DNS text is read only when a DOMAIN list could match it: the parser is slower with it on.
      dns: domains !== null,
    };
    let lastRenew = Date.now();
    const renewEvery = Math.max(250, this.options.leaseMs / 3);
    // After each slice, on this thread: progress, the shutdown's abort, and the lease (false: stop).
    const afterSlice = async (bytes: number, lines: number): Promise<boolean> => {
      this.options.onProgress?.(uploadId, bytes);
      if (signal?.aborted) return false;
      if (Date.now() - lastRenew > renewEvery) {
        lastRenew = Date.now();
        if (!(await this.queue.renew(uploadId, owner, this.options.leaseMs, { bytes, lines }))) return false;
      }
      return true;
    };
    // On a parse thread the event loop stays free meanwhile; in-process, it gets a turn between slices. Report
    // work gives way to the parse (REPORT_GIVE_WAY_MS): its CPU is most of a run's; the match after it is short.
    const parseStart = performance.now();
    const leave = this.options.giveWay?.enter();
    let parsed: ParseOutcome;
    try {
      parsed = this.parsers
        ? await this.parsers.parse(file, afterSlice, signal)
        : await parseStoredFile(file, async (bytes, lines) => {
            const go = await afterSlice(bytes, lines);
            await nextTurn();
            return go;
          });
    } finally {
      leave?.();
    }
    if (parsed.kind === 'stopped') return { status: 'LEASE_LOST', ...withDevice, durationMs: performance.now() - started };
    const matchStart = performance.now();
    if (parsed.kind === 'unreadable') return this.failed(uploadId, owner, `The stored file could not be read: ${parsed.message}`, withDevice, started);
    const { stats, bytes, connections, dnsQueries } = parsed;
    const noEpoch = missingEpochTimestamps(stats, parsed.partial);
    if (noEpoch) return this.failed(uploadId, owner, noEpoch.message, { ...withDevice, lines: stats.lines, packets: stats.packets, textBytes: bytes }, started);

    const hits: NewHit[] = [];
    let inbound = 0;
    let first = Infinity;
    let last = -Infinity;
    // The retention purge's rule (a hit's first packet before the cutoff), counted so the upload can say so now.
    const cutoff = retentionCutoff(this.options.retentionDays ?? 0, now) ?? -Infinity;
    let oldConnections = 0;
    let oldHits = 0;
    // ALLOW entries scoped to this device or a host of it (a FALSE_POSITIVE verdict): checked per hit, after the match.
    const deviceAllows = scoped.hasDevice(device.id);
    for (const folded of connections) {
      // Which end is ours depends on which ends matched (flows/sides.ts): both are looked up first.
      const rows = [folded.initiator, folded.responder].map((end) => (end.canCrossInternet ? bestBlock(index, end, now) : NO_MATCH));
      const c = withMatchedSides(folded, rows[0] !== NO_MATCH, rows[1] !== NO_MATCH);
      if (c.direction === Direction.INBOUND) inbound++;
      if (c.firstMicros < first) first = c.firstMicros;
      if (c.lastMicros > last) last = c.lastMicros;
      const old = Math.floor(c.firstMicros / 1000) < cutoff;
      if (old) oldConnections++;
      if (!hasHostOfOurs(c)) continue;
      for (const side of [MatchedSide.INITIATOR, MatchedSide.RESPONDER]) {
        const end = side === MatchedSide.INITIATOR ? c.initiator : c.responder;
        const row = rows[side === MatchedSide.INITIATOR ? 0 : 1];
        if (row === NO_MATCH) continue;
        if (deviceAllows && scoped.covering(device.id, endKey(end), endKey(c.internal), now)) continue;
        const list = index.rowList(row);
        const match = {
          entryId: index.rowEntryId(row),
          listId: list.id,
          cidr: index.describeRow(row, false).cidr,
          severity: list.severity,
          category: list.category,
        };
        hits.push(newHit({ accountId, deviceId: device.id, uploadId, connection: c, side, end, match }));
        if (old) oldHits++;
      }
    }
    // What a later list change is checked against (retro-hunt): every end the matcher looked up.
    const addresses = addressSetOf(connections);
    const dnsHits = domains ? matchDnsQueries(domains, dnsQueries, { accountId, deviceId: device.id, uploadId }) : [];
    // And every name the domain matcher looked up; null (unknown) when DNS was not read.
    const names = domains ? nameSetOf(dnsQueries) : null;
    const warnings = processingWarnings(
      { connections: connections.length, connectionsBeforeCutoff: oldConnections, hits: hits.length, hitsBeforeCutoff: oldHits },
      this.options.retentionDays ?? 0,
      now,
    );

    // How this run finds its hits: a retro-hunt's re-run finds for the hunt (retro-hunt.service.ts).
    const found = retroHuntId == null ? { by: 'UPLOAD' as const, at: Date.now(), retroHuntId } : { by: 'RETRO_HUNT' as const, at: Date.now(), retroHuntId };
    // With the analytics tier, the hits go to ClickHouse first, under an attempt the finishing transaction commits
    // (hit-writer.ts). ClickHouse away throws AnalyticsUnavailableError: the worker queues the job again without
    // spending an attempt and waits for the tier (log-upload.retry.ts).
    const stageStart = performance.now();
    await this.options.onStep?.('matched', uploadId);
    if (signal?.aborted) return { status: 'LEASE_LOST', ...withDevice, durationMs: performance.now() - started };
    const staged = await this.hitWriter.stageUpload(this.dataSource.manager, { accountId, uploadId }, hits, found, prepared);
    await this.options.onStep?.('staged', uploadId);

    // Run again in place on a deadlock, a lost connection...: the parsed result above is kept (log-upload.retry.ts).
    const finish = () =>
      this.dataSource.transaction(async (em) => {
        if (!(await this.queue.holdsLease(em, uploadId, owner))) return false;
        // A retro-hunt planned while this ran waits for the upload too (retro-hunt.service.ts): this run may have
        // matched against the lists before its change, so the upload is queued again for it once this is written.
        // Read under the upload's row lock (holdsLease), which the hunt's planning takes as well.
        const pending = await huntsWaitingFor(em, uploadId);
        const judged = pending.filter((h) => waiting.includes(h));
        const later = pending.filter((h) => !waiting.includes(h));
        const skippedLines = stats.lines - stats.packets;
        await execute(
          em,
          `UPDATE log_upload SET status = ?, error = NULL, lease_owner = NULL, lease_expires_at = NULL, finished_at = ?, progress_bytes = ?, progress_lines = ?,
                policy_id = ?, line_count = ?, packet_lines = ?, skipped_lines = ?, skipped = ?, connections = ?, inbound_connections = ?,
                outbound_connections = ?, hits = ?, hits_purged = 0, warnings = ?, first_capture_at = ?, last_capture_at = ?, judged_hunts = ?
          WHERE id = ?`,
          [
            LogUploadStatus.COMPLETED,
            Date.now(),
            bytes,
            stats.lines,
            device.policyId,
            stats.lines,
            stats.packets,
            skippedLines,
            JSON.stringify({ byReason: stats.skipped, samples: stats.samples.map((s) => ({ lineNumber: s.lineNo, reason: s.reason, text: s.text })) }),
            connections.length,
            inbound,
            connections.length - inbound,
            hits.length,
            JSON.stringify(warnings),
            Number.isFinite(first) ? Math.floor(first / 1000) : null,
            Number.isFinite(last) ? Math.floor(last / 1000) : null,
            judgedHunts,
            uploadId,
          ],
        );
        // Replace, never add: a re-run (after a crash, or a reprocess) leaves exactly one set of hits, with the
        // reports' roll-ups and the change log entry that tells in-memory report stores to re-read them.
        await writeAddressSet(em, uploadId, addresses);
        await writeNameSet(em, uploadId, names);
        const counts = await this.hitWriter.replaceUpload(em, { accountId, uploadId }, hits, found, staged, dnsHits);
        // A re-run several hunts waited for counts for each: it judged the upload against all their changes.
        for (const hunt of judged) await recordRetroHuntRun(em, uploadId, hunt, counts, counts.dns);
        await dropFinishedWaits(em, uploadId, later);
        if (later.length) {
          await execute(
            em,
            `UPDATE log_upload SET status = ?, retro_hunt_id = ?, attempts = 0, finished_at = NULL, progress_bytes = 0, progress_lines = 0 WHERE id = ?`,
            [LogUploadStatus.QUEUED, later[0], uploadId],
          );
        } else if (named !== null) await execute(em, `UPDATE log_upload SET retro_hunt_id = NULL WHERE id = ?`, [uploadId]);
        return true;
      });
    const commitStart = performance.now();
    const done = await retryInPlace(
      finish,
      { uploadId, owner, leaseMs: this.options.leaseMs, signal },
      this.queue,
      this.options.retry ?? DEFAULT_RETRY,
      this.options.onRetry,
    );
    await this.options.onStep?.(done ? 'committed' : 'lost', uploadId);
    // Best effort: superseded ClickHouse rows are never read, and the upload's next write or the retention purge's
    // sweep removes them too; a run that lost its lease removes the rows it staged.
    if (done) await this.hitWriter.settle(staged).catch(() => undefined);
    else await this.hitWriter.discard(this.dataSource.manager, staged).catch(() => undefined);
    if (done) await this.options.onStep?.('settled', uploadId);
    const outcome = {
      deviceId: device.id,
      lines: stats.lines,
      packets: stats.packets,
      connections: connections.length,
      hits: hits.length,
      dnsHits: dnsHits.length,
      textBytes: bytes,
      durationMs: performance.now() - started,
      ...(parsed.thread && { parseThread: parsed.thread }),
      phases: {
        prepare: parseStart - started,
        parse: matchStart - parseStart,
        match: stageStart - matchStart,
        stage: commitStart - stageStart,
        commit: performance.now() - commitStart,
      },
    };
    return done ? { status: LogUploadStatus.COMPLETED, ...outcome } : { status: 'LEASE_LOST', ...outcome };
  }

  private async failed(
    uploadId: number,
    owner: string,
    error: string,
    base: Omit<ProcessOutcome, 'status' | 'durationMs'>,
    started: number,
  ): Promise<ProcessOutcome> {
    const ok = await this.queue.fail(uploadId, owner, error);
    return { status: ok ? LogUploadStatus.FAILED : 'LEASE_LOST', error, ...base, durationMs: performance.now() - started };
  }
}

/** A DNS hit per question group whose name a BLOCK entry contains (and no ALLOW entry does). */
function matchDnsQueries(
  domains: DomainIndex,
  queries: readonly DnsQueryGroup[],
  upload: { accountId: number; deviceId: number; uploadId: number },
): NewDnsHit[] {
  const out: NewDnsHit[] = [];
  // One batched lookup of every question (their table reads overlap), then a match described per hit.
  const rows = new Int32Array(queries.length);
  domains.bestBlockRows(
    queries.map((q) => q.qname),
    rows,
  );
  for (let i = 0; i < queries.length; i++) {
    if (rows[i] === NO_DOMAIN_MATCH) continue;
    const q = queries[i];
    const m = domains.blockMatch(rows[i]);
    out.push(newDnsHit(upload, q, { entryId: m.entryId, listId: m.list.id, name: m.name, severity: m.list.severity, category: m.list.category }));
  }
  return out;
}

/** An end's address as the sortable key entries' ranges use (ioc-range.ts). */
function endKey(end: ConnectionEndpoint): string {
  return end.v6 ? ipv6WordsKey(end.v6) : ipv4Key(end.v4);
}

/** The account's retro-hunts waiting to be planned and how many changes each covers, as log_upload.judged_hunts; null: none. */
async function pendingHunts(dataSource: DataSource, accountId: number): Promise<string | null> {
  const rows: Array<{ id: number | string; changes: number | string }> = await dataSource.query(
    `SELECT id, changes FROM retro_hunt WHERE account_id = ? AND status = ? ORDER BY id`,
    [accountId, RetroHuntStatus.QUEUED],
  );
  if (rows.length === 0) return null;
  return JSON.stringify(Object.fromEntries(rows.map((r) => [String(r.id), Number(r.changes)])));
}

function bestBlock(index: IocIndex, end: ConnectionEndpoint, now: number): number {
  return end.v6 ? index.bestBlockRowV6(end.v6[0], end.v6[1], end.v6[2], end.v6[3], now) : index.bestBlockRowV4(end.v4, now);
}
