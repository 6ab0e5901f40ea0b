import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, index } from '../src/db/migration-helpers';

/**
 * retro_hunt_upload: the retro-hunts waiting for a run of each upload. log_upload.retro_hunt_id named one: a second
 * hunt planned while an upload was being processed overwrote the first's name, and the first then counted the upload
 * as deleted with its device. Seeded with the uploads each hunt waits for now.
 */
export class RetroHuntUpload1764750000000 implements MigrationInterface {
  name = 'RetroHuntUpload1764750000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'retro_hunt_upload',
        columns: [
          { ...col.int('retro_hunt_id'), isPrimary: true },
          { ...col.int('upload_id'), isPrimary: true },
        ],
        indices: [index('IDX_retro_hunt_upload_upload', ['upload_id'])],
        foreignKeys: [
          fk('FK_retro_hunt_upload_hunt', 'retro_hunt_id', 'retro_hunt', 'CASCADE'),
          fk('FK_retro_hunt_upload_upload', 'upload_id', 'log_upload', 'CASCADE'),
        ],
      }),
    );
    await q.query(
      `INSERT INTO retro_hunt_upload (retro_hunt_id, upload_id)
       SELECT u.retro_hunt_id, u.id FROM log_upload u JOIN retro_hunt h ON h.id = u.retro_hunt_id WHERE h.status = 'RUNNING'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('retro_hunt_upload');
  }
}
