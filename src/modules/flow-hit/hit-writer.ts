import { EntityManager } from 'typeorm';
import { bulkInsertObjects, execute } from '../../db/bulk';
import { nextTurn } from '../../common/async/next-turn';
import { hitIdentity, INSERT_COLUMNS, NewHit, rowIdentity } from './flow-hit.columns';
import { HitChangeKind, recordHitChange } from './hit-change';
import { insertRollups, rebuildUploadRollups, ROLLUP_GRAINS } from './hit-rollup';
import { dnsAlertHit, flowAlertHit, writeAlerts } from '../alert/alert-outbox';
import { HitFoundBy } from '../alert/alert.enums';
import { DNS_HIT_COLUMNS, NewDnsHit } from '../dns-hit/dns-hit.columns';
import { AnalyticsHits, committedAttempt, FoundRow } from '../analytics/analytics-hits';
import { LogUploadStatus } from '../log-upload/log-upload.enums';

/** How a run finds the hits it writes (retro-hunt, #17): hits the stored run had keep their own. */
export interface FoundWith {
  by: 'UPLOAD' | 'RETRO_HUNT';
  at: number;
  retroHuntId: number | null;
}

/** Hits a replace added and removed, by stable identity (hitIdentity). */
export interface ReplaceCounts {
  added: number;
  removed: number;
}

/** What replaceUpload did: its flow hits' counts, and its DNS hits' (0 when it was not given them). */
export interface UploadReplaced extends ReplaceCounts {
  dns: ReplaceCounts;
}

/** An upload's hits written to ClickHouse under a new attempt, not yet committed (HitWriter.stageUpload). */
export interface StagedHits {
  uploadId: number;
  attempt: number;
  /** The committed attempt they were compared with (null: none). */
  basedOn: number | null;
  /** The hits not in it: found now, they raise alerts. */
  fresh: NewHit[];
  /** Its hits not found again. */
  removed: number;
}

/** An upload's staging prepared before its hits are known (HitWriter.prepareStage). */
export interface StagePrep {
  uploadId: number;
  /** Its committed attempt (null: none). */
  basedOn: number | null;
  /** That attempt's hits by stable identity, with how they were found. */
  before: Map<string, StoredFound>;
}

/** A stored hit picked for deletion: what the roll-ups and the upload's counts need to follow it. */
export interface HitRef {
  id: number;
  uploadId: number;
  firstSeenAt: number;
}

/**
 * The one writer of flow_hit. Every method runs in the caller's transaction (`em` from dataSource.transaction)
 * and leaves the hits, their roll-ups (hit-rollup.ts) and the change log (hit-change.ts) in step: a report that
 * reads any of them sees the same hits. The change is recorded last, as hit-change.ts requires.
 */
export class HitWriter {
  /** `analytics`: with ANALYTICS_URL, the hits live in ClickHouse (analytics-hits.ts), not in SQL. */
  constructor(private readonly analytics: AnalyticsHits | null = null) {}

  /** True with the analytics tier: flow hits live in ClickHouse, and SQL keeps which attempt of each upload counts. */
  get toClickHouse(): boolean {
    return this.analytics !== null;
  }

  /**
   * What staging an upload's hits needs before the hits are known (null without the tier): the upload's committed
   * attempt, how its hits were found, and every other attempt's rows removed from ClickHouse. The processor starts
   * it as a run begins, so that its statements (for a first run one read in SQL and the stale check in ClickHouse,
   * 5-10 ms; a re-run also reads every committed hit) overlap the parse instead of following the match. The caller holds
   * the upload's lease from before it starts to after the commit, so the attempt it reads stays the committed one
   * (replaceFlowHits checks).
   */
  prepareStage(em: Pick<EntityManager, 'query'>, upload: { accountId: number; uploadId: number }): Promise<StagePrep> | null {
    if (!this.analytics) return null;
    const analytics = this.analytics;
    return (async () => {
      const basedOn = await committedAttempt(em, upload.uploadId);
      const before = basedOn === null ? new Map<string, StoredFound>() : foundByIdentity(await analytics.found(upload.uploadId, basedOn));
      await analytics.removeStale(upload.uploadId, basedOn);
      return { uploadId: upload.uploadId, basedOn, before };
    })();
  }

