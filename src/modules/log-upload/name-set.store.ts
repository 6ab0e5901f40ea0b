import { EntityManager } from 'typeorm';
import { bulkInsert, execute } from '../../db/bulk';
import { decodeNameSet, encodeNameSet, NameSet } from './name-set';
import { BLOB_CHUNK_BYTES } from './log-upload-blob.entity';

/**
 * Replaces an upload's name set, in the caller's transaction (the one that writes its hits). Null: its questions are
 * unknown (parsed with DNS off), so no row: a DOMAIN-list change then re-runs it.
 */
export async function writeNameSet(em: EntityManager, uploadId: number, names: NameSet | null): Promise<void> {
  // Delete only what exists: a DELETE that finds no row still takes a gap lock on MySQL (see hit-writer.ts).
  const [row] = (await em.query(`SELECT EXISTS(SELECT 1 FROM upload_name_set WHERE upload_id = ?) AS e`, [uploadId])) as Array<{ e: number | string }>;
  if (Number(row.e) === 1) await execute(em, `DELETE FROM upload_name_set WHERE upload_id = ?`, [uploadId]);
  if (names === null) return;
  const data = encodeNameSet(names);
  const rows: unknown[][] = [];
  // One row even when empty: an upload with a set is one whose questions are known.
  for (let seq = 0, at = 0; seq === 0 || at < data.length; seq++, at += BLOB_CHUNK_BYTES) {
    rows.push([uploadId, seq, names.length, data.subarray(at, at + BLOB_CHUNK_BYTES)]);
  }
  await bulkInsert(em, 'upload_name_set', ['upload_id', 'seq', 'name_count', 'data'], rows);
}

/** The name sets of these uploads (uploads without one are absent from the map). */
export async function readNameSets(em: EntityManager, uploadIds: readonly number[]): Promise<Map<number, NameSet>> {
  const out = new Map<number, NameSet>();
  for (let i = 0; i < uploadIds.length; i += 500) {
    const ids = uploadIds.slice(i, i + 500);
    const rows: Array<{ upload_id: number | string; name_count: number | string; data: Buffer }> = await em.query(
      `SELECT upload_id, name_count, data FROM upload_name_set WHERE upload_id IN (${ids.map(() => '?').join(',')}) ORDER BY upload_id, seq`,
      ids,
    );
    const parts = new Map<number, { count: number; chunks: Buffer[] }>();
    for (const r of rows) {
      const id = Number(r.upload_id);
      const p = parts.get(id) ?? { count: Number(r.name_count), chunks: [] };
      p.chunks.push(Buffer.from(r.data));
      parts.set(id, p);
    }
    for (const [id, p] of parts) out.set(id, decodeNameSet(Buffer.concat(p.chunks), p.count));
  }
  return out;
}
