import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { TimestampColumn } from '../../db/columns';
import { Account } from '../account/account.entity';
import { Device } from '../device/device.entity';
import { LogUpload } from '../log-upload/log-upload.entity';
import { IocCategory } from '../ioc/ioc.enums';
import { Direction } from '../flow-hit/flow-hit.enums';

/**
 * DNS questions of one upload whose name matched a BLOCK entry of the device policy's DOMAIN lists: one row per
 * (querying host, qname, qtype), counted, with the answers seen for those queries in the same capture. The
 * matched entry's name, list, severity and category are copied in, as for flow hits.
 */
// Index choices (as flow_hit's): (upload_id) to replace an upload's hits; (account, first_seen_at, id) for the
// window scan and keyset order of the list and retention's purge; (account, device, first_seen_at, id) for one
// device; (account, qname, first_seen_at) for iocLookup of a name.
@Entity('dns_hit')
@Index('IDX_dns_hit_upload', ['uploadId'])
@Index('IDX_dns_hit_account_time', ['accountId', 'firstSeenAt', 'id'])
@Index('IDX_dns_hit_account_device_time', ['accountId', 'deviceId', 'firstSeenAt', 'id'])
@Index('IDX_dns_hit_account_qname', ['accountId', 'qname', 'firstSeenAt'])
export class DnsHit {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_dns_hit_account' })
  account?: Account;

  @Column({ type: 'int' })
  deviceId: number;

  @ManyToOne(() => Device, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'FK_dns_hit_device' })
  device?: Device;

  @Column({ type: 'int' })
  uploadId: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_dns_hit_upload' })
  upload?: LogUpload;

  /** Capture time of the first of these queries. */
  @TimestampColumn()
  firstSeenAt: Date;

  /** Capture time of the last. */
  @TimestampColumn()
  lastSeenAt: Date;

  /** OUTBOUND when the querying host is inside, INBOUND when an outside host asked. */
  @Column({ type: 'varchar', length: 8 })
  direction: Direction;

  /** The querying host. */
  @Column({ type: 'varchar', length: 45 })
  internalIp: string;

  /** The question's name: lowercase, no trailing dot. */
  @Column({ type: 'varchar', length: 253 })
  qname: string;

  /** The question's type as tcpdump prints it (`A`, `AAAA`, `Type65`). */
  @Column({ type: 'varchar', length: 16 })
  qtype: string;

  /** Queries counted. */
  @Column({ type: 'int' })
  hitCount: number;

  /** JSON array of the A/AAAA/CNAME answers seen (`A 192.0.2.1`). */
  @Column({ type: 'text' })
  answers: string;

  @Column({ type: 'int' })
  iocDomainId: number;

  @Column({ type: 'int' })
  iocListId: number;

  /** The matched entry's name: qname itself or a parent. */
  @Column({ type: 'varchar', length: 253 })
  matchedName: string;

  @Column({ type: 'smallint' })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  category: IocCategory;
}