  /**
   * The analytics tier's first half of replaceUpload, before its transaction (null without the tier): compares
   * the hits with the upload's committed attempt by stable identity (as the SQL path compares with its stored
   * hits), so those found before keep their foundBy/foundAt, and writes them to ClickHouse under a new attempt.
   * Nothing counts it until replaceUpload commits it. Outside the transaction so that a deadlock's in-place retry
   * (log-upload.retry.ts) does not write the hits again, and ClickHouse's time holds no SQL lock. The caller holds
   * the upload's lease, so no other run commits an attempt meanwhile (replaceUpload checks).
   *
   * `prepared`: prepareStage() of this upload, started earlier by the caller. When it failed (ClickHouse away for a
   * moment during the parse), it is done again here, once.
   */
  async stageUpload(
    em: Pick<EntityManager, 'query'>,
    upload: { accountId: number; uploadId: number },
    hits: readonly NewHit[],
    found: FoundWith,
    prepared: Promise<StagePrep> | null = null,
  ): Promise<StagedHits | null> {
    if (!this.analytics) return null;
    const prep = (prepared && (await prepared.catch(() => null))) || (await this.prepareStage(em, upload)!);
    if (prep.uploadId !== upload.uploadId) throw new Error(`staging prepared for upload ${prep.uploadId} used for ${upload.uploadId}`);
    const { fresh, removed } = markFound(hits, prep.before, found);
    const attempt = await this.analytics.write(upload, hits, prep.basedOn, { staleRemoved: true });
    return { uploadId: upload.uploadId, attempt, basedOn: prep.basedOn, fresh, removed };
  }

  /**
   * Replaces an upload's hits (its first run or a re-run): one set of hits, never two, and its DNS hits with them
   * when `dnsHits` is given. With the analytics tier, the hits staged in ClickHouse (stageUpload; staged here when
   * not given) become the upload's committed attempt in this transaction. Either way the counts compare by stable
   * identity with the hits replaced, and only hits found now raise alerts. The change is recorded last, with how
   * many hits of both kinds were found now: hitsFound tells of a write only when it found some.
   */
  async replaceUpload(
    em: EntityManager,
    upload: { accountId: number; uploadId: number },
    hits: readonly NewHit[],
    found: FoundWith = { by: 'UPLOAD', at: Date.now(), retroHuntId: null },
    staged: StagedHits | null = null,
    dnsHits: readonly NewDnsHit[] | null = null,
  ): Promise<UploadReplaced> {
    const flow = await this.replaceFlowHits(em, upload, hits, found, staged);
    const dns = dnsHits ? await this.replaceDnsHits(em, upload, dnsHits, found) : { added: 0, removed: 0 };
    await recordHitChange(em, { ...upload, found: flow.added + dns.added });
    return { ...flow, dns };
  }

  private async replaceFlowHits(
    em: EntityManager,
    upload: { accountId: number; uploadId: number },
    hits: readonly NewHit[],
    found: FoundWith,
    staged: StagedHits | null,
  ): Promise<ReplaceCounts> {
    if (this.analytics) {
      const s = staged ?? (await this.stageUpload(em, upload, hits, found))!;
      if (s.uploadId !== upload.uploadId) throw new Error(`hits staged for upload ${s.uploadId} committed for ${upload.uploadId}`);
      // Under the lease no other run commits; were one to, these counts and found-by would be of the wrong base.
      const now = await committedAttempt(em, upload.uploadId);
      if (now !== s.basedOn) throw new Error(`upload ${upload.uploadId}: committed attempt ${now} is not the ${s.basedOn} the staged hits were compared with`);
      await execute(em, `UPDATE log_upload SET analytics_attempt = ? WHERE id = ?`, [s.attempt, upload.uploadId]);
      await writeAlerts(em, upload, s.fresh.map(flowAlertHit));
      return { added: s.fresh.length, removed: s.removed };
    }
    const stored = await storedResults(em, upload.uploadId);
    // A hit found again (same identity) keeps how and when it was first found; the others are found now.
    const before = stored.hits ? await storedFound(em, upload.uploadId) : new Map<string, StoredFound>();
    const { fresh, removed } = markFound(hits, before, found);
    if (stored.hits) await execute(em, `DELETE FROM flow_hit WHERE upload_id = ?`, [upload.uploadId]);
    if (stored.rollups) for (const grain of ROLLUP_GRAINS) await execute(em, `DELETE FROM ${grain.table} WHERE upload_id = ?`, [upload.uploadId]);
    await bulkInsertObjects(em, 'flow_hit', INSERT_COLUMNS, hits);
    await insertRollups(em, hits);
    // The alert outbox, in the same transaction: the alerts exist exactly when the hits that raise them do. Only
    // hits found now raise alerts: a re-run (a reprocess, a retro-hunt) does not alert again for those it found before.
    await writeAlerts(em, upload, fresh.map(flowAlertHit));
    return { added: fresh.length, removed };
  }

