import { randomInt } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { EntityManager } from 'typeorm';
import { INSERT_COLUMNS, NewHit } from '../flow-hit/flow-hit.columns';
import { ANALYTICS_HITS_TABLE } from './analytics-schema';

/** A hit's id here: its upload's id times this, plus its place in the upload (an upload has far fewer hits). */
export const HIT_ID_UPLOAD_STRIDE = 2 ** 22;

/** Rows per INSERT (one insert is one part; a million-hit upload takes a few). */
const INSERT_BATCH = 200_000;

/** An upload's committed attempt: the one whose rows reads keep (log_upload.analytics_attempt in SQL). */
export interface CommittedAttempt {
  uploadId: number;
  attempt: number;
}

/**
 * The hits in ClickHouse (ANALYTICS_URL), written by HitWriter. An upload's hits are written under a new attempt
 * number before its COMPLETED commit, which records that number in log_upload.analytics_attempt; reads keep only
 * the recorded attempt of each upload (committedAttempts()), so rows of an attempt that never committed (the
 * process killed between the two writes, a transaction rolled back) are never counted, and are removed by the
 * next write of the upload or by removeStale().
 */
export class AnalyticsHits {
  constructor(private readonly client: ClickHouseClient) {}

  /**
   * Writes an upload's hits under a new attempt number and returns it; the caller records it in SQL in the
   * transaction that commits the upload. Rows of other attempts but `keep` (the committed one) go first.
   */
  async write(upload: { accountId: number; uploadId: number }, hits: readonly NewHit[], keep: number | null): Promise<number> {
    await this.removeStale(upload.uploadId, keep);
    let attempt = randomInt(1, 2 ** 32 - 1);
    while (attempt === keep) attempt = randomInt(1, 2 ** 32 - 1);
    if (hits.length >= HIT_ID_UPLOAD_STRIDE) throw new Error(`An upload of ${hits.length} hits: at most ${HIT_ID_UPLOAD_STRIDE - 1} are stored.`);
    for (let start = 0; start < hits.length; start += INSERT_BATCH) {
      const values = hits.slice(start, start + INSERT_BATCH).map((h, i) => {
        const seq = start + i;
        const row: Record<string, unknown> = { id: upload.uploadId * HIT_ID_UPLOAD_STRIDE + seq, attempt, seq };
        for (const c of INSERT_COLUMNS) row[c.sql] = h[c.key];
        return row;
      });
      await this.client.insert({ table: ANALYTICS_HITS_TABLE, values, format: 'JSONEachRow' });
    }
    return attempt;
  }

  /** Removes an upload's rows of every attempt but `keep` (null: all of them). */
  async removeStale(uploadId: number, keep: number | null): Promise<void> {
    const where = `upload_id = {upload:UInt64}${keep === null ? '' : ' AND attempt != {keep:UInt32}'}`;
    // A DELETE is a mutation of every part, even when it matches nothing: an upload's first write (nearly every
    // write) only looks. Seeding 100k hits in 120 uploads took 181 s with the DELETE each time, under 1 s without.
    const found = await (
      await this.client.query({
        query: `SELECT 1 FROM ${ANALYTICS_HITS_TABLE} WHERE ${where} LIMIT 1`,
        query_params: { upload: uploadId, keep },
        format: 'JSONEachRow',
      })
    ).json();
    if (found.length === 0) return;
    await this.client.command({ query: `DELETE FROM ${ANALYTICS_HITS_TABLE} WHERE ${where}`, query_params: { upload: uploadId, keep } });
  }

  /** Removes a device's hits (the device being deleted). */
  async deleteDevice(accountId: number, deviceId: number): Promise<void> {
    await this.client.command({
      query: `DELETE FROM ${ANALYTICS_HITS_TABLE} WHERE account_id = {account:UInt64} AND device_id = {device:UInt64}`,
      query_params: { account: accountId, device: deviceId },
    });
  }

  /** Removes the hits captured before `before` (epoch ms): the retention purge, at once rather than at the TTL's next merge. */
  async purge(before: number): Promise<void> {
    await this.client.command({ query: `DELETE FROM ${ANALYTICS_HITS_TABLE} WHERE first_seen_at < {before:Int64}`, query_params: { before } });
  }

  /** Each of the account's uploads with hits stored, and its hit count, from its committed attempt only. */
  async uploadHitCounts(accountId: number, committed: readonly CommittedAttempt[]): Promise<Map<number, number>> {
    const rows = await (
      await this.client.query({
        query: `SELECT upload_id, count() AS hits FROM ${ANALYTICS_HITS_TABLE}
                WHERE account_id = {account:UInt64} AND ${COMMITTED_FILTER}
                GROUP BY upload_id`,
        query_params: { account: accountId, ...committedParams(committed) },
        format: 'JSONEachRow',
      })
    ).json<{ upload_id: number; hits: number }>();
    return new Map(rows.map((r) => [Number(r.upload_id), Number(r.hits)]));
  }
}

/**
 * The condition that keeps the committed attempts' rows, with committedParams() (two arrays: arrays of tuples as
 * query parameters are not formatted alike by every connection). The subquery is a set, built once per query.
 */
export const COMMITTED_FILTER = `(upload_id, attempt) IN (SELECT arrayJoin(arrayZip({uploads:Array(Int64)}, {attempts:Array(UInt32)})))`;

export function committedParams(committed: readonly CommittedAttempt[]): { uploads: number[]; attempts: number[] } {
  return { uploads: committed.map((c) => c.uploadId), attempts: committed.map((c) => c.attempt) };
}

/** The account's uploads' committed attempts, from SQL (the system of record). */
export async function committedAttempts(em: Pick<EntityManager, 'query'>, accountId: number): Promise<CommittedAttempt[]> {
  const rows: Array<{ id: number | string; analytics_attempt: number | string }> = await em.query(
    `SELECT id, analytics_attempt FROM log_upload WHERE account_id = ? AND analytics_attempt IS NOT NULL`,
    [accountId],
  );
  return rows.map((r) => ({ uploadId: Number(r.id), attempt: Number(r.analytics_attempt) }));
}

/** The upload's committed attempt, or null (none, or hits never written to ClickHouse). */
export async function committedAttempt(em: Pick<EntityManager, 'query'>, uploadId: number): Promise<number | null> {
  const [row]: Array<{ analytics_attempt: number | string | null }> = await em.query(`SELECT analytics_attempt FROM log_upload WHERE id = ?`, [uploadId]);
  return row?.analytics_attempt == null ? null : Number(row.analytics_attempt);
}
