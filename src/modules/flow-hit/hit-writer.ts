import { EntityManager } from 'typeorm';
import { bulkInsertObjects, execute } from '../../db/bulk';
import { hitIdentity, INSERT_COLUMNS, NewHit } from './flow-hit.columns';
import { HitChangeKind, recordHitChange } from './hit-change';
import { insertRollups, rebuildUploadRollups, ROLLUP_GRAINS } from './hit-rollup';
import { writeAlerts } from '../alert/alert-outbox';
import { DNS_HIT_COLUMNS, NewDnsHit } from '../dns-hit/dns-hit.columns';

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
import { AnalyticsHits, committedAttempt } from '../analytics/analytics-hits';

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

  /**
   * Replaces an upload's hits (its first run or a re-run): one set of hits, never two. With the analytics tier,
   * written to ClickHouse under a new attempt that this transaction records as the upload's committed one.
   */
  async replaceUpload(
    em: EntityManager,
    upload: { accountId: number; uploadId: number },
    hits: readonly NewHit[],
    found: FoundWith = { by: 'UPLOAD', at: Date.now(), retroHuntId: null },
  ): Promise<ReplaceCounts> {
    if (this.analytics) {
      // The ClickHouse tier (#16) is not wired to the worker yet: no found-by tracking, alerts or SQL hits there.
      const attempt = await this.analytics.write(upload, hits, await committedAttempt(em, upload.uploadId));
      await execute(em, `UPDATE log_upload SET analytics_attempt = ? WHERE id = ?`, [attempt, upload.uploadId]);
      await recordHitChange(em, upload);
      return { added: hits.length, removed: 0 };
    }
    const stored = await storedResults(em, upload.uploadId);
    // A hit found again (same identity) keeps how and when it was first found; the others are found now.
    const before = stored.hits ? await storedFound(em, upload.uploadId) : new Map<string, StoredFound>();
    const fresh: NewHit[] = [];
    for (const h of hits) {
      const old = before.get(hitIdentity(h));
      if (old) {
        h.foundBy = old.foundBy;
        h.foundAt = old.foundAt;
        h.retroHuntId = old.retroHuntId;
        before.delete(hitIdentity(h));
      } else {
        h.foundBy = found.by;
        h.foundAt = found.at;
        h.retroHuntId = found.retroHuntId;
        fresh.push(h);
      }
    }
    if (stored.hits) await execute(em, `DELETE FROM flow_hit WHERE upload_id = ?`, [upload.uploadId]);
    if (stored.rollups) for (const grain of ROLLUP_GRAINS) await execute(em, `DELETE FROM ${grain.table} WHERE upload_id = ?`, [upload.uploadId]);
    await bulkInsertObjects(em, 'flow_hit', INSERT_COLUMNS, hits);
    await insertRollups(em, hits);
    // The alert outbox, in the same transaction: the alerts exist exactly when the hits that raise them do. Only
    // hits found now raise alerts: a re-run (a reprocess, a retro-hunt) does not alert again for those it found before.
    await writeAlerts(em, upload, fresh);
    await recordHitChange(em, upload);
    return { added: fresh.length, removed: before.size };
  }

  /**
   * After the commit of replaceUpload (analytics tier only): removes the upload's rows of attempts other than the
   * committed one (the run it superseded). Not needed for exact reads (they keep the committed attempt alone);
   * a process that stops before this leaves them to the upload's next write.
   */
  async settle(em: Pick<EntityManager, 'query'>, uploadId: number): Promise<void> {
    if (!this.analytics) return;
    const committed = await committedAttempt(em, uploadId);
    if (committed !== null) await this.analytics.removeStale(uploadId, committed);
  }

  /**
   * Replaces an upload's DNS hits (dns_hit), in the same transaction as replaceUpload: one set, never two. The
   * DELETE runs only when a row exists (see storedResults: a DELETE that finds nothing still locks a gap).
   */
  async replaceUploadDns(em: EntityManager, uploadId: number, hits: readonly NewDnsHit[]): Promise<ReplaceCounts> {
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
    let added = 0;
    let removed = 0;
    for (const k of after) if (!old.has(k)) added++;
    for (const k of old) if (!after.has(k)) removed++;
    return { added, removed };
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
    await recordHitChange(em, { accountId, uploadId });
    return n;
  }

  /** Deletes a device's hits and roll-ups (before the device itself, whose uploads' cascade then finds none). */
  async deleteDevice(em: EntityManager, accountId: number, deviceId: number): Promise<number> {
    // ClickHouse first: were the SQL transaction to fail after, the device is still there and its deletion is retried.
    await this.analytics?.deleteDevice(accountId, deviceId);
    for (const grain of ROLLUP_GRAINS) await execute(em, `DELETE FROM ${grain.table} WHERE account_id = ? AND device_id = ?`, [accountId, deviceId]);
    const n = await execute(em, `DELETE FROM flow_hit WHERE account_id = ? AND device_id = ?`, [accountId, deviceId]);
    await execute(em, `DELETE FROM dns_hit WHERE account_id = ? AND device_id = ?`, [accountId, deviceId]);
    await recordHitChange(em, { accountId, deviceId } satisfies HitChangeKind);
    return n;
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

interface StoredFound {
  foundBy: string;
  foundAt: number;
  retroHuntId: number | null;
}

/** The stored hits' identities with how they were found. */
async function storedFound(em: EntityManager, uploadId: number): Promise<Map<string, StoredFound>> {
  const rows: Array<Record<string, string | number | null>> = await em.query(
    `SELECT protocol, internal_key, internal_port, external_key, external_port, matched_side, ioc_id, found_by, found_at, retro_hunt_id
       FROM flow_hit WHERE upload_id = ?`,
    [uploadId],
  );
  const out = new Map<string, StoredFound>();
  for (const r of rows) {
    const id = hitIdentity({
      protocol: String(r.protocol),
      internalKey: String(r.internal_key),
      internalPort: r.internal_port == null ? null : Number(r.internal_port),
      externalKey: String(r.external_key),
      externalPort: r.external_port == null ? null : Number(r.external_port),
      matchedSide: String(r.matched_side),
      iocId: Number(r.ioc_id),
    });
    out.set(id, { foundBy: String(r.found_by), foundAt: Number(r.found_at), retroHuntId: r.retro_hunt_id == null ? null : Number(r.retro_hunt_id) });
  }
  return out;
}