  /**
   * After the commit of replaceUpload (analytics tier only): removes the rows of the attempt it superseded (the
   * staging removed every other before writing). Not needed for exact reads (they keep the committed attempt
   * alone); a process that stops before this leaves them to the upload's next write or the retention purge's sweep.
   */
  async settle(staged: StagedHits | null): Promise<void> {
    if (this.analytics && staged?.basedOn != null) await this.analytics.removeAttempt(staged.uploadId, staged.basedOn);
  }

  /**
   * Staged hits that will never commit (the run lost its lease): removed now rather than by a later sweep. Unless
   * they did commit: a commit whose answer was lost (the connection dropped after it) looks like a lost lease to
   * the retry that follows it.
   */
  async discard(em: Pick<EntityManager, 'query'>, staged: StagedHits | null): Promise<void> {
    if (!this.analytics || !staged) return;
    if ((await committedAttempt(em, staged.uploadId)) === staged.attempt) return;
    await this.analytics.removeAttempt(staged.uploadId, staged.attempt);
  }

  /**
   * Replaces an upload's DNS hits (dns_hit), for replaceUpload: one set, never two. The DELETE runs only when a
   * row exists (see storedResults: a DELETE that finds nothing still locks a gap). As with flow hits, the DNS hits
   * found now (not in the set replaced) raise alerts, in this transaction.
   */
  private async replaceDnsHits(
    em: EntityManager,
    upload: { accountId: number; uploadId: number },
    hits: readonly NewDnsHit[],
    found: Pick<FoundWith, 'by'> = { by: 'UPLOAD' },
  ): Promise<ReplaceCounts> {
    const { uploadId } = upload;
    // A DNS hit's identity in its upload: querying host, name, type and matched entry (what a re-run finds again).
    const key = (h: { internalIp: unknown; qname: unknown; qtype: unknown; iocDomainId: unknown }) =>
      `${String(h.internalIp)} ${String(h.qname)} ${String(h.qtype)} ${Number(h.iocDomainId)}`;
    const before: Array<{ internal_ip: string; qname: string; qtype: string; ioc_domain_id: number | string }> = await em.query(
      `SELECT internal_ip, qname, qtype, ioc_domain_id FROM dns_hit WHERE upload_id = ?`,
      [uploadId],
    );
    const old = new Set(before.map((r) => key({ internalIp: r.internal_ip, qname: r.qname, qtype: r.qtype, iocDomainId: r.ioc_domain_id })));
    const after = new Set(hits.map(key));
    if (before.length) await execute(em, `DELETE FROM dns_hit WHERE upload_id = ?`, [uploadId]);
    await bulkInsertObjects(em, 'dns_hit', DNS_HIT_COLUMNS, hits);
    let removed = 0;
    for (const k of old) if (!after.has(k)) removed++;
    const foundBy = found.by === 'RETRO_HUNT' ? HitFoundBy.RETRO_HUNT : HitFoundBy.UPLOAD;
    const fresh = new Map<string, NewDnsHit>();
    for (const h of hits) if (!old.has(key(h)) && !fresh.has(key(h))) fresh.set(key(h), h);
    await writeAlerts(
      em,
      upload,
      [...fresh.values()].map((h) => dnsAlertHit(h, foundBy)),
    );
    return { added: fresh.size, removed };
  }

  /** Deletes an upload's DNS hits (an upload being deleted); returns how many. */
  async deleteUploadDns(em: EntityManager, uploadId: number): Promise<number> {
    return execute(em, `DELETE FROM dns_hit WHERE upload_id = ?`, [uploadId]);
  }

