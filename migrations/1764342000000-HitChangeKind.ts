import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col } from '../src/db/migration-helpers';

/** hit_change.kind (#17 triage): a verdict change re-reads an upload's hits in the report store but found no new hits. */
export class HitChangeKind1764342000000 implements MigrationInterface {
  name = 'HitChangeKind1764342000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('hit_change', new TableColumn(col.varchar('kind', 16, true)));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('hit_change', 'kind');
  }
}
