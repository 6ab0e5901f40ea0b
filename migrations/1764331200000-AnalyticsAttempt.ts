import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/**
 * The upload's processing attempt whose hits ClickHouse holds (ANALYTICS_URL): reads there keep only this attempt's
 * rows, so hits written by an attempt that never committed are never counted. Null without the analytics tier.
 */
export class AnalyticsAttempt1764331200000 implements MigrationInterface {
  name = 'AnalyticsAttempt1764331200000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('log_upload', new TableColumn(col.bigint('analytics_attempt', true)));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('log_upload', 'analytics_attempt');
  }
}
