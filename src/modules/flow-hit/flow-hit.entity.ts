import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { bigintNumber, epochMs, TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { Device } from '../device/device.entity';
import { LogUpload } from '../log-upload/log-upload.entity';
import { IocCategory } from '../ioc/ioc.enums';
import { Direction, MatchedSide, TransportProtocol } from './flow-hit.enums';
import { FoundBy } from '../retro-hunt/retro-hunt.enums';

/**
 * A connection whose external address matched a BLOCK entry of the device's policy. Capture times, not
 * upload times, are the event times. The matched entry's CIDR, list, severity and category are copied in,
 * so a hit stays explained after its entry is removed or its list replaced.
 */
// Index choices (every report filters by account and a capture-time window first):
// - (account, first_seen_at, id, external_ip): the window scan of every report, the default drill-down order with
//   its keyset cursor, and retention's "older than" purge; external_ip lets a report count the window's distinct
//   external addresses from the index alone (~4x faster than reading every hit's row).
// - (account, device, first_seen_at, id, severity): reports and exports narrowed to devices, and the drill-down
//   of one device: its keyset scan (time, id order; severity floor checked in the index) reads index entries
//   only, then the page's rows by key (FlowHitService.search). id is spelled out so severity does not split
//   the (time, id) order.
// - (account, matched_ip, first_seen_at): iocLookup's hit count and first/last seen for one address.
// - (upload_id): replacing an upload's hits when it is (re)processed.
// - (account, severity, first_seen_at, device, internal_ip, ioc, category, list): the triage view (threats, the
//   dashboard's top threats) is ordered most severe first, so it reads one severity at a time from the top and
//   stops once it has its rows (the worst severities are usually a small share of the hits), and ranks the
//   (host, entry) pairs from this index alone before it reads the rows of the few it shows. The list, last,
//   lets distinct entries per list or device (byIocList, byDevice) and byIoc's ranking be counted from it too.
// Groupings that do not need the entry, external address or ports read the roll-ups (report/hit-rollup.entity.ts).
// internal_key/external_key are sortable 32-hex-digit address keys (IPv4 mapped into ::ffff:0:0/96, as for
// IOC entries) so "internal or external address in this CIDR" is a range comparison.
@Entity('flow_hit')
@Index('IDX_flow_hit_upload', ['uploadId'])
@Index('IDX_flow_hit_account_time', ['accountId', 'firstSeenAt', 'id', 'externalIp'])
@Index('IDX_flow_hit_account_device_time', ['accountId', 'deviceId', 'firstSeenAt', 'id', 'severity'])
@Index('IDX_flow_hit_account_matched', ['accountId', 'matchedIp', 'firstSeenAt'])
@Index('IDX_flow_hit_account_severity_time', ['accountId', 'severity', 'firstSeenAt', 'deviceId', 'internalIp', 'iocId', 'category', 'iocListId'])
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description: "A connection that touched an address on one of the device policy's BLOCK lists, and why it matched.",
})
export class FlowHit {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_flow_hit_account' })
  account?: Account;

  @Column({ type: 'int' })
  deviceId: number;

  @ManyToOne(() => Device, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'FK_flow_hit_device' })
  device?: Device;

  @Column({ type: 'int' })
  uploadId: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_flow_hit_upload' })
  upload?: LogUpload;

  @TimestampColumn()
  @Field({ description: "Capture time of the connection's first packet." })
  firstSeenAt: Date;

  @TimestampColumn()
  @Field({ description: 'Capture time of its last packet.' })
  lastSeenAt: Date;

  @Column({ type: 'varchar', length: 8 })
  @Field(() => Direction, { description: 'OUTBOUND when our end (internalIp) opened the connection, INBOUND when it was contacted.' })
  direction: Direction;

  @Column({ type: 'varchar', length: 8 })
  @Field(() => TransportProtocol, { description: 'Transport protocol.' })
  protocol: TransportProtocol;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: "Our end's address: the inside end; between two outside hosts, the one that did not match (the responder when both did)." })
  internalIp: string;

  @Column({ type: 'varchar', length: 32 })
  internalKey: string;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, { nullable: true, description: "The inside end's port; null for ICMP and other port-less protocols." })
  internalPort: number | null;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: "The outside end's address." })
  externalIp: string;

  @Column({ type: 'varchar', length: 32 })
  externalKey: string;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, { nullable: true, description: "The outside end's port." })
  externalPort: number | null;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, { nullable: true, description: "The responder's port (the service port the connection was opened to)." })
  destinationPort: number | null;

  @Column({ type: 'varchar', length: 10 })
  @Field(() => MatchedSide, { description: 'Which end held the matched address.' })
  matchedSide: MatchedSide;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: 'The address that matched.' })
  matchedIp: string;

  @Column({ type: 'int' })
  packetsForward: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  bytesForward: number;

  @Column({ type: 'int' })
  packetsReverse: number;

  @Column({ type: 'bigint', transformer: bigintNumber })
  bytesReverse: number;

  @Column({ type: 'int' })
  iocId: number;

  @Column({ type: 'int' })
  iocListId: number;

  @Column({ type: 'varchar', length: 49 })
  @Field({ description: 'The matched entry as it was when the upload was processed, e.g. "185.220.100.0/24".' })
  matchedCidr: string;

  @Column({ type: 'smallint' })
  @Field(() => Int, { description: 'Severity (0-5) of the matched list when the upload was processed.' })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  @Field(() => IocCategory, { description: 'Category of the matched list when the upload was processed.' })
  category: IocCategory;

  // How it was found (retro-hunt, #17). A hit a re-run keeps (same upload, connection, side and entry) keeps these.
  @Column({ type: 'varchar', length: 16, default: FoundBy.UPLOAD })
  @Field(() => FoundBy, { description: 'How it was found: when its upload was processed, or by a retro-hunt after a list change.' })
  foundBy: FoundBy;

  @Column({ type: 'bigint', default: 0, transformer: epochMs })
  @Field({ description: 'When it was found (kept when a re-run finds it again).' })
  foundAt: Date;

  @Column({ type: 'int', nullable: true })
  retroHuntId: number | null;
}
