import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

/**
 * Retro-hunt (#17): each upload's address set, the retro-hunt jobs, the upload a hunt queued (log_upload.retro_hunt_id),
 * and how each hit was found (flow_hit.found_by, found_at, retro_hunt_id). Hits stored before were found by their
 * upload, when it finished.
 */
export class RetroHunt1764316800000 implements MigrationInterface {
  name = 'RetroHunt1764316800000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'upload_address_set',
        columns: [{ ...col.int('upload_id'), isPrimary: true }, { ...col.int('seq'), isPrimary: true }, col.int('v4_count'), col.blob('data')],
        foreignKeys: [fk('FK_upload_address_set_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'retro_hunt',
        columns: [
          idColumn(),
          col.int('account_id'),
          col.varchar('status', 16),
          col.text('cause'),
          col.text('scope'),
          col.bigint('since', true),
          col.bigint('not_before'),
          col.intDefault('uploads_examined', 0),
          col.intDefault('uploads_rerun', 0),
          col.intDefault('uploads_done', 0),
          col.intDefault('uploads_purged', 0),
          col.intDefault('hits_added', 0),
          col.intDefault('hits_removed', 0),
          col.text('summary', true),
          col.bigint('created_at'),
          col.bigint('started_at', true),
          col.bigint('finished_at', true),
        ],
        indices: [index('IDX_retro_hunt_queue', ['status', 'not_before']), index('IDX_retro_hunt_account', ['account_id', 'id'])],
        foreignKeys: [fk('FK_retro_hunt_account', 'account_id', 'account', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'retro_hunt_range',
        columns: [idColumn(), col.int('retro_hunt_id'), col.int('target'), col.varchar('range_start', 32), col.varchar('range_end', 32)],
        indices: [index('IDX_retro_hunt_range_hunt', ['retro_hunt_id', 'target'])],
        foreignKeys: [fk('FK_retro_hunt_range_hunt', 'retro_hunt_id', 'retro_hunt', 'CASCADE')],
      }),
    );
    await q.createTable(new Table({ name: 'retro_hunt_clock', columns: [{ ...col.int('id'), isPrimary: true }, col.bigint('expiry_checked_at')] }));
    await q.query('INSERT INTO retro_hunt_clock (id, expiry_checked_at) VALUES (1, ?)', [Date.now()]);
    await q.addColumn('log_upload', new TableColumn(col.int('retro_hunt_id', true)));
    await q.createIndex('log_upload', index('IDX_log_upload_retro_hunt', ['retro_hunt_id', 'status']));
    await q.addColumns('flow_hit', [
      new TableColumn({ ...col.varchar('found_by', 16), default: "'UPLOAD'" }),
      new TableColumn(col.bigintDefault('found_at', 0)),
      new TableColumn(col.int('retro_hunt_id', true)),
    ]);
    await q.query(`UPDATE flow_hit SET found_at = COALESCE((SELECT finished_at FROM log_upload u WHERE u.id = flow_hit.upload_id), 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('flow_hit', 'retro_hunt_id');
    await q.dropColumn('flow_hit', 'found_at');
    await q.dropColumn('flow_hit', 'found_by');
    await q.dropIndex('log_upload', 'IDX_log_upload_retro_hunt');
    await q.dropColumn('log_upload', 'retro_hunt_id');
    await q.dropTable('retro_hunt_clock');
    await q.dropTable('retro_hunt_range');
    await q.dropTable('retro_hunt');
    await q.dropTable('upload_address_set');
  }
}
