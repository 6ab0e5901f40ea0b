import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { col, fk, idColumn, index, timestamps } from '../src/db/migration-helpers';

/** IOC lists, their entries, and which lists each policy uses. */
export class ThreatIntel1764291600000 implements MigrationInterface {
  name = 'ThreatIntel1764291600000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('policy', new TableColumn(col.intDefault('revision', 0)));
    await q.createTable(
      new Table({
        name: 'ioc_list',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('name', 100),
          col.varchar('name_key', 100),
          col.varchar('kind', 8),
          col.smallint('severity'),
          col.varchar('category', 32),
          col.varchar('source_name', 200, true),
          col.varchar('reference_url', 2000, true),
          col.text('description', true),
          col.intDefault('entry_count', 0),
          col.intDefault('revision', 0),
          col.bigint('last_imported_at', true),
          ...timestamps(),
        ],
        indices: [index('UQ_ioc_list_account_name', ['account_id', 'name_key'], true)],
        foreignKeys: [fk('FK_ioc_list_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'ioc',
        columns: [
          idColumn(),
          col.int('list_id'),
          col.int('account_id'),
          col.varchar('cidr', 49),
          col.smallint('family'),
          col.smallint('prefix'),
          col.varchar('range_start', 32),
          col.varchar('range_end', 32),
          col.varchar('comment', 500, true),
          col.bigint('expires_at', true),
          col.bigint('created_at'),
        ],
        indices: [
          index('UQ_ioc_list_cidr', ['list_id', 'cidr'], true),
          index('IDX_ioc_list_start', ['list_id', 'range_start']),
          index('IDX_ioc_account_start', ['account_id', 'range_start']),
          // Loading a list into the matcher walks it by id (see ioc-index.cache.ts).
          index('IDX_ioc_list_id', ['list_id', 'id']),
        ],
        foreignKeys: [fk('FK_ioc_list', 'list_id', 'ioc_list', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'policy_ioc_list',
        columns: [{ ...col.int('policy_id'), isPrimary: true }, { ...col.int('ioc_list_id'), isPrimary: true }, col.bigint('created_at')],
        indices: [index('IDX_policy_ioc_list_list', ['ioc_list_id'])],
        foreignKeys: [fk('FK_policy_ioc_list_policy', 'policy_id', 'policy', 'CASCADE'), fk('FK_policy_ioc_list_list', 'ioc_list_id', 'ioc_list', 'RESTRICT')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('policy_ioc_list');
    await q.dropTable('ioc');
    await q.dropTable('ioc_list');
    await q.dropColumn('policy', 'revision');
  }
}
