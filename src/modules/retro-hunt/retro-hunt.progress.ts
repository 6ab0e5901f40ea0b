import { EntityManager } from 'typeorm';
import { execute } from '../../db/bulk';
import type { ReplaceCounts } from '../flow-hit/hit-writer';

/** The retro-hunts waiting for a run of the upload (retro_hunt_upload), in the order they were requested. */
export async function huntsWaitingFor(em: EntityManager, uploadId: number): Promise<number[]> {
  const rows: Array<{ retro_hunt_id: number | string }> = await em.query(
    `SELECT retro_hunt_id FROM retro_hunt_upload WHERE upload_id = ? ORDER BY retro_hunt_id`,
    [uploadId],
  );
  return rows.map((r) => Number(r.retro_hunt_id));
}

/**
 * A run of an upload the hunt waited for has written its hits: the hunt stops waiting for it, and the run's counts
 * join the hunt's, in the same transaction.
 */
export async function recordRetroHuntRun(
  em: EntityManager,
  uploadId: number,
  retroHuntId: number,
  counts: ReplaceCounts,
  dnsCounts: ReplaceCounts = { added: 0, removed: 0 },
): Promise<void> {
  await execute(em, `DELETE FROM retro_hunt_upload WHERE retro_hunt_id = ? AND upload_id = ?`, [retroHuntId, uploadId]);
  await execute(
    em,
    `UPDATE retro_hunt SET uploads_done = uploads_done + 1, hits_added = hits_added + ?, hits_removed = hits_removed + ?,
            dns_hits_added = dns_hits_added + ?, dns_hits_removed = dns_hits_removed + ? WHERE id = ?`,
    [counts.added, counts.removed, dnsCounts.added, dnsCounts.removed, retroHuntId],
  );
}