  /** Deletes DNS hits captured before `purgedBefore` (the retention purge), at most `limit`; returns how many. */
  async purgeDns(em: EntityManager, purgedBefore: number, limit: number): Promise<number> {
    const ids: Array<{ id: number | string }> = await em.query(`SELECT id FROM dns_hit WHERE first_seen_at < ? ORDER BY id LIMIT ${limit}`, [purgedBefore]);
    if (ids.length === 0) return 0;
    return execute(
      em,
      `DELETE FROM dns_hit WHERE id IN (${ids.map(() => '?').join(',')})`,
      ids.map((r) => Number(r.id)),
    );
  }

  /**
   * Deletes these hits for the retention purge (all captured before `purgedBefore`), moves each upload's count
   * from `hits` to `hits_purged`, and recomputes the roll-ups of the buckets they were in from the hits left.
   * Hits deleted meanwhile (an upload re-processed) count 0. Returns how many were deleted.
   */
  async purge(em: EntityManager, purgedBefore: number, hits: readonly HitRef[]): Promise<number> {
    let deleted = 0;
    for (const [uploadId, refs] of byUpload(hits)) {
      const n = await deleteIds(em, refs);
      if (n === 0) continue;
      await execute(em, `UPDATE log_upload SET hits = hits - ?, hits_purged = hits_purged + ? WHERE id = ?`, [n, n, uploadId]);
      await rebuildUploadRollups(
        em,
        uploadId,
        refs.map((r) => r.firstSeenAt),
      );
      deleted += n;
    }
    if (deleted > 0) await recordHitChange(em, { purgedBefore });
    return deleted;
  }

  /** Deletes some of an upload's hits (an upload being deleted, in batches); its roll-ups follow. */
  async deleteFromUpload(em: EntityManager, accountId: number, uploadId: number, hits: readonly HitRef[]): Promise<number> {
    const mine = hits.filter((h) => h.uploadId === uploadId);
    const n = await deleteIds(em, mine);
    if (n === 0) return 0;
    await rebuildUploadRollups(
      em,
      uploadId,
      mine.map((r) => r.firstSeenAt),
    );
    await recordHitChange(em, { accountId, uploadId, found: 0 });
    return n;
  }

  /**
   * Analytics tier: deletes the hits captured before `purgedBefore` in ClickHouse, every attempt's (the retention
   * purge, at once rather than at the TTL's next merge). The uploads' counts follow in recountPurged().
   */
  async purgeAnalytics(purgedBefore: number): Promise<void> {
    await this.analytics?.purge(purgedBefore);
  }

  /**
   * Analytics tier: sets each upload's counts from what is left in ClickHouse of its committed attempt (`hits`
   * to what is left, the difference to `hits_purged`), after purgeAnalytics() or the TTL removed some. Absolute,
   * so running it again, or after a stop between the ClickHouse delete and this, counts each hit once; an upload
   * whose attempt changed meanwhile (a re-run committed) is left to the next purge. Returns the hits moved.
   */
  async recountPurged(em: EntityManager, purgedBefore: number, uploads: ReadonlyArray<{ uploadId: number; attempt: number; hits: number }>): Promise<number> {
    if (!this.analytics || uploads.length === 0) return 0;
    const left = await this.analytics.committedCounts(uploads);
    let moved = 0;
    for (const u of [...uploads].sort((a, b) => a.uploadId - b.uploadId)) {
      const n = u.hits - (left.get(u.uploadId) ?? 0);
      if (n <= 0) continue;
      const changed = await execute(
        em,
        `UPDATE log_upload SET hits = hits - ?, hits_purged = hits_purged + ? WHERE id = ? AND analytics_attempt = ? AND hits = ?`,
        [n, n, u.uploadId, u.attempt, u.hits],
      );
      if (changed === 1) moved += n;
    }
    if (moved > 0) await recordHitChange(em, { purgedBefore });
    return moved;
  }

