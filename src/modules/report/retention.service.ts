import { DataSource } from 'typeorm';
import { nextTurn } from '../../common/async/next-turn';
import { dialectOf, execute } from '../../db/bulk';
import { pruneHitChanges } from '../flow-hit/hit-change';
import { DAY_MS } from '../flow-hit/hit-rollup';
import { HitRef, HitWriter } from '../flow-hit/hit-writer';
import { RetroHuntStatus } from '../retro-hunt/retro-hunt.enums';

export interface PurgeResult {
  flowHits: number;
  /** DNS hits captured before the cutoff, and those of the uploads deleted. */
  dnsHits: number;
  uploads: number;
  cutoff: Date;
}

/**
 * An upload the purge may delete: finished, and not waited for by a running retro-hunt. A hunt's re-run of an old
 * upload, queued or failed and not yet counted, keeps it until the hunt completes (the next purge takes it): deleted
 * before that, the hunt would count it among the uploads deleted with their device. Parameter: RUNNING.
 */
const PURGEABLE = `status IN ('COMPLETED', 'FAILED') AND NOT EXISTS (
  SELECT 1 FROM retro_hunt_upload w JOIN retro_hunt h ON h.id = w.retro_hunt_id WHERE w.upload_id = log_upload.id AND h.status = ?)`;

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
  private readonly hits: HitWriter;

  constructor(
    private readonly dataSource: DataSource,
    private readonly days: number,
    /** `batch`: rows per DELETE (tests use small ones to see the batches); `hitWriter`: the service's (to ClickHouse with ANALYTICS_URL). */
    options: { batch?: number; hitWriter?: HitWriter } = {},
  ) {
    this.batch = options.batch ?? BATCH;
    this.hits = options.hitWriter ?? new HitWriter();
  }

  async purge(now = Date.now()): Promise<PurgeResult> {
    const cutoff = retentionCutoff(this.days, now);
    if (cutoff == null) return { flowHits: 0, dnsHits: 0, uploads: 0, cutoff: new Date(0) };
    const em = this.dataSource.manager;
    // Each batch's hits go with their roll-ups and a change log entry in one transaction (HitWriter.purge); with
    // the analytics tier, in ClickHouse, and the uploads' counts follow.
    let flowHits = this.hits.toClickHouse ? await this.purgeAnalyticsHits(cutoff) : await this.purgeHits(cutoff);
    let dnsHits = 0;
    for (;;) {
      const n = await this.dataSource.transaction((tx) => this.hits.purgeDns(tx, cutoff, this.batch));
      dnsHits += n;
      if (n === 0) break;
      await nextTurn();
    }
    let uploads = 0;
    for (;;) {
      const old: Array<{ id: number | string; account_id: number | string; device_id: number | string; received_at: number | string }> = await em.query(
        `SELECT id, account_id, device_id, received_at FROM log_upload WHERE received_at < ? AND ${PURGEABLE} ORDER BY id LIMIT 100`,
        [cutoff, RetroHuntStatus.RUNNING],
      );
      if (old.length === 0) break;
      if (this.hits.toClickHouse) {
        // Their ClickHouse rows first: a stop between the two leaves the uploads, deleted by the next purge.
        const withAttempts: Array<{ id: number | string; analytics_attempt: number | string | null }> = await em.query(
          `SELECT id, analytics_attempt FROM log_upload WHERE id IN (${old.map(() => '?').join(',')})`,
          old.map((u) => u.id),
        );
        flowHits += await this.hits.deleteUploadsAnalytics(
          withAttempts.map((u) => ({ uploadId: Number(u.id), attempt: u.analytics_attempt == null ? null : Number(u.analytics_attempt) })),
        );
      }
      for (const { id, account_id, device_id, received_at } of old) {
        // An old upload's hits may have recent capture times (a late upload of an old capture): delete them
        // in batches too, so the cascade from the upload row has nothing big left to do.
        for (;;) {
          const refs = await this.hitRefs(`upload_id = ?`, [id]);
          if (refs.length === 0) break;
          flowHits += await this.dataSource.transaction((tx) => this.hits.deleteFromUpload(tx, Number(account_id), Number(id), refs));
          await nextTurn();
        }
        // Its roll-ups went with its last hits; its DNS hits go here, so the upload row's cascade finds nothing left.
        dnsHits += await this.hits.deleteUploadDns(em, Number(id));
        // The device keeps what was taken (retro-hunts reaching back before it say they could not judge it), in
        // the delete's transaction: a stop between the two neither loses nor counts twice.
        uploads += await this.dataSource.transaction(async (tx) => {
          // Asked again: a hunt may have queued it since it was listed.
          const n = await execute(tx, `DELETE FROM log_upload WHERE id = ? AND ${PURGEABLE}`, [id, RetroHuntStatus.RUNNING]);
          if (n > 0)
            await execute(
              tx,
              `UPDATE device SET uploads_purged = uploads_purged + 1,
                      uploads_purged_through = CASE WHEN uploads_purged_through IS NULL OR uploads_purged_through < ? THEN ? ELSE uploads_purged_through END
                WHERE id = ?`,
              [Number(received_at), Number(received_at), device_id],
            );
          return n;
        });
      }
    }
    // ClickHouse rows no upload will count (runs stopped before their commit, uploads deleted while written).
    if (this.hits.toClickHouse) await this.hits.sweepAnalytics(em);
    await pruneHitChanges(em, now);
    return { flowHits, dnsHits, uploads, cutoff: new Date(cutoff) };
  }

  /**
   * Deletes hits captured before the cutoff in batches, each in its own transaction with its roll-ups, the
   * uploads' counts (`hits` to `hits_purged`: an upload never claims hits that are no longer stored) and the
   * change log (HitWriter.purge).
   */
  private async purgeHits(cutoff: number): Promise<number> {
    let total = 0;
    for (;;) {
      const refs = await this.hitRefs(`first_seen_at < ?`, [cutoff], 'ORDER BY id');
      if (refs.length === 0) return total;
      total += await this.dataSource.transaction(async (tx) => {
        const uploads = [...new Set(refs.map((r) => r.uploadId))].sort((a, b) => a - b);
        // The upload rows first, as the worker's write takes them before it replaces hits: the two never wait
        // on each other crosswise. Hits the worker replaced meanwhile are gone and count 0 here.
        if (dialectOf(tx) === 'mysql')
          await tx.query(`SELECT id FROM log_upload WHERE id IN (${uploads.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`, uploads);
        return this.hits.purge(tx, cutoff, refs);
      });
      // Between batches, other requests get their turn (on SQLite each statement runs synchronously).
      await nextTurn();
    }
  }

  /**
   * With the analytics tier: deletes the hits captured before the cutoff in ClickHouse (every attempt), then sets
   * the counts of the uploads that may have had some from what is left of their committed attempts (HitWriter.
   * recountPurged: absolute, so a stop between the two, or the TTL having deleted first, still counts each hit
   * once). An upload can have a hit before the cutoff only if its first capture is before it.
   */
  private async purgeAnalyticsHits(cutoff: number): Promise<number> {
    await this.hits.purgeAnalytics(cutoff);
    let total = 0;
    let after = 0;
    for (;;) {
      const rows: Array<{ id: number | string; analytics_attempt: number | string; hits: number | string }> = await this.dataSource.query(
        `SELECT id, analytics_attempt, hits FROM log_upload
          WHERE id > ? AND analytics_attempt IS NOT NULL AND hits > 0 AND first_capture_at < ? ORDER BY id LIMIT ${this.batch}`,
        [after, cutoff],
      );
      if (rows.length === 0) return total;
      after = Number(rows[rows.length - 1].id);
      const uploads = rows.map((r) => ({ uploadId: Number(r.id), attempt: Number(r.analytics_attempt), hits: Number(r.hits) }));
      total += await this.dataSource.transaction((tx) => this.hits.recountPurged(tx, cutoff, uploads));
      await nextTurn();
    }
  }

  private async hitRefs(where: string, params: unknown[], order = ''): Promise<HitRef[]> {
    const rows: Array<{ id: number | string; upload_id: number | string; first_seen_at: number | string }> = await this.dataSource.query(
      `SELECT id, upload_id, first_seen_at FROM flow_hit WHERE ${where} ${order} LIMIT ${this.batch}`,
      params,
    );
    return rows.map((r) => ({ id: Number(r.id), uploadId: Number(r.upload_id), firstSeenAt: Number(r.first_seen_at) }));
  }
}
