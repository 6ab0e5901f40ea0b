import { Column, Entity, EntityManager, PrimaryColumn } from 'typeorm';
import { bigintNumber } from '../../db/columns';
import { execute } from '../../db/bulk';

/**
 * The change log of flow hits, which the in-memory report store (hit-memory.ts) follows to stay exact.
 *
 * Every transaction that adds or removes hits ends by taking the next revision from `hit_revision` (an UPDATE of
 * its single row, whose lock is held until the commit) and writing one `hit_change` row under it. The lock puts
 * the commits in revision order, so a reader that has seen revision N has seen every change up to N: it asks for
 * `revision > N` and never misses one committed late. The lock is taken at the end of the transaction, after
 * the hits are written, so writers wait for each other only for their last statement and the commit.
 *
 * A change names what to re-read, not the rows: "upload U's hits were replaced", "device D's hits were deleted",
 * "every hit captured before T was purged". Re-reading is idempotent, so applying a change again, or after a
 * later state was already read, gives the same result.
 */
@Entity('hit_revision')
export class HitRevision {
  /** Always 1: the one row whose lock orders hit changes. */
  @PrimaryColumn({ type: 'int' })
  id: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  revision: number;
}

/** No foreign keys: a change outlives the account, device or upload it names (their deletion is the change). */
@Entity('hit_change')
export class HitChange {
  @PrimaryColumn({ type: 'int' })
  revision: number;

  /** The account whose hits changed; null for a purge, which spans accounts. */
  @Column({ type: 'int', nullable: true })
  accountId: number | null;

  /** The upload whose hits were replaced or deleted. */
  @Column({ type: 'int', nullable: true })
  uploadId: number | null;

  /** The device whose hits were deleted (with the device). */
  @Column({ type: 'int', nullable: true })
  deviceId: number | null;

  /** Every hit captured before this instant (epoch ms) was purged. */
  @Column({ type: 'bigint', nullable: true, transformer: bigintNumber })
  purgedBefore: number | null;

  @Column({ type: 'bigint', transformer: bigintNumber })
  recordedAt: number;

  /** TRIAGE: only the upload's hits' verdicts changed (the report store re-reads them; no hit is new). Null otherwise. */
  @Column({ type: 'varchar', length: 16, nullable: true })
  kind: 'TRIAGE' | null;

  /**
   * A write of the upload's hits: how many (flow and DNS) it found that the upload did not have. 0 for a re-run
   * that found nothing new and for some of its hits purged: the report store re-reads them, hitsFound sends nothing.
   * Null for other changes, and for those written before the column (taken as found).
   */
  @Column({ type: 'int', nullable: true })
  found: number | null;
}

export type HitChangeKind =
  | { accountId: number; uploadId: number; kind: 'TRIAGE' }
  | { accountId: number; uploadId: number; found: number }
  | { accountId: number; deviceId: number }
  | { purgedBefore: number };

/**
 * Records a hit change; call it last in the transaction that made the change (see above). Outside a
 * transaction it opens its own, for changes whose deletions ran in many small transactions before it.
 */
export async function recordHitChange(em: EntityManager, change: HitChangeKind): Promise<number> {
  if (!em.queryRunner?.isTransactionActive) return em.connection.transaction((tx) => recordHitChange(tx, change));
  await execute(em, 'UPDATE hit_revision SET revision = revision + 1 WHERE id = 1');
  // On the transaction's own connection (the runner), so the read sees the UPDATE above.
  const [row] = (await em.queryRunner.query('SELECT revision FROM hit_revision WHERE id = 1')) as Array<{ revision: number | string }>;
  const revision = Number(row.revision);
  const c = change as Partial<Record<'accountId' | 'uploadId' | 'deviceId' | 'purgedBefore' | 'found', number> & { kind: string }>;
  await execute(
    em,
    'INSERT INTO hit_change (revision, account_id, upload_id, device_id, purged_before, recorded_at, kind, found) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [revision, c.accountId ?? null, c.uploadId ?? null, c.deviceId ?? null, c.purgedBefore ?? null, Date.now(), c.kind ?? null, c.found ?? null],
  );
  return revision;
}

/** Changes are kept this long; a reader further behind reloads everything (hit-memory.ts). */
export const HIT_CHANGE_KEEP_MS = 24 * 3600_000;

/** Deletes changes older than HIT_CHANGE_KEEP_MS, always keeping the newest. */
export async function pruneHitChanges(em: EntityManager, now = Date.now()): Promise<number> {
  return execute(em, 'DELETE FROM hit_change WHERE recorded_at < ? AND revision < (SELECT revision FROM hit_revision WHERE id = 1)', [
    now - HIT_CHANGE_KEEP_MS,
  ]);
}
