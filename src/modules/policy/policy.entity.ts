import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';

/** A named set of IOC lists; each device has one, and its uploads are matched against it. */
@Entity('policy')
@Index('UQ_policy_account_name', ['accountId', 'nameKey'], { unique: true })
@ObjectType({
  implements: Node,
  description:
    'A named set of IOC lists. Each device has one policy; its uploads are matched against the IP IOCs of that policy (nothing is enforced on the device).',
})
export class Policy {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_policy_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 100 })
  @Field({ description: 'Name, unique in the account (case-insensitive).' })
  name: string;

  /** Lower-cased name: uniqueness is case-insensitive on both drivers whatever their collation. */
  @Column({ type: 'varchar', length: 100 })
  nameKey: string;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Free-text description.' })
  description: string | null;

  /** Bumped when lists are attached or detached: part of the matcher index's freshness check. */
  @Column({ type: 'int', default: 0 })
  revision: number;

  @TimestampColumn()
  @Field({ description: 'When the policy was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When the policy was last changed.' })
  updatedAt: Date;
}
