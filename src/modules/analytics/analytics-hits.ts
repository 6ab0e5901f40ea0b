import { randomInt } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { EntityManager } from 'typeorm';
import { INSERT_COLUMNS, NewHit } from '../flow-hit/flow-hit.columns';
import { ANALYTICS_HITS_TABLE } from './analytics-schema';
import { ANALYTICS_ROLLUP_TABLE, DAY_MS, rollUpSelect } from './analytics-rollup';
import { AnalyticsUnavailableError, onAnalytics } from './analytics-errors';

/** A hit's id here: its upload's id times this, plus its place in the upload (an upload has far fewer hits). */
export const HIT_ID_UPLOAD_STRIDE = 2 ** 22;

/** Rows per INSERT (one insert is one part; a million-hit upload takes a few). */
const INSERT_BATCH = 100_000;

/** flow_hit's columns in the order of the writer's TabSeparated rows. */
const TSV_COLUMNS = ['id', 'attempt', 'seq', ...INSERT_COLUMNS.map((c) => c.sql)];
const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };

/**
 * One value as a TabSeparated field: `\N` for none (a column's default where it is not Nullable, as a key left out
 * of a JSON row), an integer as its digits (past 2^53 the double's, as JSON.stringify wrote them), text with
 * backslash, tab, newline, carriage return and NUL escaped.
 */
export function tsvValue(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || Math.abs(v) >= 1e21) throw new Error(`flow_hit takes integers, not ${v}`);
    return String(v);
  }
  const text = String(v);
  return /[\\\t\n\r\0]/.test(text) ? text.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c]) : text;
}

/** An upload's committed attempt: the one whose rows reads keep (log_upload.analytics_attempt in SQL). */
export interface CommittedAttempt {
  uploadId: number;
  attempt: number;
}

/** A stored hit's stable identity and how it was found: what a re-run compares its hits with (HitWriter). */
export interface FoundRow {
  protocol: string;
  internal_key: string;
  internal_port: number | null;
  external_key: string;
  external_port: number | null;
  matched_side: string;
  ioc_id: number;
  found_by: string;
  found_at: number;
  retro_hunt_id: number | null;
}

/**
 * The hits in ClickHouse (ANALYTICS_URL), written by HitWriter. An upload's hits are written under a new attempt
 * number before its COMPLETED commit, which records that number in log_upload.analytics_attempt; reads keep only
 * the recorded attempt of each upload (committedAttempts()), so rows of an attempt that never committed (the
 * process killed between the two writes, a transaction rolled back) are never counted, and are removed by the
 * next write of the upload, by removeStale() after the commit, or by the retention purge's sweep (orphans()).
 *
 * Every call fails with AnalyticsUnavailableError when ClickHouse is away for a moment (analytics-errors.ts), and
 * before its tables are migrated (`ready`: ClickHouse was down at start and the migration is still retried).
 */
