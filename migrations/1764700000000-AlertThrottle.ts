import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/**
 * Throttle windows that start at a key's first alert (#19), not at multiples of the window since the epoch: hits a
 * minute apart either side of the top of the hour raised two alerts. alert_throttle holds each key's current
 * window start; it is seeded with the newest window of every key alerted so far, so the windows open now carry on.
 */
export class AlertThrottle1764700000000 implements MigrationInterface {
  name = 'AlertThrottle1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'alert_throttle',
        columns: [idColumn(), col.int('rule_id'), col.varchar('hit_kind', 8), col.int('ioc_id'), col.varchar('internal_key', 32), col.bigint('window_start')],
        indices: [
          index('UQ_alert_throttle_key', ['rule_id', 'hit_kind', 'ioc_id', 'internal_key'], true),
          index('IDX_alert_throttle_window', ['window_start']),
        ],
        foreignKeys: [fk('FK_alert_throttle_rule', 'rule_id', 'alert_rule', 'CASCADE')],
      }),
    );
    // Alerts of deleted rules stay (alert has no foreign key): only the rules that exist get a row.
    await q.query(
      `INSERT INTO alert_throttle (rule_id, hit_kind, ioc_id, internal_key, window_start)
       SELECT a.rule_id, a.hit_kind, a.ioc_id, a.internal_key, MAX(a.window_start) FROM alert a JOIN alert_rule r ON r.id = a.rule_id
        GROUP BY a.rule_id, a.hit_kind, a.ioc_id, a.internal_key`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('alert_throttle');
  }
}
