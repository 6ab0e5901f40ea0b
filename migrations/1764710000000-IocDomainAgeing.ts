import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/**
 * Ageing of DOMAIN lists' entries (#21 item 2), as 1764400000000-IocAgeing gave address entries: the first and last
 * time a feed import or source fetch held each name (null for names added by hand).
 */
export class IocDomainAgeing1764710000000 implements MigrationInterface {
  name = 'IocDomainAgeing1764710000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('ioc_domain', [new TableColumn(col.bigint('first_seen_in_source', true)), new TableColumn(col.bigint('last_seen_in_source', true))]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('ioc_domain', 'last_seen_in_source');
    await q.dropColumn('ioc_domain', 'first_seen_in_source');
  }
}
