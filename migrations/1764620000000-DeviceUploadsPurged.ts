import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/**
 * What the retention purge took from each device (#17 item 6): how many of its uploads, and the receipt time of the
 * newest, so a retro-hunt reaching back before it says that it could not judge them.
 */
export class DeviceUploadsPurged1764620000000 implements MigrationInterface {
  name = 'DeviceUploadsPurged1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('device', [
      new TableColumn({ name: 'uploads_purged', type: 'integer', isNullable: false, default: 0 }),
      new TableColumn(col.bigint('uploads_purged_through', true)),
    ]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('device', 'uploads_purged_through');
    await q.dropColumn('device', 'uploads_purged');
  }
}
