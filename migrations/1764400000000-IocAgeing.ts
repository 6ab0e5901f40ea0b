import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/** Ageing of source-fed entries (#21 item 2): a list's lifetime and grace period, an entry's first and last sighting. */
export class IocAgeing1764400000000 implements MigrationInterface {
  name = 'IocAgeing1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('ioc_list', [
      new TableColumn(col.int('entry_lifetime_seconds', true)),
      new TableColumn(col.int('ageing_grace_seconds', true)),
      new TableColumn(col.bigint('entries_seen_at', true)),
    ]);
    await q.addColumns('ioc', [new TableColumn(col.bigint('first_seen_in_source', true)), new TableColumn(col.bigint('last_seen_in_source', true))]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('ioc', 'last_seen_in_source');
    await q.dropColumn('ioc', 'first_seen_in_source');
    await q.dropColumn('ioc_list', 'entries_seen_at');
    await q.dropColumn('ioc_list', 'ageing_grace_seconds');
    await q.dropColumn('ioc_list', 'entry_lifetime_seconds');
  }
}
