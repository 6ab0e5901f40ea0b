import { MigrationInterface, QueryRunner } from 'typeorm';
import { index } from '../src/db/migration-helpers';

/**
 * The (account, device, time) index of flow hits gains id and severity (see src/modules/flow-hit/flow-hit.entity.ts):
 * the drill-down finds a page's hits from this index alone for a device and a severity floor.
 */
export class DrillDownIndex1764302400000 implements MigrationInterface {
  name = 'DrillDownIndex1764302400000';

  async up(q: QueryRunner): Promise<void> {
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_device_time');
    await q.createIndex('flow_hit', index('IDX_flow_hit_account_device_time', ['account_id', 'device_id', 'first_seen_at', 'id', 'severity']));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_device_time');
    await q.createIndex('flow_hit', index('IDX_flow_hit_account_device_time', ['account_id', 'device_id', 'first_seen_at']));
  }
}
