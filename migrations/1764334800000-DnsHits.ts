import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/** DNS hits (#18 item 4): questions whose name matched a DOMAIN list entry, one row per host, name and type per upload. */
export class DnsHits1764334800000 implements MigrationInterface {
  name = 'DnsHits1764334800000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'dns_hit',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('device_id'),
          col.int('upload_id'),
          col.bigint('first_seen_at'),
          col.bigint('last_seen_at'),
          col.varchar('direction', 8),
          col.varchar('internal_ip', 45),
          col.varchar('qname', 253),
          col.varchar('qtype', 16),
          col.int('hit_count'),
          col.text('answers'),
          col.int('ioc_domain_id'),
          col.int('ioc_list_id'),
          col.varchar('matched_name', 253),
          col.smallint('severity'),
          col.varchar('category', 32),
        ],
        indices: [
          index('IDX_dns_hit_upload', ['upload_id']),
          index('IDX_dns_hit_account_time', ['account_id', 'first_seen_at', 'id']),
          index('IDX_dns_hit_account_device_time', ['account_id', 'device_id', 'first_seen_at', 'id']),
          index('IDX_dns_hit_account_qname', ['account_id', 'qname', 'first_seen_at']),
        ],
        foreignKeys: [
          fk('FK_dns_hit_account', 'account_id', 'account', 'CASCADE'),
          fk('FK_dns_hit_device', 'device_id', 'device', 'CASCADE'),
          fk('FK_dns_hit_upload', 'upload_id', 'log_upload', 'CASCADE'),
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('dns_hit');
  }
}