  /**
   * Analytics tier: deletes the ClickHouse rows of uploads about to be deleted (the retention purge), before
   * their SQL rows: a stop between the two leaves the uploads, whose deletion the next purge repeats. Returns
   * how many hits their committed attempts had.
   */
  async deleteUploadsAnalytics(uploads: ReadonlyArray<{ uploadId: number; attempt: number | null }>): Promise<number> {
    if (!this.analytics || uploads.length === 0) return 0;
    const committed = uploads.filter((u): u is { uploadId: number; attempt: number } => u.attempt !== null);
    const counts = await this.analytics.committedCounts(committed);
    await this.analytics.deleteUploads(uploads.map((u) => u.uploadId));
    return [...counts.values()].reduce((a, b) => a + b, 0);
  }

  /**
   * Analytics tier: removes ClickHouse rows no upload will ever count: attempts of uploads gone from SQL (a
   * device deleted while its upload was being written), and attempts other than the committed one of uploads
   * that are neither queued nor processing (a run stopped before its commit or its settle()). Uploads queued or
   * processing are left alone: their attempt may be about to commit. Returns the rows removed.
   */
  async sweepAnalytics(em: Pick<EntityManager, 'query'>): Promise<number> {
    if (!this.analytics) return 0;
    // ClickHouse first: an attempt written after this read is not in the list, whatever SQL says next.
    const stored = await this.analytics.attempts();
    if (stored.length === 0) return 0;
    const ids = [...new Set(stored.map((p) => p.uploadId))];
    const state = new Map<number, { status: string; attempt: number | null }>();
    for (let i = 0; i < ids.length; i += 1_000) {
      const chunk = ids.slice(i, i + 1_000);
      const rows: Array<{ id: number | string; status: string; analytics_attempt: number | string | null }> = await em.query(
        `SELECT id, status, analytics_attempt FROM log_upload WHERE id IN (${chunk.map(() => '?').join(',')})`,
        chunk,
      );
      for (const r of rows) state.set(Number(r.id), { status: r.status, attempt: r.analytics_attempt == null ? null : Number(r.analytics_attempt) });
    }
    const orphans = stored.filter((p) => {
      const s = state.get(p.uploadId);
      if (!s) return true;
      if (s.status === LogUploadStatus.QUEUED || s.status === LogUploadStatus.PROCESSING) return false;
      return s.attempt !== p.attempt;
    });
    await this.analytics.removeAttempts(orphans);
    return orphans.reduce((n, p) => n + p.rows, 0);
  }

  /**
   * Deletes a device's hits and roll-ups (before the device itself, whose uploads' cascade then finds none);
   * returns how many SQL held (with the analytics tier, its hits are in ClickHouse and SQL holds none).
   */
  async deleteDevice(em: EntityManager, accountId: number, deviceId: number): Promise<number> {
    // ClickHouse first: were the SQL transaction to fail after, the device is still there and its deletion is retried.
    await this.analytics?.deleteDevice(accountId, deviceId);
    for (const grain of ROLLUP_GRAINS) await execute(em, `DELETE FROM ${grain.table} WHERE account_id = ? AND device_id = ?`, [accountId, deviceId]);
    const n = await deleteDeviceRows(em, 'flow_hit', accountId, deviceId);
    await deleteDeviceRows(em, 'dns_hit', accountId, deviceId);
    await recordHitChange(em, { accountId, deviceId } satisfies HitChangeKind);
    return n;
  }
}

/** Rows per DELETE when a device's hits are deleted. */
const DELETE_CHUNK = 5_000;

/**
 * A device's rows of `table` (it can hold millions of hits), in chunks along the (account_id, device_id,
 * first_seen_at, id) index, each chunk after the last (none walks over rows deleted before it), with a turn of the
 * event loop after each, inside the caller's transaction (still all or nothing). One statement per table held
 * SQLite, and so every request, for seconds.
 */
async function deleteDeviceRows(em: EntityManager, table: 'flow_hit' | 'dns_hit', accountId: number, deviceId: number): Promise<number> {
  let n = 0;
  let after: { at: number | string; id: number | string } | null = null;
  for (;;) {
    const rows: Array<{ id: number | string; first_seen_at: number | string }> = await em.query(
      `SELECT id, first_seen_at FROM ${table} WHERE account_id = ? AND device_id = ?
          ${after ? 'AND first_seen_at >= ? AND (first_seen_at > ? OR id > ?)' : ''}
        ORDER BY first_seen_at, id LIMIT ${DELETE_CHUNK}`,
      after ? [accountId, deviceId, after.at, after.at, after.id] : [accountId, deviceId],
    );
    if (rows.length === 0) return n;
    n += await execute(
      em,
      `DELETE FROM ${table} WHERE id IN (${rows.map(() => '?').join(',')})`,
      rows.map((r) => r.id),
    );
    if (rows.length < DELETE_CHUNK) return n;
    const last = rows[rows.length - 1];
    after = { at: last.first_seen_at, id: last.id };
    await nextTurn();
  }
}

