import { DataSource } from 'typeorm';
import { nextTurn } from '../../common/async/next-turn';
import { dialectOf, execute } from '../../db/bulk';
import { pruneHitChanges, recordHitChange } from './hit-change';
import { DAY_MS, HOUR_MS, rebuildRollupsAround } from './hit-rollup';

export interface PurgeResult {
  flowHits: number;
  uploads: number;
  cutoff: Date;
}

/** Rows per DELETE: each statement holds its locks only briefly, so uploads and reports go on meanwhile. */
const BATCH = 5_000;

/** The instant before which the retention purge deletes flow hits (by capture time); null when RETENTION_DAYS=0. */
export function retentionCutoff(days: number, now: number): number | null {
  return days > 0 ? now - days * DAY_MS : null;
}

/**
 * Deletes flow hits whose capture time, and uploads whose receipt, is older than the retention period
 * (the original product keeps 35 days). Works in small batches by primary key. 0 days keeps everything.
 */
export class RetentionService {
  private readonly batch: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly days: number,
    /** Rows per DELETE (tests use small ones to see the batches). */
    options: { batch?: number } = {},
  ) {
    this.batch = options.batch ?? BATCH;
  }

  async purge(now = Date.now()): Promise<PurgeResult> {
    const cutoff = retentionCutoff(this.days, now);
    if (cutoff == null) return { flowHits: 0, uploads: 0, cutoff: new Date(0) };
    const em = this.dataSource.manager;
    let flowHits = await this.purgeHits(cutoff);
    // Recorded once the batches are done: in-memory report stores drop the purged hits all at once.
    if (flowHits > 0) await recordHitChange(em, { purgedBefore: cutoff });
    // Roll-up buckets wholly before the cutoff go the same way; the hour and day the cutoff falls in are
    // recomputed from the hits left in them, in one transaction so a report sees them before or after.
    await this.deleteInBatches('hit_hour', 'bucket_at', Math.floor(cutoff / HOUR_MS) * HOUR_MS);
    await this.deleteInBatches('hit_day_host', 'bucket_at', Math.floor(cutoff / DAY_MS) * DAY_MS);
    if (cutoff % HOUR_MS !== 0 || cutoff % DAY_MS !== 0) await this.dataSource.transaction((tx) => rebuildRollupsAround(tx, cutoff));
    let uploads = 0;
    for (;;) {
      const old: Array<{ id: number | string; account_id: number | string }> = await em.query(`SELECT id, account_id FROM log_upload WHERE received_at < ? AND status IN ('COMPLETED', 'FAILED') ORDER BY id LIMIT 100`, [cutoff]);
      if (old.length === 0) break;
      for (const { id, account_id } of old) {
        // An old upload's hits may have recent capture times (a late upload of an old capture): delete them
        // in batches too, so the cascade from the upload row has nothing big left to do.
        for (;;) {
          const ids: Array<{ id: number | string }> = await em.query(`SELECT id FROM flow_hit WHERE upload_id = ? LIMIT ${this.batch}`, [id]);
          if (ids.length === 0) break;
          flowHits += await execute(em, `DELETE FROM flow_hit WHERE id IN (${ids.map(() => '?').join(',')})`, ids.map((r) => r.id));
          await nextTurn();
        }
        // Its roll-ups are a few rows per hour or day of capture.
        await execute(em, `DELETE FROM hit_hour WHERE upload_id = ?`, [id]);
        await execute(em, `DELETE FROM hit_day_host WHERE upload_id = ?`, [id]);
        uploads += await execute(em, `DELETE FROM log_upload WHERE id = ?`, [id]);
        await recordHitChange(em, { accountId: Number(account_id), uploadId: Number(id) });
      }
    }
    await pruneHitChanges(em, now);
    return { flowHits, uploads, cutoff: new Date(cutoff) };
  }

  /**
   * Deletes hits captured before the cutoff, and moves each upload's count from `hits` to `hits_purged` in
   * the same transaction: an upload never claims hits that are no longer stored.
   */
  private async purgeHits(cutoff: number): Promise<number> {
    let total = 0;
    for (;;) {
      const rows: Array<{ id: number | string; upload_id: number | string }> = await this.dataSource.query(
        `SELECT id, upload_id FROM flow_hit WHERE first_seen_at < ? ORDER BY id LIMIT ${this.batch}`,
        [cutoff],
      );
      if (rows.length === 0) return total;
      const byUpload = new Map<number, number[]>();
      for (const r of rows) {
        const ids = byUpload.get(Number(r.upload_id)) ?? [];
        ids.push(Number(r.id));
        byUpload.set(Number(r.upload_id), ids);
      }
      total += await this.dataSource.transaction(async (tx) => {
        const uploads = [...byUpload.keys()].sort((a, b) => a - b);
        // The upload rows first, as the worker's write takes them before it replaces hits: the two never wait
        // on each other crosswise. Hits the worker replaced meanwhile are gone and count 0 here.
        if (dialectOf(tx) === 'mysql') await tx.query(`SELECT id FROM log_upload WHERE id IN (${uploads.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`, uploads);
        let deleted = 0;
        for (const uploadId of uploads) {
          const ids = byUpload.get(uploadId)!;
          const n = await execute(tx, `DELETE FROM flow_hit WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
          if (n > 0) await execute(tx, `UPDATE log_upload SET hits = hits - ?, hits_purged = hits_purged + ? WHERE id = ?`, [n, n, uploadId]);
          deleted += n;
        }
        return deleted;
      });
      // Between batches, other requests get their turn (on SQLite each statement runs synchronously).
      await nextTurn();
    }
  }

  private async deleteInBatches(table: string, column: string, cutoff: number): Promise<number> {
    const em = this.dataSource.manager;
    let total = 0;
    for (;;) {
      // Select then delete by key: MySQL does not allow LIMIT in an IN subquery of the same table.
      const ids: Array<{ id: number | string }> = await em.query(`SELECT id FROM ${table} WHERE ${column} < ? ORDER BY id LIMIT ${this.batch}`, [cutoff]);
      if (ids.length === 0) return total;
      total += await execute(em, `DELETE FROM ${table} WHERE id IN (${ids.map(() => '?').join(',')})`, ids.map((r) => r.id));
      // Between batches, other requests get their turn (on SQLite each statement runs synchronously).
      await nextTurn();
    }
  }
}
