import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { bigintNumber } from '../../db/columns';
import { Account } from '../account/account.entity';
import { LogUpload } from '../log-upload/log-upload.entity';

/**
 * Roll-ups of flow hits, written by the worker in the same transaction as the hits they summarize and replaced
 * with them (by upload) when an upload is processed again. Reports read them instead of the raw hits for the
 * whole buckets of a window and read the raw hits only for the partial buckets at its edges (see
 * groupings/sql-source.ts), so a 30-day report aggregates a few thousand rows instead of hundreds of thousands.
 *
 * Why two tables at two grains, and not one:
 * - HitHour keeps only the dimensions reports filter and group by that have few values (device, direction,
 *   list with its severity and category, protocol). An hour of a busy account collapses to a few dozen rows,
 *   and an hour is fine enough for hourly timelines and for the edges of LAST_24_HOURS-style windows.
 * - HitDayHost adds the internal host, which distinct-host counts and the per-host view need. Hosts have many
 *   values, so its grain is a UTC day: a host that hits all day is one row per day, not one per hour.
 * - Neither keeps the IOC entry, external address or ports: at those grains a roll-up row holds little more than
 *   one hit, so groupings and filters on them read the raw hits (through their indexes).
 * Keyed by upload (not merged across uploads) so replacing an upload's results is a DELETE by upload_id and
 * concurrent workers never update the same roll-up row.
 * Each table's window index holds every column the reports read, so a report never visits the table rows.
 */
/** The columns both roll-ups share (their relations are declared on each, for the constraint names). */
abstract class HitRollup {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  uploadId: number;

  /** Start of the UTC hour or day (epoch ms) holding the hits' first packets. */
  @Column({ type: 'bigint', transformer: bigintNumber })
  bucketAt: number;

  @Column({ type: 'int' })
  deviceId: number;

  @Column({ type: 'varchar', length: 8 })
  direction: string;

  @Column({ type: 'int' })
  iocListId: number;

  @Column({ type: 'smallint' })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  category: string;

  @Column({ type: 'int' })
  hits: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  packets: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  firstSeenAt: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  lastSeenAt: number;
}

@Entity('hit_hour')
@Index('IDX_hit_hour_window', [
  'accountId',
  'bucketAt',
  'deviceId',
  'direction',
  'iocListId',
  'severity',
  'category',
  'protocol',
  'hits',
  'packets',
  'bytes',
  'firstSeenAt',
  'lastSeenAt',
])
@Index('IDX_hit_hour_upload', ['uploadId'])
export class HitHour extends HitRollup {
  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_hit_hour_account' })
  account?: Account;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_hit_hour_upload' })
  upload?: LogUpload;

  @Column({ type: 'varchar', length: 8 })
  protocol: string;

  @Column({ type: 'bigint', transformer: bigintNumber })
  bytes: number;
}

/** See HitHour: per UTC day and internal host. */
@Entity('hit_day_host')
@Index('IDX_hit_day_host_window', [
  'accountId',
  'bucketAt',
  'deviceId',
  'internalIp',
  'direction',
  'iocListId',
  'severity',
  'category',
  'hits',
  'packets',
  'firstSeenAt',
  'lastSeenAt',
])
@Index('IDX_hit_day_host_upload', ['uploadId'])
export class HitDayHost extends HitRollup {
  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_hit_day_host_account' })
  account?: Account;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_hit_day_host_upload' })
  upload?: LogUpload;

  @Column({ type: 'varchar', length: 45 })
  internalIp: string;
}
