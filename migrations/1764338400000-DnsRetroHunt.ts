import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/**
 * DNS retro-hunt (#18 item 4): each upload's distinct DNS question names (written when it was parsed with DNS on,
 * deleted with the upload), the changed domain entries of a requested retro-hunt (deleted once it is planned), and the
 * DNS hits its re-runs added and removed.
 */
export class DnsRetroHunt1764338400000 implements MigrationInterface {
  name = 'DnsRetroHunt1764338400000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'upload_name_set',
        columns: [{ ...col.int('upload_id'), isPrimary: true }, { ...col.int('seq'), isPrimary: true }, col.int('name_count'), col.blob('data')],
        foreignKeys: [fk('FK_upload_name_set_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'retro_hunt_domain',
        columns: [idColumn(), col.int('retro_hunt_id'), col.int('target'), col.varchar('name', 253)],
        indices: [index('IDX_retro_hunt_domain_hunt', ['retro_hunt_id', 'target'])],
        foreignKeys: [fk('FK_retro_hunt_domain_hunt', 'retro_hunt_id', 'retro_hunt', 'CASCADE')],
      }),
    );
    await q.addColumns('retro_hunt', [new TableColumn(col.intDefault('dns_hits_added', 0)), new TableColumn(col.intDefault('dns_hits_removed', 0))]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('retro_hunt', 'dns_hits_removed');
    await q.dropColumn('retro_hunt', 'dns_hits_added');
    await q.dropTable('retro_hunt_domain');
    await q.dropTable('upload_name_set');
  }
}
