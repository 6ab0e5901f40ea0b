import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col, index } from '../src/db/migration-helpers';

/**
 * DNS hits raise alerts (#19): alert.hit_kind (IP or DNS; the throttle key holds it, since an address entry and a
 * domain entry may share an id) and alert.qname (a DNS alert's queried name), and alert_rule.hit_kinds; and
 * alert_destination.last_tested_at, for alertDestinationTest's rate limit.
 */
export class AlertHitKind1764410000000 implements MigrationInterface {
  name = 'AlertHitKind1764410000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('alert', new TableColumn({ name: 'hit_kind', type: 'varchar', length: '8', default: "'IP'" }));
    await q.addColumn('alert', new TableColumn(col.varchar('qname', 253, true)));
    await q.dropIndex('alert', 'UQ_alert_throttle');
    await q.createIndex('alert', index('UQ_alert_throttle', ['rule_id', 'hit_kind', 'ioc_id', 'internal_key', 'window_start'], true));
    await q.addColumn('alert_rule', new TableColumn(col.text('hit_kinds', true)));
    await q.query(`UPDATE alert_rule SET hit_kinds = '[]'`);
    await q.changeColumn('alert_rule', 'hit_kinds', new TableColumn(col.text('hit_kinds')));
    await q.addColumn('alert_destination', new TableColumn(col.bigint('last_tested_at', true)));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('alert_destination', 'last_tested_at');
    await q.dropColumn('alert_rule', 'hit_kinds');
    await q.dropIndex('alert', 'UQ_alert_throttle');
    await q.query(`DELETE FROM alert WHERE hit_kind <> 'IP'`);
    await q.createIndex('alert', index('UQ_alert_throttle', ['rule_id', 'ioc_id', 'internal_key', 'window_start'], true));
    await q.dropColumn('alert', 'qname');
    await q.dropColumn('alert', 'hit_kind');
  }
}
