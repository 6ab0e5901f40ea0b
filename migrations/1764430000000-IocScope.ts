import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/** Scopes of ALLOW entries: one device, or one internal host of it (src/modules/ioc/ioc-scope.entity.ts, #17). */
export class IocScope1764430000000 implements MigrationInterface {
  name = 'IocScope1764430000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'ioc_scope',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('ioc_id'),
          col.int('list_id'),
          col.int('device_id'),
          col.varchar('internal_host', 45),
          col.bigint('created_at'),
        ],
        indices: [index('UQ_ioc_scope', ['ioc_id', 'device_id', 'internal_host'], true), index('IDX_ioc_scope_list', ['list_id'])],
        foreignKeys: [fk('FK_ioc_scope_ioc', 'ioc_id', 'ioc', 'CASCADE'), fk('FK_ioc_scope_device', 'device_id', 'device', 'CASCADE')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('ioc_scope');
  }
}
