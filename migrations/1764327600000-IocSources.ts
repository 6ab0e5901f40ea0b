import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index, timestamps } from '../src/db/migration-helpers';

/** Threat-intel sources (feeds fetched on a schedule into a list) and the summary of each fetch (#21). */
export class IocSources1764327600000 implements MigrationInterface {
  name = 'IocSources1764327600000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'ioc_source',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('list_id'),
          col.varchar('url', 2000),
          col.varchar('format', 16),
          col.int('every_seconds'),
          col.text('header_names'),
          col.text('header_values'),
          col.varchar('etag', 500, true),
          col.varchar('last_modified', 100, true),
          col.varchar('status', 16),
          col.varchar('status_reason', 1000, true),
          col.bigint('last_fetched_at', true),
          col.bigint('next_fetch_at'),
          col.bigint('lease_until', true),
          col.varchar('lease_owner', 64, true),
          ...timestamps(),
        ],
        indices: [index('IDX_ioc_source_account', ['account_id', 'id']), index('IDX_ioc_source_due', ['next_fetch_at'])],
        foreignKeys: [fk('FK_ioc_source_list', 'list_id', 'ioc_list', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'ioc_source_fetch',
        columns: [
          idColumn(),
          col.int('source_id'),
          col.bigint('started_at'),
          col.bigint('finished_at'),
          col.varchar('outcome', 16),
          col.int('http_status', true),
          col.bigintDefault('bytes', 0),
          col.intDefault('added', 0),
          col.intDefault('removed', 0),
          col.intDefault('unchanged', 0),
          col.intDefault('skipped', 0),
          col.text('skipped_lines', true),
          col.varchar('error', 1000, true),
        ],
        indices: [index('IDX_ioc_source_fetch_source', ['source_id', 'id'])],
        foreignKeys: [fk('FK_ioc_source_fetch_source', 'source_id', 'ioc_source', 'CASCADE')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('ioc_source_fetch');
    await q.dropTable('ioc_source');
  }
}