export class AnalyticsHits {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly ready: () => boolean = () => true,
  ) {}

  /**
   * Writes an upload's hits under a new attempt number and returns it; the caller records it in SQL in the
   * transaction that commits the upload. Rows of other attempts but `keep` (the committed one) go first, unless
   * the caller has removed them (`staleRemoved`: removeStale() of this upload and `keep`, under the same lease).
   */
  async write(
    upload: { accountId: number; uploadId: number },
    hits: readonly NewHit[],
    keep: number | null,
    options: { staleRemoved?: boolean } = {},
  ): Promise<number> {
    if (hits.length >= HIT_ID_UPLOAD_STRIDE) throw new Error(`An upload of ${hits.length} hits: at most ${HIT_ID_UPLOAD_STRIDE - 1} are stored.`);
    if (!options.staleRemoved) await this.removeStale(upload.uploadId, keep);
    let attempt = randomInt(1, 2 ** 32 - 1);
    while (attempt === keep) attempt = randomInt(1, 2 ** 32 - 1);
    // TabSeparated rows in the statement's text: ClickHouse reads them 4-5x faster than JSONEachRow (at 5,000 hits
    // 44 against 193 ms in chDB), and chDB runs a statement without parameters beside others instead of in turn.
    for (let start = 0; start < hits.length; start += INSERT_BATCH) {
      const end = Math.min(hits.length, start + INSERT_BATCH);
      const lines: string[] = [];
      for (let seq = start; seq < end; seq++) {
        const h = hits[seq];
        let line = `${upload.uploadId * HIT_ID_UPLOAD_STRIDE + seq}\t${attempt}\t${seq}`;
        for (const c of INSERT_COLUMNS) line += `\t${tsvValue(h[c.key])}`;
        lines.push(line);
      }
      const query = `INSERT INTO ${ANALYTICS_HITS_TABLE} (${TSV_COLUMNS.join(', ')}) FORMAT TabSeparated\n${lines.join('\n')}\n`;
      await this.call(() => this.client.command({ query }));
    }
    // The attempt's roll-up rows, from its rows now that they are all in (an upload's granules only: the minmax
    // index on upload_id). Written again by a retry, the same rows (analytics-rollup.ts).
    if (hits.length) {
      await this.command(rollUpSelect(ANALYTICS_HITS_TABLE, 'upload_id = {upload:UInt64} AND attempt = {attempt:UInt32}'), {
        upload: upload.uploadId,
        attempt,
      });
    }
    return attempt;
  }

  /** The identities and found-by columns of an upload's rows of one attempt (its committed one). */
  async found(uploadId: number, attempt: number): Promise<FoundRow[]> {
    const rows = await this.rows<FoundRow>(
      `SELECT protocol, internal_key, internal_port, external_key, external_port, matched_side, ioc_id, found_by, found_at, retro_hunt_id
         FROM ${ANALYTICS_HITS_TABLE} WHERE upload_id = {upload:UInt64} AND attempt = {attempt:UInt32}`,
      { upload: uploadId, attempt },
    );
    return rows;
  }

  /**
   * Removes an upload's rows of every attempt but `keep` (null: all of them). Asks first: most uploads have none,
   * and a DELETE is a mutation of every part it may touch.
   */
  async removeStale(uploadId: number, keep: number | null): Promise<void> {
    const other = keep === null ? '' : ' AND attempt != {keep:UInt32}';
    const params = { upload: uploadId, keep };
    const [any] = await this.rows<{ n: number }>(`SELECT count() AS n FROM ${ANALYTICS_HITS_TABLE} WHERE upload_id = {upload:UInt64}${other}`, params);
    if (Number(any?.n ?? 0) === 0) return;
    await this.deleteBoth(`upload_id = {upload:UInt64}${other}`, params);
  }

  /** Removes the rows of one attempt of an upload (a run that lost its lease after writing them). */
  async removeAttempt(uploadId: number, attempt: number): Promise<void> {
    await this.deleteBoth(`upload_id = {upload:UInt64} AND attempt = {attempt:UInt32}`, { upload: uploadId, attempt });
  }

  /** Removes a device's hits (the device being deleted). */
  async deleteDevice(accountId: number, deviceId: number): Promise<void> {
    await this.deleteBoth(`account_id = {account:UInt64} AND device_id = {device:UInt64}`, {
      account: accountId,
      device: deviceId,
    });
  }

  /** Removes every row of these uploads (uploads being deleted by the retention purge). */
  async deleteUploads(uploadIds: readonly number[]): Promise<void> {
    if (uploadIds.length === 0) return;
    await this.deleteBoth(`upload_id IN {uploads:Array(UInt64)}`, { uploads: [...uploadIds] });
  }

  /** Removes the hits captured before `before` (epoch ms): the retention purge, at once rather than at the TTL's next merge. */
  async purge(before: number): Promise<void> {
    const [any] = await this.rows<{ n: number }>(`SELECT count() AS n FROM ${ANALYTICS_HITS_TABLE} WHERE first_seen_at < {before:Int64}`, { before });
    if (Number(any?.n ?? 0) === 0) return;
    await this.command(`DELETE FROM ${ANALYTICS_HITS_TABLE} WHERE first_seen_at < {before:Int64}`, { before });
    // The roll-up's whole days before the cutoff; the day it falls in is never read from the roll-up again (rollupFrom).
    await this.command(`DELETE FROM ${ANALYTICS_ROLLUP_TABLE} WHERE day + ${DAY_MS} <= {before:Int64}`, { before });
  }

  /** The rows stored of each of these committed attempts (any account): what the retention purge left of them. */
  async committedCounts(committed: readonly CommittedAttempt[]): Promise<Map<number, number>> {
    if (committed.length === 0) return new Map();
    const rows = await this.rows<{ upload_id: number; hits: number }>(
      `SELECT upload_id, count() AS hits FROM ${ANALYTICS_HITS_TABLE} WHERE ${COMMITTED_READ} GROUP BY upload_id`,
      committedParams(committed),
    );
    return new Map(rows.map((r) => [Number(r.upload_id), Number(r.hits)]));
  }

  /**
   * Every (upload, attempt) with rows stored (hits or roll-up rows), and how many hits: the retention purge's sweep
   * compares them with SQL.
   */
  async attempts(): Promise<Array<CommittedAttempt & { rows: number }>> {
    // With the roll-up's: a stop between the two deletes of deleteBoth() leaves roll-up rows of an attempt alone.
    const rows = await this.rows<{ upload_id: number; attempt: number; n: number }>(
      `SELECT upload_id, attempt, sum(n) AS n FROM (
         SELECT upload_id, attempt, count() AS n FROM ${ANALYTICS_HITS_TABLE} GROUP BY upload_id, attempt
         UNION ALL SELECT upload_id, attempt, 0 AS n FROM ${ANALYTICS_ROLLUP_TABLE} GROUP BY upload_id, attempt
       ) GROUP BY upload_id, attempt`,
      {},
    );
    return rows.map((r) => ({ uploadId: Number(r.upload_id), attempt: Number(r.attempt), rows: Number(r.n) }));
  }

  /** Removes these (upload, attempt) pairs' rows. */
  async removeAttempts(pairs: readonly CommittedAttempt[]): Promise<void> {
    if (pairs.length === 0) return;
    await this.deleteBoth(COMMITTED_FILTER, committedParams(pairs));
  }

  /**
   * Deletes the rows matching `where` (over columns both tables have) from the hits and then from the roll-up. A
   * stop between the two leaves roll-up rows of an attempt that no read keeps (deleted attempts are never
   * committed again; an upload or device deleted has no committed attempt).
   */
  private async deleteBoth(where: string, params: Record<string, unknown>): Promise<void> {
    await this.command(`DELETE FROM ${ANALYTICS_HITS_TABLE} WHERE ${where}`, params);
    await this.command(`DELETE FROM ${ANALYTICS_ROLLUP_TABLE} WHERE ${where}`, params);
  }

  /** Each of the account's uploads with hits stored, and its hit count, from its committed attempt only. */
  async uploadHitCounts(accountId: number, committed: readonly CommittedAttempt[]): Promise<Map<number, number>> {
    const rows = await this.rows<{ upload_id: number; hits: number }>(
      `SELECT upload_id, count() AS hits FROM ${ANALYTICS_HITS_TABLE}
        WHERE account_id = {account:UInt64} AND ${COMMITTED_READ}
        GROUP BY upload_id`,
      { account: accountId, ...committedParams(committed) },
    );
    return new Map(rows.map((r) => [Number(r.upload_id), Number(r.hits)]));
  }

  private async rows<T>(query: string, query_params: Record<string, unknown>): Promise<T[]> {
    return this.call(async () => (await this.client.query({ query, query_params, format: 'JSONEachRow' })).json<T>());
  }

  private async command(query: string, query_params: Record<string, unknown>): Promise<void> {
    await this.call(() => this.client.command({ query, query_params }));
  }

  private call<T>(work: () => Promise<T>): Promise<T> {
    if (!this.ready()) return Promise.reject(new AnalyticsUnavailableError('NOT_MIGRATED'));
    return onAnalytics(work);
  }
}

/**
 * The condition that keeps the committed attempts' rows, with committedParams() (two arrays: arrays of tuples as
 * query parameters are not formatted alike by every connection). The subquery is a set, built once per query.
 */
export const COMMITTED_FILTER = `(upload_id, attempt) IN (SELECT arrayJoin(arrayZip({uploads:Array(Int64)}, {attempts:Array(UInt32)})))`;

/**
 * COMMITTED_FILTER for a read of committed attempts, one per upload (committedParams() of committedAttempts() or
 * committedAttempt()): each row's upload mapped to its committed attempt (0, which no attempt is, for an upload
 * without one) and compared with its own. Half the cost of the set of pairs: at 2.5M rows 50 against 100 ms a
 * statement, 60 against 167 with 10,000 uploads. A DELETE of several attempts of one upload needs the set.
 */
export const COMMITTED_READ = `attempt = transform(upload_id, {uploads:Array(Int64)}, {attempts:Array(UInt32)}, toUInt32(0))`;

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
