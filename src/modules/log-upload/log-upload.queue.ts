import { clip } from '../../common/text';
import { EventEmitter } from 'node:events';
import { DataSource, EntityManager } from 'typeorm';
import { dialectOf, execute } from '../../db/bulk';
import { LogUploadStatus } from './log-upload.enums';

export const MAX_ATTEMPTS = 5;

export interface ClaimedJob {
  uploadId: number;
  attempt: number;
  /** True when the job was taken over from a worker whose lease expired. */
  recovered: boolean;
}

/**
 * The job queue is the log_upload table itself: QUEUED rows wait, a worker claims one by writing its
 * lease (owner + expiry), renews it while it works, and clears it when done. MySQL/MariaDB claim with
 * `FOR UPDATE SKIP LOCKED`, so workers in many processes never take the same row; SQLite serves one
 * process, whose transactions are serialised anyway. A lease that expires (its process died) makes the
 * row claimable again; the finishing write checks the lease, so a worker that lost it changes nothing.
 * A QUEUED row with a lease_expires_at waits out a retry's backoff (log-upload.retry.ts): claimable from then.
 */
export class LogUploadQueue {
  /** Emits `gave-up` ({ uploadId, attempts }) when a job is failed for having stopped its worker too often. */
  readonly events = new EventEmitter();

  constructor(private readonly dataSource: DataSource) {}

  async claim(owner: string, leaseMs: number, now = Date.now()): Promise<ClaimedJob | null> {
    return this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE SKIP LOCKED' : '';
      const rows: Array<{ id: number | string; status: string; attempts: number | string }> = await em.query(
        `SELECT id, status, attempts FROM log_upload
          WHERE (status = ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)) OR (status = ? AND lease_expires_at < ?)
          ORDER BY id LIMIT 1${lock}`,
        [LogUploadStatus.QUEUED, now, LogUploadStatus.PROCESSING, now],
      );
      if (rows.length === 0) return null;
      const id = Number(rows[0].id);
      const attempts = Number(rows[0].attempts);
      const recovered = rows[0].status === LogUploadStatus.PROCESSING;
      if (attempts >= MAX_ATTEMPTS) {
        // A file that kills its worker every time must not take the service down forever.
        await em.query(`UPDATE log_upload SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, finished_at = ? WHERE id = ?`, [
          LogUploadStatus.FAILED,
          `Gave up after ${attempts} attempts: the worker processing it stopped each time.`,
          now,
          id,
        ]);
        this.events.emit('gave-up', { uploadId: id, attempts });
        return null;
      }
      await em.query(
        `UPDATE log_upload SET status = ?, lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, started_at = ?, error = NULL,
                progress_bytes = 0, progress_lines = 0 WHERE id = ?`,
        [LogUploadStatus.PROCESSING, owner, now + leaseMs, now, id],
      );
      return { uploadId: id, attempt: attempts + 1, recovered };
    });
  }

  /** Extends the lease and records progress; false when the lease is no longer ours. */
  async renew(uploadId: number, owner: string, leaseMs: number, progress?: { bytes: number; lines: number }): Promise<boolean> {
    const now = Date.now();
    const params: unknown[] = [now + leaseMs];
    let set = 'lease_expires_at = ?';
    if (progress) {
      set += ', progress_bytes = ?, progress_lines = ?';
      params.push(progress.bytes, progress.lines);
    }
    const n = await execute(this.dataSource.manager, `UPDATE log_upload SET ${set} WHERE id = ? AND lease_owner = ? AND status = ?`, [
      ...params,
      uploadId,
      owner,
      LogUploadStatus.PROCESSING,
    ]);
    return n === 1;
  }

  /** Takes the lease for the finishing transaction (row lock on MySQL); false when it is no longer ours. */
  async holdsLease(em: EntityManager, uploadId: number, owner: string): Promise<boolean> {
    const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
    const rows: unknown[] = await em.query(`SELECT id FROM log_upload WHERE id = ? AND lease_owner = ? AND status = ?${lock}`, [
      uploadId,
      owner,
      LogUploadStatus.PROCESSING,
    ]);
    return rows.length === 1;
  }

  async fail(uploadId: number, owner: string, reason: string): Promise<boolean> {
    const n = await execute(
      this.dataSource.manager,
      `UPDATE log_upload SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, finished_at = ? WHERE id = ? AND lease_owner = ?`,
      [LogUploadStatus.FAILED, clip(reason, 4000), Date.now(), uploadId, owner],
    );
    return n === 1;
  }

  /**
   * Counts a retry of the finishing transaction as an attempt (within MAX_ATTEMPTS), records why, and extends the
   * lease by `leaseMs` over the wait. The new attempt number, or null when the budget is spent or the lease lost.
   */
  async countRetry(uploadId: number, owner: string, reason: string, leaseMs: number): Promise<number | null> {
    const n = await execute(
      this.dataSource.manager,
      `UPDATE log_upload SET attempts = attempts + 1, error = ?, lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND status = ? AND attempts < ?`,
      [clip(reason, 4000), Date.now() + leaseMs, uploadId, owner, LogUploadStatus.PROCESSING, MAX_ATTEMPTS],
    );
    return n === 1 ? this.attemptsOf(uploadId) : null;
  }

  /**
   * Puts a job back in the queue, claimable after `delayMs` (a retry's backoff), saying why; false when the lease is
   * not ours. `refund` gives the attempt back: the failure was the server's state, not a try of the upload.
   */
  async retryLater(uploadId: number, owner: string, reason: string, delayMs: number, refund = false): Promise<boolean> {
    const attempts = refund ? 'CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END' : 'attempts';
    const n = await execute(
      this.dataSource.manager,
      `UPDATE log_upload SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = ?, progress_bytes = 0, progress_lines = 0, attempts = ${attempts}
        WHERE id = ? AND lease_owner = ? AND status = ?`,
      [LogUploadStatus.QUEUED, clip(reason, 4000), Date.now() + delayMs, uploadId, owner, LogUploadStatus.PROCESSING],
    );
    return n === 1;
  }

  async attemptsOf(uploadId: number): Promise<number> {
    const rows: Array<{ attempts: number | string }> = await this.dataSource.query(`SELECT attempts FROM log_upload WHERE id = ?`, [uploadId]);
    return rows.length ? Number(rows[0].attempts) : 0;
  }

  /** Graceful shutdown: hands the job back so another process can take it at once. */
  async release(uploadId: number, owner: string): Promise<boolean> {
    const n = await execute(
      this.dataSource.manager,
      `UPDATE log_upload SET status = ?, lease_owner = NULL, lease_expires_at = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
        WHERE id = ? AND lease_owner = ? AND status = ?`,
      [LogUploadStatus.QUEUED, uploadId, owner, LogUploadStatus.PROCESSING],
    );
    return n === 1;
  }

  async depth(): Promise<Record<LogUploadStatus, number>> {
    const rows: Array<{ status: LogUploadStatus; n: number | string }> = await this.dataSource.query(
      `SELECT status, COUNT(*) AS n FROM log_upload GROUP BY status`,
    );
    const out = { QUEUED: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 } as Record<LogUploadStatus, number>;
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }
}
