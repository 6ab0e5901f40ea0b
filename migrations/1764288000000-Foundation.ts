import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index, timestamps } from '../src/db/migration-helpers';

/** Accounts, API keys, policies and devices. */
export class Foundation1764288000000 implements MigrationInterface {
  name = 'Foundation1764288000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'account',
        columns: [idColumn(), col.varchar('name', 64), col.bigint('created_at')],
        indices: [index('UQ_account_name', ['name'], true)],
      }),
    );
    await q.createTable(
      new Table({
        name: 'api_key',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('name', 100),
          col.varchar('role', 16),
          col.varchar('prefix', 16),
          col.varchar('token_hash', 64),
          col.bigint('created_at'),
          col.bigint('last_used_at', true),
          col.bigint('revoked_at', true),
        ],
        indices: [index('UQ_api_key_token_hash', ['token_hash'], true), index('IDX_api_key_account', ['account_id', 'id'])],
        foreignKeys: [fk('FK_api_key_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'policy',
        columns: [idColumn(), col.int('account_id'), col.varchar('name', 100), col.varchar('name_key', 100), col.text('description', true), ...timestamps()],
        indices: [index('UQ_policy_account_name', ['account_id', 'name_key'], true)],
        foreignKeys: [fk('FK_policy_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'device',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('nickname', 64),
          col.varchar('nickname_key', 64),
          col.varchar('ip_type', 16),
          col.varchar('ip_address', 45, true),
          col.varchar('domain_name', 253, true),
          col.int('policy_id'),
          col.text('note', true),
          col.text('internal_networks'),
          col.boolean('identify_by_uploader_ip', false),
          ...timestamps(),
        ],
        indices: [
          index('UQ_device_account_nickname', ['account_id', 'nickname_key'], true),
          index('IDX_device_account_ip', ['account_id', 'ip_address']),
          index('IDX_device_policy', ['policy_id']),
        ],
        foreignKeys: [fk('FK_device_account', 'account_id', 'account', 'CASCADE'), fk('FK_device_policy', 'policy_id', 'policy', 'RESTRICT')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('device');
    await q.dropTable('policy');
    await q.dropTable('api_key');
    await q.dropTable('account');
  }
}
