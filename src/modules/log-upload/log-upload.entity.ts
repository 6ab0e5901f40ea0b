import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { bigintNumber, TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { Device } from '../device/device.entity';
import { LogUploadStatus, SkipReason, UploadSource } from './log-upload.enums';
import type { UploadWarningData } from './retention-warning';

export type StoredEncoding = 'gzip' | 'br';

/**
 * An uploaded tcpdump file and its processing job in one row: the row is inserted QUEUED in the same
 * transaction as the file's bytes, and a worker claims it by taking a lease (lease_owner, lease_expires_at).
 */
@Entity('log_upload')
@Index('UQ_log_upload_device_md5', ['deviceId', 'md5'], { unique: true })
@Index('IDX_log_upload_queue', ['status', 'leaseExpiresAt'])
@Index('IDX_log_upload_account_received', ['accountId', 'receivedAt'])
@Index('IDX_log_upload_device_received', ['deviceId', 'receivedAt'])
@Index('IDX_log_upload_retro_hunt', ['retroHuntId', 'status'])
@ObjectType({ implements: Node, description: 'An uploaded tcpdump text file, its processing status and what was found in it.' })
export class LogUpload {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_log_upload_account' })
  account?: Account;

  @Column({ type: 'int' })
  deviceId: number;

  @ManyToOne(() => Device, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'FK_log_upload_device' })
  device?: Device;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => UploadSource, { description: 'How the file was uploaded.' })
  source: UploadSource;

  @Column({ type: 'int', nullable: true })
  apiKeyId: number | null;

  @Column({ type: 'varchar', length: 255 })
  @Field({ description: 'File name as the client sent it.' })
  fileName: string;

  /** Bytes as received (gzip included); what the client's size and md5 describe. */
  @Column({ type: 'bigint', transformer: bigintNumber })
  @Field(() => SafeInt, { description: 'Size in bytes as received (compressed size when the client sent gzip).' })
  size: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  @Field(() => SafeInt, { description: 'Size of the tcpdump text in bytes (after gunzip).' })
  textBytes: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  @Field(() => SafeInt, { description: 'Bytes stored (the text, compressed).' })
  storedBytes: number;

  /** How the stored bytes are compressed: 'br' (text we compressed) or 'gzip' (kept as the client sent it). */
  @Column({ type: 'varchar', length: 8, default: 'gzip' })
  storedEncoding: StoredEncoding;

  @Column({ type: 'varchar', length: 32 })
  @Field({ description: 'MD5 of the file as received, lower-case hex.' })
  md5: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => LogUploadStatus, { description: 'QUEUED, PROCESSING, COMPLETED or FAILED.' })
  status: LogUploadStatus;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, {
    nullable: true,
    description: 'Why processing failed (FAILED uploads); while a retry after a transient database error waits (QUEUED), what the last attempt met.',
  })
  error: string | null;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Processing attempts so far: each start by a worker, and each retry after a transient database error (at most 5).' })
  attempts: number;

  @Column({ type: 'varchar', length: 64, nullable: true })
  leaseOwner: string | null;

  @TimestampColumn({ nullable: true })
  leaseExpiresAt: Date | null;

  @TimestampColumn()
  @Field({ description: 'When the upload was received and stored.' })
  receivedAt: Date;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When the last processing attempt started.' })
  startedAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When processing completed or failed.' })
  finishedAt: Date | null;

  @Column({ type: 'bigint', default: 0, transformer: bigintNumber })
  @Field(() => SafeInt, { description: 'Text bytes parsed so far (progress while PROCESSING).' })
  progressBytes: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Lines parsed so far (progress while PROCESSING).' })
  progressLines: number;

  @Column({ type: 'int', nullable: true })
  policyId: number | null;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Lines in the file.' })
  lineCount: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Lines that are packets (timestamp, IPv4/IPv6 addresses).' })
  packetLines: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Lines that are not packets (see skippedByReason).' })
  skippedLines: number;

  /** JSON: { reason: count } and the first samples. */
  @Column({ type: 'simple-json', nullable: true })
  skipped: { byReason: Partial<Record<SkipReason, number>>; samples: Array<{ lineNumber: number; reason: SkipReason; text: string }> } | null;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Connections (both directions of an address/port pair and protocol) in the file.' })
  connections: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Connections opened from outside (INBOUND).' })
  inboundConnections: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Connections opened from inside (OUTBOUND).' })
  outboundConnections: number;

  /** Kept equal to the upload's stored flow hits: the retention purge moves what it deletes to hitsPurged. */
  @Column({ type: 'int', default: 0 })
  @Field(() => Int, {
    description:
      "Flow hits stored for this upload: connections whose external address matched a BLOCK entry of the device's policy, less those the retention purge has deleted since (hitsPurged).",
  })
  hits: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, {
    description:
      'Flow hits of this upload deleted by the retention purge because their capture time is older than RETENTION_DAYS. hits + hitsPurged is what processing found.',
  })
  hitsPurged: number;

  /** With ANALYTICS_URL: the processing attempt whose hits ClickHouse holds (src/modules/analytics/analytics-hits.ts). */
  @Column({ type: 'bigint', nullable: true, transformer: bigintNumber })
  analyticsAttempt: number | null;

  /** JSON: what processing found worth a warning (see UploadWarningCode); null before processing. */
  @Column({ type: 'simple-json', nullable: true })
  warnings: UploadWarningData[] | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'Capture time of the first packet.' })
  firstCaptureAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'Capture time of the last packet.' })
  lastCaptureAt: Date | null;

  /**
   * The retro-hunt that queued this upload for a re-run, which the re-run's new hits name; cleared when it finishes.
   * Every hunt waiting for the re-run is in retro_hunt_upload.
   */
  @Column({ type: 'int', nullable: true })
  retroHuntId: number | null;

  /**
   * The account's retro-hunts waiting to be planned when the last run read the lists, with how many changes each
   * covered then (JSON `{"id": changes}`): a hunt whose every change the run saw need not re-run it.
   */
  @Column({ type: 'text', nullable: true })
  judgedHunts: string | null;
}
