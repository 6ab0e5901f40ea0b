import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/** What the retention purge took from an upload (hits_purged), and the worker's warnings about it (warnings, JSON). */
export class UploadRetention1764313200000 implements MigrationInterface {
  name = 'UploadRetention1764313200000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('log_upload', [new TableColumn(col.intDefault('hits_purged', 0)), new TableColumn(col.text('warnings', true))]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('log_upload', 'warnings');
    await q.dropColumn('log_upload', 'hits_purged');
  }
}
