import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { AnalyticsConfig } from '../../../src/config/config';
import { chdbDirectory, chdbInstalled, openAnalyticsClient } from '../../../src/modules/analytics/analytics-client';

/**
 * The analytics tests run on chDB (the ClickHouse engine in-process, installed apart: `npm ci --prefix tools/chdb`).
 * Without it they report themselves skipped, except under CI=true, where .ci/run installs it and its absence
 * fails them.
 */
export const describeChdb: jest.Describe = chdbInstalled() || process.env.CI === 'true' ? describe : describe.skip;

if (!chdbInstalled() && process.env.CI !== 'true') {
  // Said once per file, so a skipped run is not mistaken for a passing one.
  console.warn(`chDB is not installed (npm ci --prefix ${chdbDirectory()}): the analytics tests are skipped`);
}

/** A chDB database in a directory of its own; removed by close(). */
export function chdbConfig(): AnalyticsConfig & { kind: 'chdb' } {
  return { kind: 'chdb', path: fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-chdb-')), database: 'default' };
}

export async function closeChdb(client: ClickHouseClient, config: AnalyticsConfig & { kind: 'chdb' }): Promise<void> {
  await client.close();
  fs.rmSync(config.path, { recursive: true, force: true });
}

export { openAnalyticsClient };
