import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { Policy } from '../policy/policy.entity';
import { IpType } from './device.enums';

export const DEVICE_TYPE = 'IP Device';
export const DEVICE_MANUFACTURER = 'Packet Capture';
export const DEVICE_MODEL = 'PCAP';

/** A PCAP pseudo-device: a source of tcpdump uploads, matched against its policy. */
@Entity('device')
@Index('UQ_device_account_nickname', ['accountId', 'nicknameKey'], { unique: true })
@Index('IDX_device_account_ip', ['accountId', 'ipAddress'])
@Index('IDX_device_policy', ['policyId'])
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description: 'A PCAP pseudo-device ("IP Device" / "Packet Capture" / "PCAP"): a source of tcpdump uploads whose addresses are matched against its policy.',
})
export class Device {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_device_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 64 })
  @Field({ description: 'Name that identifies the device in reports; unique in the account (case-insensitive), 1-64 characters.' })
  nickname: string;

  @Column({ type: 'varchar', length: 64 })
  nicknameKey: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => IpType, { description: 'STATIC (public IP address) or DYNAMIC (a DNS name kept pointing at it).' })
  ipType: IpType;

  /** Canonical text form (dotted IPv4, RFC 5952 IPv6); null for DYNAMIC devices. */
  @Column({ type: 'varchar', length: 45, nullable: true })
  @Field(() => String, { nullable: true, description: "The device's public IPv4 or IPv6 address (STATIC devices)." })
  ipAddress: string | null;

  @Column({ type: 'varchar', length: 253, nullable: true })
  @Field(() => String, { nullable: true, description: 'Fully-qualified DNS name kept pointing at the device (DYNAMIC devices).' })
  domainName: string | null;

  @Column({ type: 'int' })
  policyId: number;

  @ManyToOne(() => Policy, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'policy_id', foreignKeyConstraintName: 'FK_device_policy' })
  policy?: Policy;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Optional note, up to 1,000 characters.' })
  note: string | null;

  /** JSON array of canonical CIDR strings. */
  @Column({ type: 'simple-json' })
  @Field(() => [String], {
    description: 'CIDRs treated as inside the network for direction, in addition to RFC 1918 and IPv6 unique-local (fc00::/7).',
  })
  internalNetworks: string[];

  @Column({ type: 'boolean', default: false })
  @Field({
    description:
      "Whether the legacy form upload may identify this device by the uploader's address (its static IP, or what its DNS name resolves to) instead of an API key.",
  })
  identifyByUploaderIp: boolean;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: "How many of the device's uploads the retention purge has deleted (RETENTION_DAYS)." })
  uploadsPurged: number;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, {
    nullable: true,
    description:
      "When the newest of the device's uploads that the retention purge deleted was received; null when none was. A retro-hunt reaching back before it cannot judge those uploads, and its summary says so.",
  })
  uploadsPurgedThrough: Date | null;

  @TimestampColumn()
  @Field({ description: 'When the device was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When the device was last changed.' })
  updatedAt: Date;

  @Field({ description: 'Device type of the original product: always "IP Device".' })
  get type(): string {
    return DEVICE_TYPE;
  }

  @Field({ description: 'Always "Packet Capture".' })
  get manufacturer(): string {
    return DEVICE_MANUFACTURER;
  }

  @Field({ description: 'Always "PCAP".' })
  get model(): string {
    return DEVICE_MODEL;
  }
}
