import type { ClickHouseClient } from '@clickhouse/client';
import type { AnalyticsConfig } from '../../config/config';
import { openAnalyticsClient } from './analytics-client';
import { migrateAnalytics } from './analytics-schema';

/** How long /readyz waits for ClickHouse before it calls it down. */
const PING_TIMEOUT_MS = 2_000;

/**
 * The analytics tier of one process (ANALYTICS_URL set): its ClickHouse client, and whether its tables are
 * migrated. Built once with the services; start() migrates, close() ends the client.
 */
export class Analytics {
  readonly client: ClickHouseClient;
  private migrated = false;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly config: AnalyticsConfig,
    /** RETENTION_DAYS: the hits' TTL, and which days the roll-up may answer for (analytics-rollup.ts). */
    readonly retentionDays: number,
  ) {
    this.client = openAnalyticsClient(config);
  }

  /** Creates the database (a server's) and applies the missing schema versions; returns those applied. */
  async migrate(): Promise<number[]> {
    let bootstrap: ClickHouseClient | undefined;
    if (this.config.kind === 'http' && this.config.database !== 'default') bootstrap = openAnalyticsClient(this.config, 'default');
    try {
      const ran = await migrateAnalytics(this.client, { database: this.config.database, bootstrap, retentionDays: this.retentionDays });
      this.migrated = true;
      return ran;
    } finally {
      await bootstrap?.close();
    }
  }

  /**
   * Migrates at start. ClickHouse down does not stop the process (uploads are still accepted and queued): the
   * migration is tried again with backoff (1 s doubling to 60 s) until it succeeds or the tier is closed.
   */
  async start(onError: (err: unknown, retryInMs: number) => void, onMigrated: (versions: number[]) => void = () => {}, baseMs = 1_000): Promise<void> {
    const attempt = async (delayMs: number): Promise<void> => {
      try {
        onMigrated(await this.migrate());
      } catch (err) {
        if (this.closed) return;
        onError(err, delayMs);
        this.retry = setTimeout(() => void attempt(Math.min(delayMs * 2, 60_000)), delayMs);
        this.retry.unref();
      }
    };
    await attempt(baseMs);
  }

  /** Whether the tables are migrated (once, at start). */
  get ready(): boolean {
    return this.migrated;
  }

  /** Migrated, and ClickHouse answers a query within PING_TIMEOUT_MS (asked by /readyz). */
  async up(): Promise<boolean> {
    if (!this.migrated) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS)));
    const ping = this.client
      .query({ query: 'SELECT 1', format: 'JSONEachRow' })
      .then(async (r) => (await r.json()).length === 1)
      .catch(() => false);
    try {
      return await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client.close();
  }
}
