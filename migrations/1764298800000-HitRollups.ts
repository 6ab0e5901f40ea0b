import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { col, fk, idColumn, index } from '../src/db/migration-helpers';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Roll-ups of flow hits for the reports (see src/modules/report/hit-rollup.entity.ts), filled from existing hits. */
export class HitRollups1764298800000 implements MigrationInterface {
  name = 'HitRollups1764298800000';

  async up(q: QueryRunner): Promise<void> {
    await q.createIndex(
      'flow_hit',
      index('IDX_flow_hit_account_severity_time', ['account_id', 'severity', 'first_seen_at', 'device_id', 'internal_ip', 'ioc_id', 'category']),
    );
    const keys = [idColumn(), col.int('account_id'), col.int('upload_id'), col.bigint('bucket_at'), col.int('device_id')];
    const lists = [col.varchar('direction', 8), col.int('ioc_list_id'), col.smallint('severity'), col.varchar('category', 32)];
    await q.createTable(
      new Table({
        name: 'hit_hour',
        columns: [
          ...keys,
          ...lists,
          col.varchar('protocol', 8),
          col.int('hits'),
          col.bigint('packets'),
          col.bigint('bytes'),
          col.bigint('first_seen_at'),
          col.bigint('last_seen_at'),
        ],
        indices: [
          index('IDX_hit_hour_window', [
            'account_id',
            'bucket_at',
            'device_id',
            'direction',
            'ioc_list_id',
            'severity',
            'category',
            'protocol',
            'hits',
            'packets',
            'bytes',
            'first_seen_at',
            'last_seen_at',
          ]),
          index('IDX_hit_hour_upload', ['upload_id']),
        ],
        foreignKeys: [fk('FK_hit_hour_account', 'account_id', 'account', 'CASCADE'), fk('FK_hit_hour_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
    await q.createTable(
      new Table({
        name: 'hit_day_host',
        columns: [
          ...keys,
          col.varchar('internal_ip', 45),
          ...lists,
          col.int('hits'),
          col.bigint('packets'),
          col.bigint('first_seen_at'),
          col.bigint('last_seen_at'),
        ],
        indices: [
          index('IDX_hit_day_host_window', [
            'account_id',
            'bucket_at',
            'device_id',
            'internal_ip',
            'direction',
            'ioc_list_id',
            'severity',
            'category',
            'hits',
            'packets',
            'first_seen_at',
            'last_seen_at',
          ]),
          index('IDX_hit_day_host_upload', ['upload_id']),
        ],
        foreignKeys: [fk('FK_hit_day_host_account', 'account_id', 'account', 'CASCADE'), fk('FK_hit_day_host_upload', 'upload_id', 'log_upload', 'CASCADE')],
      }),
    );
    // Hits recorded before this migration get their roll-ups here, so reports over old windows stay complete.
    // A frozen copy of the grain (src/modules/flow-hit/hit-rollup.ts), not a call to it: a migration replays on a
    // fresh database at the schema of its own time, and a later grain (a column added by a later migration) would
    // insert into columns that do not exist yet here. A grain change brings its own migration that refills them.
    const bucket = (ms: number) =>
      q.connection.driver.options.type === 'better-sqlite3' ? `(first_seen_at / ${ms}) * ${ms}` : `(first_seen_at DIV ${ms}) * ${ms}`;
    await q.query(
      `INSERT INTO hit_hour (account_id, upload_id, bucket_at, device_id, direction, ioc_list_id, severity, category, protocol, hits, packets, bytes, first_seen_at, last_seen_at)
       SELECT account_id, upload_id, ${bucket(HOUR_MS)}, device_id, direction, ioc_list_id, severity, category, protocol, COUNT(*),
              SUM(packets_forward + packets_reverse), SUM(bytes_forward + bytes_reverse), MIN(first_seen_at), MAX(last_seen_at)
         FROM flow_hit GROUP BY account_id, upload_id, ${bucket(HOUR_MS)}, device_id, direction, ioc_list_id, severity, category, protocol`,
    );
    await q.query(
      `INSERT INTO hit_day_host (account_id, upload_id, bucket_at, device_id, internal_ip, direction, ioc_list_id, severity, category, hits, packets, first_seen_at, last_seen_at)
       SELECT account_id, upload_id, ${bucket(DAY_MS)}, device_id, internal_ip, direction, ioc_list_id, severity, category, COUNT(*),
              SUM(packets_forward + packets_reverse), MIN(first_seen_at), MAX(last_seen_at)
         FROM flow_hit GROUP BY account_id, upload_id, ${bucket(DAY_MS)}, device_id, internal_ip, direction, ioc_list_id, severity, category`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('hit_day_host');
    await q.dropTable('hit_hour');
    await q.dropIndex('flow_hit', 'IDX_flow_hit_account_severity_time');
  }
}
