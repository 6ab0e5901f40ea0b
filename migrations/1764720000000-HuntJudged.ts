import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/**
 * A retro-hunt re-runs only uploads matched before its changes: retro_hunt.changes counts the changes it covers,
 * log_upload.judged_hunts records the hunts (and their counts) waiting when a run read the lists, and
 * retro_hunt.uploads_up_to_date counts the uploads a hunt left alone for that. Before, an upload processed after
 * a change but before its hunt was planned (up to 2 s later) was queued and processed again for nothing.
 */
export class HuntJudged1764720000000 implements MigrationInterface {
  name = 'HuntJudged1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('retro_hunt', [
      new TableColumn({ name: 'uploads_up_to_date', type: 'integer', isNullable: false, default: 0 }),
      new TableColumn({ name: 'changes', type: 'integer', isNullable: false, default: 0 }),
    ]);
    await q.addColumn('log_upload', new TableColumn(col.text('judged_hunts', true)));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('log_upload', 'judged_hunts');
    await q.dropColumn('retro_hunt', 'changes');
    await q.dropColumn('retro_hunt', 'uploads_up_to_date');
  }
}
