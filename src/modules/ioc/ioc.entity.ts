import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { IocList } from './ioc-list.entity';

/**
 * One IOC entry: an address or CIDR. `rangeStart`/`rangeEnd` are the first and last address as 32 lower-case
 * hex digits, IPv4 mapped into ::ffff:0:0/96, so "which entries contain X" and "which lie inside N" are
 * plain string range comparisons that use an index on both drivers.
 */
@Entity('ioc')
@Index('UQ_ioc_list_cidr', ['listId', 'cidr'], { unique: true })
@Index('IDX_ioc_list_start', ['listId', 'rangeStart'])
@Index('IDX_ioc_list_id', ['listId', 'id'])
@Index('IDX_ioc_expires', ['expiresAt'])
@ObjectType({ implements: Node, description: 'An IOC entry: an IPv4/IPv6 address or network on a list.' })
export class Ioc {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  listId: number;

  @ManyToOne(() => IocList, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'list_id', foreignKeyConstraintName: 'FK_ioc_list' })
  list?: IocList;

  /** Denormalised from the list: reads filter by the account without a join. */
  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'varchar', length: 49 })
  @Field({ description: 'Canonical network, e.g. "1.10.16.0/20" or "2a12:2640::/29"; a single address is /32 or /128.' })
  cidr: string;

  @Column({ type: 'smallint' })
  @Field(() => Int, { description: 'IP version: 4 or 6.' })
  family: number;

  @Column({ type: 'smallint' })
  @Field(() => Int, { description: 'Prefix length.' })
  prefix: number;

  @Column({ type: 'varchar', length: 32 })
  rangeStart: string;

  @Column({ type: 'varchar', length: 32 })
  rangeEnd: string;

  @Column({ type: 'varchar', length: 500, nullable: true })
  @Field(() => String, { nullable: true, description: 'Comment from the feed or the person who added it (e.g. an SBL id or a host name).' })
  comment: string | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, {
    nullable: true,
    description: "After this instant the entry never matches: the feed's own expiry, or earlier when the list's lifetime or grace period ends it.",
  })
  expiresAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, {
    nullable: true,
    description: 'When a feed import or source fetch first held the entry; null for entries added by hand.',
  })
  firstSeenInSource: Date | null;

  /** The last sighting written on the row; `lastSeenInSource` in GraphQL is the later of it and the list's entriesSeenAt. */
  @TimestampColumn({ nullable: true })
  lastSeenInSource: Date | null;

  @TimestampColumn()
  @Field({ description: 'When the entry was added.' })
  createdAt: Date;
}
