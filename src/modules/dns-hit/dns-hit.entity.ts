import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
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
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description:
    "DNS questions of one upload whose name a BLOCK entry of the device policy's DOMAIN lists contains (and no ALLOW entry does): one per querying host, name and type, counted, with the answers seen.",
})
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

  @TimestampColumn()
  @Field({ description: 'Capture time of the first of these queries.' })
  firstSeenAt: Date;

  @TimestampColumn()
  @Field({ description: 'Capture time of the last of them.' })
  lastSeenAt: Date;

  @Column({ type: 'varchar', length: 8 })
  @Field(() => Direction, { description: 'OUTBOUND when the querying host (internalIp) is inside, INBOUND when an outside host asked.' })
  direction: Direction;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: 'The querying host: the end of the queries that does not use port 53.' })
  internalIp: string;

  @Column({ type: 'varchar', length: 253 })
  @Field({ description: "The question's name, lowercase, without the trailing dot." })
  qname: string;

  @Column({ type: 'varchar', length: 16 })
  @Field({ description: "The question's type as tcpdump prints it (`A`, `AAAA`, `HTTPS`, `Type65`)." })
  qtype: string;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'How many queries asked this question (from this host, in this upload).' })
  hitCount: number;

  /** JSON array of the A/AAAA/CNAME answers seen (`A 192.0.2.1`). */
  @Column({ type: 'text' })
  answers: string;

  @Column({ type: 'int' })
  iocDomainId: number;

  @Column({ type: 'int' })
  iocListId: number;

  @Column({ type: 'varchar', length: 253 })
  @Field({ description: 'The matched entry as it was when the upload was processed: qname itself or a parent of it.' })
  matchedName: string;

  @Column({ type: 'smallint' })
  @Field(() => Int, { description: 'Severity (0-5) of the matched list when the upload was processed.' })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  @Field(() => IocCategory, { description: 'Category of the matched list when the upload was processed.' })
  category: IocCategory;
}
