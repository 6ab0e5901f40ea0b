import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/** Uploads (which are also the job queue), their stored bytes, and flow hits. */
export class Ingestion1764295200000 implements MigrationInterface {
  name = 'Ingestion1764295200000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('api_key', new TableColumn(col.int('device_id', true)));
    await q.createForeignKey('api_key', fk('FK_api_key_device', 'device_id', 'device', 'CASCADE'));
    await q.createTable(
      new Table({
        name: 'log_upload',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('device_id'),
          col.varchar('source', 16),
          col.int('api_key_id', true),
          col.varchar('file_name', 255),
          col.bigint('size'),
          col.bigint('text_bytes'),
          col.bigint('stored_bytes'),
          { name: 'stored_encoding', type: 'varchar', length: '8', default: "'gzip'" },
          col.varchar('md5', 32),
          col.varchar('status', 16),
          col.text('error', true),
          col.intDefault('attempts', 0),
          col.varchar('lease_owner', 64, true),
          col.bigint('lease_expires_at', true),
          col.bigint('received_at'),
          col.bigint('started_at', true),
          col.bigint('finished_at', true),
          col.bigintDefault('progress_bytes', 0),
          col.intDefault('progress_lines', 0),
          col.int('policy_id', true),
          col.intDefault('line_count', 0),
          col.intDefault('packet_lines', 0),
          col.intDefault('skipped_lines', 0),
          col.text('skipped', true),
          col.intDefault('connections', 0),
          col.intDefault('inbound_connections', 0),
          col.intDefault('outbound_connections', 0),
          col.intDefault('hits', 0),
          col.bigint('first_capture_at', true),
          col.bigint('last_capture_at', true),
        ],
        indices: [
          index('UQ_log_upload_device_md5', ['device_id', 'md5'], true),
          index('IDX_log_upload_queue', ['status', 'lease_expires_at']),
          index('IDX_log_upload_account_received', ['account_id', 'received_at']),
          index('IDX_log_upload_device_received', ['device_id', 'received_at']),
        ],
        foreignKeys: [fk('FK_log_upload_account', 'account_id', 'account', 'CASCADE'), fk('FK_log_upload_device', 'device_id', 'device', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'log_upload_blob',
        columns: [{ ...col.int('upload_id'), isPrimary: true }, { ...col.int('seq'), isPrimary: true }, col.blob('data')],
        foreignKeys: [fk('FK_log_upload_blob_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'flow_hit',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('device_id'),
          col.int('upload_id'),
          col.bigint('first_seen_at'),
          col.bigint('last_seen_at'),
          col.varchar('direction', 8),
          col.varchar('protocol', 8),
          col.varchar('internal_ip', 45),
          col.varchar('internal_key', 32),
          col.int('internal_port', true),
          col.varchar('external_ip', 45),
          col.varchar('external_key', 32),
          col.int('external_port', true),
          col.int('destination_port', true),
          col.varchar('matched_side', 10),
          col.varchar('matched_ip', 45),
          col.int('packets_forward'),
          col.bigint('bytes_forward'),
          col.int('packets_reverse'),
          col.bigint('bytes_reverse'),
          col.int('ioc_id'),
          col.int('ioc_list_id'),
          col.varchar('matched_cidr', 49),
          col.smallint('severity'),
          col.varchar('category', 32),
        ],
        indices: [
          index('IDX_flow_hit_upload', ['upload_id']),
          index('IDX_flow_hit_account_time', ['account_id', 'first_seen_at', 'id']),
          index('IDX_flow_hit_account_device_time', ['account_id', 'device_id', 'first_seen_at']),
          index('IDX_flow_hit_account_matched', ['account_id', 'matched_ip', 'first_seen_at']),
        ],
        foreignKeys: [
          fk('FK_flow_hit_account', 'account_id', 'account', 'CASCADE'),
          fk('FK_flow_hit_device', 'device_id', 'device', 'CASCADE'),
          fk('FK_flow_hit_upload', 'upload_id', 'log_upload', 'CASCADE'),
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('flow_hit');
    await q.dropTable('log_upload_blob');
    await q.dropTable('log_upload');
    await q.dropForeignKey('api_key', 'FK_api_key_device');
    await q.dropColumn('api_key', 'device_id');
  }
}
