import { EntityManager } from 'typeorm';
import { bulkInsert, execute } from '../../db/bulk';
import { AddressSet, decodeAddressSet, encodeAddressSet } from './address-set';
import { BLOB_CHUNK_BYTES } from './log-upload-blob.entity';

/** Replaces an upload's address set, in the caller's transaction (the one that writes its hits). */
export async function writeAddressSet(em: EntityManager, uploadId: number, set: AddressSet): Promise<void> {
  // Delete only what exists: a DELETE that finds no row still takes a gap lock on MySQL (see hit-writer.ts).
  const [row] = (await em.query(`SELECT EXISTS(SELECT 1 FROM upload_address_set WHERE upload_id = ?) AS e`, [uploadId])) as Array<{ e: number | string }>;
  if (Number(row.e) === 1) await execute(em, `DELETE FROM upload_address_set WHERE upload_id = ?`, [uploadId]);
  const { v4, v6 } = encodeAddressSet(set);
  const data = Buffer.concat([v4, v6]);
  const rows: unknown[][] = [];
  // One row even when empty: an upload with a set is one whose addresses are known.
  for (let seq = 0, at = 0; seq === 0 || at < data.length; seq++, at += BLOB_CHUNK_BYTES) {
    rows.push([uploadId, seq, set.v4.length, data.subarray(at, at + BLOB_CHUNK_BYTES)]);
  }
  await bulkInsert(em, 'upload_address_set', ['upload_id', 'seq', 'v4_count', 'data'], rows);
}

/** The address sets of these uploads (uploads without one are absent from the map). */
export async function readAddressSets(em: EntityManager, uploadIds: readonly number[]): Promise<Map<number, AddressSet>> {
  const out = new Map<number, AddressSet>();
  for (let i = 0; i < uploadIds.length; i += 500) {
    const ids = uploadIds.slice(i, i + 500);
    const rows: Array<{ upload_id: number | string; seq: number | string; v4_count: number | string; data: Buffer }> = await em.query(
      `SELECT upload_id, seq, v4_count, data FROM upload_address_set WHERE upload_id IN (${ids.map(() => '?').join(',')}) ORDER BY upload_id, seq`,
      ids,
    );
    const parts = new Map<number, { v4Count: number; chunks: Buffer[] }>();
    for (const r of rows) {
      const id = Number(r.upload_id);
      const p = parts.get(id) ?? { v4Count: Number(r.v4_count), chunks: [] };
      p.chunks.push(Buffer.from(r.data));
      parts.set(id, p);
    }
    for (const [id, p] of parts) {
      const data = Buffer.concat(p.chunks);
      out.set(id, decodeAddressSet(data.subarray(0, p.v4Count * 4), data.subarray(p.v4Count * 4)));
    }
  }
  return out;
}