function byUpload(hits: readonly HitRef[]): Map<number, HitRef[]> {
  const out = new Map<number, HitRef[]>();
  // Upload order: the same lock order as the worker's, which takes the upload row before its hits.
  for (const h of [...hits].sort((a, b) => a.uploadId - b.uploadId || a.id - b.id)) {
    const list = out.get(h.uploadId);
    if (list) list.push(h);
    else out.set(h.uploadId, [h]);
  }
  return out;
}

async function deleteIds(em: EntityManager, refs: readonly HitRef[]): Promise<number> {
  if (refs.length === 0) return 0;
  return execute(
    em,
    `DELETE FROM flow_hit WHERE id IN (${refs.map(() => '?').join(',')})`,
    refs.map((r) => r.id),
  );
}

/**
 * Whether the upload has hits and roll-ups stored from an earlier run (a reprocess), read without locks (after
 * the lease's row lock, so no other run of it is writing). Most uploads have none, and a DELETE that finds no
 * row still takes a next-key lock on the gap at the end of the index: two workers finishing at once each
 * held that gap and waited for the other's to insert into it (ER_LOCK_DEADLOCK).
 */
async function storedResults(em: EntityManager, uploadId: number): Promise<{ hits: boolean; rollups: boolean }> {
  const exists = ['flow_hit', ...ROLLUP_GRAINS.map((g) => g.table)].map((t, i) => `EXISTS(SELECT 1 FROM ${t} WHERE upload_id = ?) AS t${i}`);
  const [row] = (await em.query(
    `SELECT ${exists.join(', ')}`,
    exists.map(() => uploadId),
  )) as Array<Record<string, number | string>>;
  return { hits: Number(row.t0) === 1, rollups: ROLLUP_GRAINS.some((_, i) => Number(row[`t${i + 1}`]) === 1) };
}

export interface StoredFound {
  foundBy: string;
  foundAt: number;
  retroHuntId: number | null;
}

/** The stored hits' identities with how they were found. */
async function storedFound(em: EntityManager, uploadId: number): Promise<Map<string, StoredFound>> {
  const rows: FoundRow[] = await em.query(
    `SELECT protocol, internal_key, internal_port, external_key, external_port, matched_side, ioc_id, found_by, found_at, retro_hunt_id
       FROM flow_hit WHERE upload_id = ?`,
    [uploadId],
  );
  return foundByIdentity(rows);
}

/** Stored hits (SQL's or ClickHouse's rows) by stable identity, with how they were found. */
function foundByIdentity(rows: readonly FoundRow[]): Map<string, StoredFound> {
  const out = new Map<string, StoredFound>();
  for (const r of rows) {
    const id = rowIdentity(r);
    out.set(id, { foundBy: String(r.found_by), foundAt: Number(r.found_at), retroHuntId: r.retro_hunt_id == null ? null : Number(r.retro_hunt_id) });
  }
  return out;
}

/**
 * Sets each hit's foundBy/foundAt/retroHuntId: a hit found before (same identity in `left`) keeps its own, the
 * others are found now. Returns those found now and how many of `left` were not found again (it keeps only those).
 */
function markFound(hits: readonly NewHit[], left: Map<string, StoredFound>, found: FoundWith): { fresh: NewHit[]; removed: number } {
  const fresh: NewHit[] = [];
  for (const h of hits) {
    const id = hitIdentity(h);
    const old = left.get(id);
    if (old) {
      h.foundBy = old.foundBy;
      h.foundAt = old.foundAt;
      h.retroHuntId = old.retroHuntId;
      left.delete(id);
    } else {
      h.foundBy = found.by;
      h.foundAt = found.at;
      h.retroHuntId = found.retroHuntId;
      fresh.push(h);
    }
  }
  return { fresh, removed: left.size };
}
