import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index, timestamps } from '../src/db/migration-helpers';

/** Alert rules and destinations, the alert outbox and its deliveries with their attempts (src/modules/alert/). */
export class Alerts1764324000000 implements MigrationInterface {
  name = 'Alerts1764324000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'alert_destination',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('name', 64),
          col.varchar('kind', 16),
          col.text('settings'),
          col.varchar('secret', 255, true),
          col.boolean('failing', false),
          col.text('last_error', true),
          col.bigint('last_error_at', true),
          ...timestamps(),
        ],
        indices: [index('IDX_alert_destination_account', ['account_id'])],
        foreignKeys: [fk('FK_alert_destination_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'alert_rule',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('name', 64),
          col.boolean('enabled', true),
          col.int('min_severity'),
          col.text('directions'),
          col.text('device_ids'),
          col.text('ioc_list_ids'),
          col.text('categories'),
          col.text('found_by'),
          col.int('throttle_minutes'),
          col.text('destination_ids'),
          { name: 'digest', type: 'varchar', length: '16', default: "'IMMEDIATE'" },
          col.varchar('digest_time', 5, true),
          col.varchar('digest_time_zone', 64, true),
          col.int('digest_weekday', true),
          col.bigint('digest_until', true),
          ...timestamps(),
        ],
        indices: [index('IDX_alert_rule_account', ['account_id'])],
        foreignKeys: [fk('FK_alert_rule_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'alert',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('rule_id'),
          col.int('ioc_id'),
          col.int('ioc_list_id'),
          col.int('device_id'),
          col.int('upload_id', true),
          col.varchar('internal_key', 32),
          col.varchar('internal_ip', 45),
          col.varchar('external_ip', 45),
          col.varchar('direction', 16),
          col.int('severity'),
          col.varchar('category', 32),
          col.varchar('found_by', 16),
          col.bigint('window_start'),
          col.int('hit_count'),
          col.bigint('first_seen_at'),
          col.bigint('last_seen_at'),
          col.bigint('created_at'),
        ],
        indices: [index('UQ_alert_throttle', ['rule_id', 'ioc_id', 'internal_key', 'window_start'], true), index('IDX_alert_account', ['account_id', 'id'])],
      }),
    );
    await q.createTable(
      new Table({
        name: 'alert_delivery',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('alert_id', true),
          col.int('digest_id', true),
          col.int('destination_id'),
          col.varchar('status', 16),
          col.intDefault('attempts', 0),
          col.bigint('next_attempt_at'),
          col.bigint('lease_until', true),
          col.text('last_error', true),
          col.bigint('delivered_at', true),
          col.bigint('created_at'),
        ],
        indices: [
          index('UQ_alert_delivery', ['alert_id', 'destination_id'], true),
          index('UQ_alert_delivery_digest', ['digest_id', 'destination_id'], true),
          index('IDX_alert_delivery_due', ['status', 'next_attempt_at']),
          index('IDX_alert_delivery_account', ['account_id', 'id']),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'alert_digest',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('rule_id'),
          col.bigint('period_start'),
          col.bigint('period_end'),
          col.int('alert_count'),
          col.int('hit_count'),
          col.bigint('created_at'),
        ],
        indices: [index('UQ_alert_digest_period', ['rule_id', 'period_end'], true)],
      }),
    );
    await q.createTable(
      new Table({
        name: 'alert_attempt',
        columns: [
          idColumn(),
          col.int('delivery_id'),
          col.bigint('attempted_at'),
          { name: 'ok', type: 'boolean' },
          col.text('error', true),
          col.int('duration_ms'),
        ],
        indices: [index('IDX_alert_attempt_delivery', ['delivery_id'])],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('alert_attempt');
    await q.dropTable('alert_digest');
    await q.dropTable('alert_delivery');
    await q.dropTable('alert');
    await q.dropTable('alert_rule');
    await q.dropTable('alert_destination');
  }
}
