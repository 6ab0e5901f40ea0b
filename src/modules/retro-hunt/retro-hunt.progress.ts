import { EntityManager } from 'typeorm';
import { dialectOf, execute } from '../../db/bulk';
import type { ReplaceCounts } from '../flow-hit/hit-writer';
import { RetroHuntStatus } from './retro-hunt.enums';

/**
 * The running retro-hunts waiting for a run of the upload (retro_hunt_upload), in the order they were requested. A
 * hunt that completed while it waited (the upload failed) waits no more: its row goes with the upload's next run.
 */
export async function huntsWaitingFor(em: EntityManager, uploadId: number): Promise<number[]> {
  const rows: Array<{ retro_hunt_id: number | string }> = await em.query(
    `SELECT w.retro_hunt_id FROM retro_hunt_upload w JOIN retro_hunt h ON h.id = w.retro_hunt_id
      WHERE w.upload_id = ? AND h.status = ? ORDER BY w.retro_hunt_id`,
    [uploadId, RetroHuntStatus.RUNNING],
  );
  return rows.map((r) => Number(r.retro_hunt_id));
}

/**
 * A run of an upload the hunt waited for has written its hits: the hunt stops waiting for it, and the run's counts
 * join the hunt's, in the same transaction (the upload's row is locked by then). The hunt's row is locked first, as
 * completing it does (retro-hunt.service.ts): a hunt that completed meanwhile, or no longer waits for the upload,
 * counts nothing. Returns whether it counted.
 */
export async function recordRetroHuntRun(
  em: EntityManager,
  uploadId: number,
  retroHuntId: number,
  counts: ReplaceCounts,
  dnsCounts: ReplaceCounts = { added: 0, removed: 0 },
): Promise<boolean> {
  const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
  const [hunt] = (await em.query(`SELECT status FROM retro_hunt WHERE id = ?${lock}`, [retroHuntId])) as Array<{ status: string }>;
  const waited = await execute(em, `DELETE FROM retro_hunt_upload WHERE retro_hunt_id = ? AND upload_id = ?`, [retroHuntId, uploadId]);
  if (hunt?.status !== RetroHuntStatus.RUNNING || waited === 0) return false;
  await execute(
    em,
    `UPDATE retro_hunt SET uploads_done = uploads_done + 1, hits_added = hits_added + ?, hits_removed = hits_removed + ?,
            dns_hits_added = dns_hits_added + ?, dns_hits_removed = dns_hits_removed + ? WHERE id = ?`,
    [counts.added, counts.removed, dnsCounts.added, dnsCounts.removed, retroHuntId],
  );
  return true;
}

/** The upload's rows of hunts that no longer wait for it (completed while it failed), dropped by the run that ends. */
export async function dropFinishedWaits(em: EntityManager, uploadId: number, stillWaiting: number[]): Promise<void> {
  await execute(
    em,
    `DELETE FROM retro_hunt_upload WHERE upload_id = ?${stillWaiting.length ? ` AND retro_hunt_id NOT IN (${stillWaiting.map(() => '?').join(', ')})` : ''}`,
    [uploadId, ...stillWaiting],
  );
}
