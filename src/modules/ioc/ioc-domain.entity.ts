import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { IocList } from './ioc-list.entity';

/**
 * One domain IOC entry of a DOMAIN list: the name and all its subdomains (lowercase ASCII, punycode for IDNs,
 * no trailing dot; see feed/domain-name.ts). IP lists keep their entries in `ioc`.
 */
@Entity('ioc_domain')
@Index('UQ_ioc_domain_list_name', ['listId', 'name'], { unique: true })
@Index('IDX_ioc_domain_account_name', ['accountId', 'name'])
@Index('IDX_ioc_domain_list_id', ['listId', 'id'])
@Index('IDX_ioc_domain_expires', ['expiresAt'])
@ObjectType({ implements: Node, description: 'A domain IOC entry: the name and every subdomain of it.' })
export class IocDomain {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  listId: number;

  @ManyToOne(() => IocList, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'list_id', foreignKeyConstraintName: 'FK_ioc_domain_list' })
  list?: IocList;

  /** Denormalised from the list so account-wide lookups need no join. */
  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'varchar', length: 253 })
  @Field({
    description: 'The domain, lowercase ASCII (internationalised names as punycode `xn--`), without a trailing dot; it matches itself and every subdomain.',
  })
  name: string;

  @Column({ type: 'varchar', length: 500, nullable: true })
  @Field(() => String, { nullable: true, description: 'Comment from the feed or the person who added it.' })
  comment: string | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'After this instant the entry never matches.' })
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
