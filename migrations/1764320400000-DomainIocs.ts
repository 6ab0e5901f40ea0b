import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/** Domain IOC lists (#18): a list holds IP or DOMAIN entries (ioc_list.entry_kind); domain entries live in ioc_domain. */
export class DomainIocs1764320400000 implements MigrationInterface {
  name = 'DomainIocs1764320400000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('ioc_list', new TableColumn({ ...col.varchar('entry_kind', 8), default: "'IP'" }));
    await q.createTable(
      new Table({
        name: 'ioc_domain',
        columns: [
          idColumn(),
          col.int('list_id'),
          col.int('account_id'),
          col.varchar('name', 253),
          col.varchar('comment', 500, true),
          col.bigint('expires_at', true),
          col.bigint('created_at'),
        ],
        indices: [
          index('UQ_ioc_domain_list_name', ['list_id', 'name'], true),
          index('IDX_ioc_domain_account_name', ['account_id', 'name']),
          index('IDX_ioc_domain_list_id', ['list_id', 'id']),
        ],
        foreignKeys: [fk('FK_ioc_domain_list', 'list_id', 'ioc_list', 'CASCADE')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('ioc_domain');
    await q.dropColumn('ioc_list', 'entry_kind');
  }
}
