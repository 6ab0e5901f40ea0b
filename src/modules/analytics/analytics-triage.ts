import type { ClickHouseClient } from '@clickhouse/client';
import type { DataSource } from 'typeorm';
import { TriageStatus } from '../flow-hit/hit-triage.enums';
import { analyticsUnavailable } from '../report/groupings/clickhouse-source';
import type { ChParams } from '../report/groupings/clickhouse-source';
import { TRIAGE_SYNC_TABLE, TRIAGE_TABLE } from './analytics-triage-schema';

/**
 * Triage verdicts for reads on the analytics tier (#16/#17). Verdicts live in SQL (flow_hit_triage, keyed by the
 * hit's stable identity); a read that filters on them is served by ClickHouse, so ClickHouse keeps a mirror:
 *
 * - `flow_hit_triage`: (account, upload, identity, status, version); a hit's verdict is the status of its highest
 *   version (argMax), so rows are only ever added, never updated in place.
 * - `flow_hit_triage_sync`: per account, the hit revision (hit-change.ts) the mirror has caught up to.
 *
 * Every verdict records a TRIAGE hit change per upload, under the revision lock, so revisions commit in order: a
 * read that filters on triage first copies the current verdicts of the uploads changed since the mirror's
 * revision, versioned with the revision it read (syncTriage). When the change log no longer reaches back that far
 * (pruned), or the account was never mirrored, it copies all the account's verdicts. Copying again is harmless.
 */

/** Rows per INSERT of verdicts, and upload IDs per SQL read of them. */
const PAGE = 10_000;
const UPLOADS_PER_READ = 500;

/** Brings the account's mirrored verdicts up to the newest hit revision committed in SQL. */
export async function syncTriage(client: ClickHouseClient, dataSource: DataSource, accountId: number): Promise<void> {
  let mirrored: number;
  try {
    const result = await client.query({
      query: `SELECT max(revision) AS r FROM ${TRIAGE_SYNC_TABLE} WHERE account_id = {a:UInt64}`,
      query_params: { a: accountId },
      format: 'JSONEachRow',
    });
    mirrored = Number((await result.json<{ r: number | string }>())[0]?.r ?? 0);
  } catch (err) {
    throw analyticsUnavailable(err);
  }
  const [{ revision }] = (await dataSource.query(`SELECT revision FROM hit_revision WHERE id = 1`)) as Array<{ revision: number | string }>;
  const now = Number(revision);
  if (now <= mirrored) return;
  const [{ lo }] = (await dataSource.query(`SELECT MIN(revision) AS lo FROM hit_change`)) as Array<{ lo: number | string | null }>;
  // Never mirrored, or changes after the mirror's revision may have been pruned from the log: every verdict again.
  const whole = mirrored === 0 || lo == null || Number(lo) > mirrored + 1;
  const rows: Array<{ upload_id: number | string; identity: string; status: string }> = [];
  let uploads: number[] | null = null;
  if (whole) {
    rows.push(...(await dataSource.query(`SELECT upload_id, identity, status FROM flow_hit_triage WHERE account_id = ?`, [accountId])));
  } else {
    const changed: Array<{ upload_id: number | string }> = await dataSource.query(
      `SELECT DISTINCT upload_id FROM hit_change WHERE account_id = ? AND kind = 'TRIAGE' AND revision > ? AND revision <= ?`,
      [accountId, mirrored, now],
    );
    uploads = changed.map((c) => Number(c.upload_id));
    for (let i = 0; i < uploads.length; i += UPLOADS_PER_READ) {
      const some = uploads.slice(i, i + UPLOADS_PER_READ);
      rows.push(
        ...(await dataSource.query(
          `SELECT upload_id, identity, status FROM flow_hit_triage WHERE account_id = ? AND upload_id IN (${some.map(() => '?').join(',')})`,
          [accountId, ...some],
        )),
      );
    }
  }
  try {
    // A verdict the mirror holds that SQL no longer does (its row deleted) goes back to OPEN: the copied uploads'
    // (or the whole account's) verdicts end exactly as SQL has them.
    const held = new Set(rows.map((r) => `${Number(r.upload_id)}|${r.identity}`));
    const scope = uploads === null ? '' : ` AND upload_id IN {u:Array(Int64)}`;
    if (uploads === null || uploads.length) {
      const result = await client.query({
        query: `SELECT upload_id, identity FROM ${TRIAGE_TABLE} WHERE account_id = {a:UInt64}${scope} GROUP BY upload_id, identity HAVING argMax(status, version) != 'OPEN'`,
        query_params: { a: accountId, ...(uploads === null ? {} : { u: uploads }) },
        format: 'JSONEachRow',
      });
      for (const r of await result.json<{ upload_id: number | string; identity: string }>()) {
        if (!held.has(`${Number(r.upload_id)}|${r.identity}`)) rows.push({ upload_id: r.upload_id, identity: r.identity, status: TriageStatus.OPEN });
      }
    }
    for (let i = 0; i < rows.length; i += PAGE) {
      await client.insert({
        table: TRIAGE_TABLE,
        values: rows
          .slice(i, i + PAGE)
          .map((r) => ({ account_id: accountId, upload_id: Number(r.upload_id), identity: r.identity, status: r.status, version: now })),
        format: 'JSONEachRow',
      });
    }
    // Last: a copy cut short is redone from the same revision.
    await client.insert({ table: TRIAGE_SYNC_TABLE, values: [{ account_id: accountId, revision: now }], format: 'JSONEachRow' });
  } catch (err) {
    throw analyticsUnavailable(err);
  }
}

