import fs from 'node:fs';
import path from 'node:path';
import { ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { AnalyticsConfig } from '../../config/config';

/**
 * The ClickHouse client of the analytics tier: the official `@clickhouse/client` for both kinds of ANALYTICS_URL.
 * A server is reached over HTTP; `chdb:///path` plugs chDB's connection (the engine as a library, npm `chdb`)
 * into the same client through its `connection` option, so every statement takes the same path either way.
 */
export function openAnalyticsClient(config: AnalyticsConfig, database: string = config.database): ClickHouseClient {
  const settings = {
    // Reads see a delete or an attempt's insert at once (tests and the writer rely on read-your-writes).
    mutations_sync: '2' as const,
    // 64-bit counts as JSON numbers: every count here is far below 2^53.
    output_format_json_quote_64bit_integers: 0 as const,
  };
  // Its own console logger off: the callers log failures with the service's logger.
  const log = { level: ClickHouseLogLevel.OFF };
  if (config.kind === 'http') {
    // The database is passed apart (the URL's path would override it, and the bootstrap client needs `default`).
    const url = new URL(config.url);
    url.pathname = '/';
    return createClient({ url, database, clickhouse_settings: settings, request_timeout: 300_000, log });
  }
  fs.mkdirSync(config.path, { recursive: true });
  const { createChdbConnection } = loadChdb();
  return createClient({ database, clickhouse_settings: settings, log, connection: createChdbConnection({ path: config.path }) as never });
}

/** Where the separate chDB package is installed (tools/chdb, beside this project's package.json). */
export function chdbDirectory(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'pcap-defense')
      return path.join(dir, 'tools', 'chdb');
    const up = path.dirname(dir);
    if (up === dir) return path.resolve('tools', 'chdb');
    dir = up;
  }
}

/** Whether chDB is installed (`npm ci --prefix tools/chdb`). */
export function chdbInstalled(): boolean {
  try {
    require.resolve('chdb/connection', { paths: [chdbDirectory()] });
    return true;
  } catch {
    return false;
  }
}

interface ChdbConnectionModule {
  createChdbConnection(options: { path: string }): unknown;
}

function loadChdb(): ChdbConnectionModule {
  let resolved: string;
  try {
    resolved = require.resolve('chdb/connection', { paths: [chdbDirectory()] });
  } catch {
    throw new Error(`ANALYTICS_URL=chdb://... needs chDB, installed apart from this package: npm ci --prefix ${chdbDirectory()}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(resolved) as ChdbConnectionModule;
}
