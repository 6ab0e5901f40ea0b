import fs from 'node:fs';
import { execute } from '../../../src/db/bulk';
import { AnalyticsHits, committedAttempt } from '../../../src/modules/analytics/analytics-hits';
import { HIT_COLUMNS, INSERT_COLUMNS, NewHit } from '../../../src/modules/flow-hit/flow-hit.columns';
import type { TestApp } from '../../helpers/app';
import { chdbInstalled } from '../../../src/modules/analytics/analytics-client';
import { chdbConfig } from './chdb';

/**
 * For report tests parameterized over the executors: the ClickHouse path's settings and its hits.
 *
 * `analyticsEnv()` gives createTestApp an ANALYTICS_URL on a fresh chDB directory (null when chDB is not
 * installed and CI is not set: that path is then skipped). After the test's uploads are processed,
 * `moveHitsToAnalytics(t)` writes every upload's hits to ClickHouse through AnalyticsHits (as the hit writer
 * does with ANALYTICS_URL), records the attempt as committed in SQL, adds a stale attempt of the same hits
 * (a run that never committed: no read may count it), and deletes the hits and roll-ups from SQL, so a read
 * that still went to SQL would find nothing. Hits the worker already wrote to ClickHouse are left as they are.
 */
export const analyticsAvailable = chdbInstalled() || process.env.CI === 'true';

export function analyticsEnv(): { env: Record<string, string>; dir: string } | null {
  if (!analyticsAvailable) return null;
  const dir = chdbConfig().path;
  // No TTL: the tests' hits are years old, and ClickHouse applies a TTL at its next merge (a delete's, say).
  return { env: { ANALYTICS_URL: `chdb://${dir}`, REPORT_MEMORY_MAX_HITS: '0', RETENTION_DAYS: '0' }, dir };
}

export async function moveHitsToAnalytics(t: TestApp): Promise<void> {
  const analytics = t.services.analytics!;
  if (!analytics.ready) await analytics.migrate();
  const ch = new AnalyticsHits(analytics.client);
  const select = INSERT_COLUMNS.map((c) => `${c.sql} AS ${c.key}`).join(', ');
  const uploads: Array<{ upload_id: number | string; account_id: number | string }> = await t.dataSource.query(
    'SELECT DISTINCT upload_id, account_id FROM flow_hit ORDER BY upload_id',
  );
  for (const u of uploads) {
    const uploadId = Number(u.upload_id);
    const rows: NewHit[] = (await t.dataSource.query(`SELECT ${select} FROM flow_hit WHERE upload_id = ? ORDER BY id`, [uploadId])).map(
      (r: Record<string, unknown>) => {
        const hit: Record<string, unknown> = {};
        // mysql2 returns BIGINT columns as strings: numbers where the hit has numbers.
        for (const c of INSERT_COLUMNS) hit[c.key] = r[c.key] == null || TEXT.has(c.key) ? r[c.key] : Number(r[c.key]);
        return hit as NewHit;
      },
    );
    const attempt = await ch.write({ accountId: Number(u.account_id), uploadId }, rows, await committedAttempt(t.dataSource.manager, uploadId));
    await execute(t.dataSource.manager, 'UPDATE log_upload SET analytics_attempt = ? WHERE id = ?', [attempt, uploadId]);
    await ch.write({ accountId: Number(u.account_id), uploadId }, [...rows, ...rows], attempt);
  }
  for (const table of ['flow_hit', 'hit_hour', 'hit_day_host']) await execute(t.dataSource.manager, `DELETE FROM ${table}`, []);
}

const TEXT = new Set<string>(HIT_COLUMNS.filter((c) => c.codec === 'text').map((c) => c.key));

export function removeAnalyticsDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