/** A flow_hit row's stable identity (flow-hit.columns.ts hitIdentity()) spelled in ClickHouse SQL. */
const IDENTITY = `concat(protocol, '|', internal_key, '|', ifNull(toString(internal_port), ''), '|', external_key, '|', ifNull(toString(external_port), ''), '|', matched_side, '|', toString(ioc_id))`;

/**
 * The condition that keeps the rows of uploads the mirror holds a verdict of (`account`: the account's
 * placeholder); every hit of any other upload is OPEN.
 */
function judgedUploads(account: string): string {
  return `upload_id IN (SELECT upload_id FROM ${TRIAGE_TABLE} WHERE account_id = ${account})`;
}

/**
 * The condition that keeps hits whose verdict is one of `statuses` (OPEN: none, or set back to OPEN), over the
 * mirror, as applyTriageStatuses() does in SQL. The caller has run syncTriage() for the account first.
 */
export function triageCondition(accountId: number, statuses: readonly TriageStatus[], p: ChParams): string {
  if (statuses.length === 0) return '0';
  const account = p.add(accountId, 'UInt64');
  const verdicts = (having: string) =>
    `(upload_id, ${IDENTITY}) IN (SELECT upload_id, identity FROM ${TRIAGE_TABLE} WHERE account_id = ${account} GROUP BY upload_id, identity HAVING ${having})`;
  // A hit of an upload the mirror holds no verdict of is OPEN: its identity (a string built from seven columns) is
  // made only for the hits of uploads with verdicts (`or` and `and` evaluate their second argument only where the
  // first leaves the answer open). At 10M hits, a 30-day window of 2.5M and verdicts in 2 uploads, the open hits
  // were counted in 112-129 ms against 297-349 with every hit's identity made (chDB).
  const judged = judgedUploads(account);
  const listed = statuses.filter((s) => s !== TriageStatus.OPEN);
  const conditions: string[] = [];
  if (statuses.includes(TriageStatus.OPEN)) conditions.push(`NOT (${judged} AND ${verdicts(`argMax(status, version) != 'OPEN'`)})`);
  if (listed.length) conditions.push(`(${judged} AND ${verdicts(`argMax(status, version) IN ${p.add(listed, 'Array(String)')}`)})`);
  return `(${conditions.join(' OR ')})`;
}
