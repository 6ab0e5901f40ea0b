import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { IocCategory, IocEntryKind, IocListKind, SEVERITY_DESCRIPTION } from './ioc.enums';

/** A named list of IOC entries (the original's targets and user-defined lists). */
@Entity('ioc_list')
@Index('UQ_ioc_list_account_name', ['accountId', 'nameKey'], { unique: true })
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description: 'A threat-intelligence list: IPv4/IPv6 addresses and networks of one kind, severity and category.',
})
export class IocList {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_ioc_list_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 100 })
  @Field({ description: 'Name, unique in the account (case-insensitive).' })
  name: string;

  @Column({ type: 'varchar', length: 100 })
  nameKey: string;

  @Column({ type: 'varchar', length: 8 })
  @Field(() => IocListKind, { description: 'BLOCK flags addresses; ALLOW exempts them from every BLOCK list of a policy.' })
  kind: IocListKind;

  @Column({ type: 'varchar', length: 8, default: IocEntryKind.IP })
  @Field(() => IocEntryKind, {
    description: 'What the entries are: IP addresses and networks, or domains (each matching its subdomains too). Set at creation.',
  })
  entryKind: IocEntryKind;

  @Column({ type: 'smallint' })
  @Field(() => Int, { description: SEVERITY_DESCRIPTION })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  @Field(() => IocCategory, { description: 'Threat type.' })
  category: IocCategory;

  @Column({ type: 'varchar', length: 200, nullable: true })
  @Field(() => String, { nullable: true, description: 'Where the entries come from, e.g. "Spamhaus DROP".' })
  sourceName: string | null;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  @Field(() => String, { nullable: true, description: 'Reference URL of the source.' })
  referenceUrl: string | null;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Free-text description.' })
  description: string | null;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'How many entries the list holds (expired ones included).' })
  entryCount: number;

  /** Bumped in the same transaction as every change of entries: matcher indexes compare it to know they are current. */
  @Column({ type: 'int', default: 0 })
  revision: number;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, {
    nullable: true,
    description: 'Seconds an imported entry matches after a feed first held it, however often feeds hold it again; null: no limit.',
  })
  entryLifetimeSeconds: number | null;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, {
    nullable: true,
    description:
      'Seconds an imported entry keeps matching after the last feed import or source fetch that held it; null: a REPLACE removes the entries a feed no longer holds at once. With a grace period a REPLACE keeps them until it ends.',
  })
  ageingGraceSeconds: number | null;

  /**
   * When a REPLACE last held every entry left in the list (one without ageing): an entry's last sighting is the
   * later of its own column and this, so such a REPLACE need not write every kept row.
   */
  @TimestampColumn({ nullable: true })
  entriesSeenAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When a feed was last imported into the list.' })
  lastImportedAt: Date | null;

  @TimestampColumn()
  @Field({ description: 'When the list was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When the list or its entries last changed.' })
  updatedAt: Date;
}
