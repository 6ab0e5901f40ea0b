import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/** The flow-hit change log the in-memory report store follows (see src/modules/flow-hit/hit-change.ts). */
export class HitChanges1764309600000 implements MigrationInterface {
  name = 'HitChanges1764309600000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(new Table({ name: 'hit_revision', columns: [{ name: 'id', type: 'integer', isPrimary: true }, col.bigint('revision')] }));
    await q.query('INSERT INTO hit_revision (id, revision) VALUES (1, 0)');
    await q.createTable(
      new Table({
        name: 'hit_change',
        columns: [
          { name: 'revision', type: 'integer', isPrimary: true },
          col.int('account_id', true),
          col.int('upload_id', true),
          col.int('device_id', true),
          col.bigint('purged_before', true),
          col.bigint('recorded_at'),
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('hit_change');
    await q.dropTable('hit_revision');
  }
}
