import { MigrationInterface, QueryRunner } from 'typeorm';
import { index } from '../src/db/migration-helpers';

/**
 * The retro-hunts' expiry check (RetroHuntService.checkExpiries, every RETRO_HUNT_INTERVAL_MS) asks for the entries
 * whose expiry passed since the last check. Without an index on `expires_at` that read the whole of `ioc` and
 * `ioc_domain` every second: with a 1M-entry list, 2.5 s of SQLite holding the event loop each time, so the server
 * barely answered while any large list existed. With the index it reads the entries that expired.
 */
export class EntryExpiryIndex1764730000000 implements MigrationInterface {
  name = 'EntryExpiryIndex1764730000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createIndex('ioc', index('IDX_ioc_expires', ['expires_at']));
    await q.createIndex('ioc_domain', index('IDX_ioc_domain_expires', ['expires_at']));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropIndex('ioc_domain', 'IDX_ioc_domain_expires');
    await q.dropIndex('ioc', 'IDX_ioc_expires');
  }
}
