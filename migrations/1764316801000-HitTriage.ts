import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/** Triage of flow hits by their stable identity (src/modules/flow-hit/hit-triage.entity.ts, #17). */
export class HitTriage1764316801000 implements MigrationInterface {
  name = 'HitTriage1764316801000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'flow_hit_triage',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.int('upload_id'),
          col.varchar('identity', 191),
          col.varchar('status', 16),
          col.text('note', true),
          col.int('api_key_id'),
          col.bigint('updated_at'),
        ],
        indices: [index('UQ_flow_hit_triage_hit', ['upload_id', 'identity'], true)],
        foreignKeys: [fk('FK_flow_hit_triage_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('flow_hit_triage');
  }
}
