import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/**
 * hit_change.found: how many hits (flow and DNS) a write of an upload's hits found that the upload did not have.
 * hitsFound sends an event only when it is above 0: a re-run that found nothing new (a retro-hunt, a reprocess)
 * and a purge of some of an upload's hits re-read the upload in the report store, but found no hit.
 */
export class HitChangeFound1764740000000 implements MigrationInterface {
  name = 'HitChangeFound1764740000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('hit_change', new TableColumn(col.int('found', true)));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('hit_change', 'found');
  }
}
