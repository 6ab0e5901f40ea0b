import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';

/** A tenant: every device, list, upload and hit belongs to exactly one account. */
@Entity('account')
@Index('UQ_account_name', ['name'], { unique: true })
@ObjectType({ implements: Node, description: 'A tenant. Every object you can see belongs to your account.' })
export class Account {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'varchar', length: 64 })
  @Field({ description: 'Name of the account.' })
  name: string;

  @TimestampColumn()
  @Field({ description: 'When the account was created.' })
  createdAt: Date;
}
