import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from './account.entity';
import { Role } from './account.enums';
import { Device } from '../device/device.entity';

/** An API key. Only the SHA-256 of the secret is stored: keys are 256-bit random, so a slow hash adds nothing. */
@Entity('api_key')
@Index('UQ_api_key_token_hash', ['tokenHash'], { unique: true })
@Index('IDX_api_key_account', ['accountId', 'id'])
@ObjectType({ implements: Node, description: 'An API key. The secret is shown once, when the key is created; only its hash is kept.' })
export class ApiKey {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_api_key_account' })
  account?: Account;

  /** UPLOADER keys may be bound to one device: the legacy form upload then needs nothing else to find it. */
  @Column({ type: 'int', nullable: true })
  deviceId: number | null;

  @ManyToOne(() => Device, { onDelete: 'CASCADE', nullable: true })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'FK_api_key_device' })
  device?: Device | null;

  @Column({ type: 'varchar', length: 100 })
  @Field({ description: 'A label for the key, e.g. the host or person that uses it.' })
  name: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => Role, { description: 'What the key may do.' })
  role: Role;

  @Column({ type: 'varchar', length: 16 })
  @Field({ description: 'The first characters of the secret, to recognise a key without revealing it.' })
  prefix: string;

  @Column({ type: 'varchar', length: 64 })
  tokenHash: string;

  @TimestampColumn()
  @Field({ description: 'When the key was created.' })
  createdAt: Date;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When the key was last used (updated at most once a minute).' })
  lastUsedAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When the key was revoked; a revoked key authenticates nothing.' })
  revokedAt: Date | null;
}
