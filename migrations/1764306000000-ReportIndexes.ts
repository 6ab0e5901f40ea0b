import { MigrationInterface, QueryRunner } from 'typeorm';
import { index } from '../src/db/migration-helpers';

/**
 * Two flow_hit indexes gain a trailing column (see src/modules/flow-hit/flow-hit.entity.ts), so the reports'
 * distinct counts read index entries only: (account, time, id) gains external_ip (distinct external addresses),
 * (account, severity, time, device, host, entry, category) gains the list (distinct entries per list).
 */
export class ReportIndexes1764306000000 implements MigrationInterface {
  name = 'ReportIndexes1764306000000';

  async up(q: QueryRunner): Promise<void> {
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_time');
    await q.createIndex('flow_hit', index('IDX_flow_hit_account_time', ['account_id', 'first_seen_at', 'id', 'external_ip']));
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_severity_time');
    await q.createIndex(
      'flow_hit',
      index('IDX_flow_hit_account_severity_time', ['account_id', 'severity', 'first_seen_at', 'device_id', 'internal_ip', 'ioc_id', 'category', 'ioc_list_id']),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_severity_time');
    await q.createIndex(
      'flow_hit',
      index('IDX_flow_hit_account_severity_time', ['account_id', 'severity', 'first_seen_at', 'device_id', 'internal_ip', 'ioc_id', 'category']),
    );
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_time');
    await q.createIndex('flow_hit', index('IDX_flow_hit_account_time', ['account_id', 'first_seen_at', 'id']));
  }
}
