import { EntityManager } from 'typeorm';
import { execute } from '../../db/bulk';
import type { ReplaceCounts } from '../flow-hit/hit-writer';

/** A re-run a retro-hunt queued has written its hits: its counts join the hunt's, in the same transaction. */
export async function recordRetroHuntRun(
  em: EntityManager,
  uploadId: number,
  retroHuntId: number,
  counts: ReplaceCounts,
  dnsCounts: ReplaceCounts = { added: 0, removed: 0 },
): Promise<void> {
  await execute(em, `UPDATE log_upload SET retro_hunt_id = NULL WHERE id = ?`, [uploadId]);
  await execute(
    em,
    `UPDATE retro_hunt SET uploads_done = uploads_done + 1, hits_added = hits_added + ?, hits_removed = hits_removed + ?,
            dns_hits_added = dns_hits_added + ?, dns_hits_removed = dns_hits_removed + ? WHERE id = ?`,
    [counts.added, counts.removed, dnsCounts.added, dnsCounts.removed, retroHuntId],
  );
}
