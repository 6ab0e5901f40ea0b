import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Device } from '../device/device.entity';
import { Ioc } from './ioc.entity';

/**
 * Where an ALLOW entry applies, when not in the whole policy (#17 item 4: a FALSE_POSITIVE verdict scoped to one
 * device or one internal host of it). An ALLOW entry with no scope row applies wherever its list is attached; one
 * with scope rows applies only to uploads of those devices (and, when `internalHost` is not empty, only to hits of
 * that internal host). Deleted with the entry or the device.
 */
@Entity('ioc_scope')
@Index('UQ_ioc_scope', ['iocId', 'deviceId', 'internalHost'], { unique: true })
@Index('IDX_ioc_scope_list', ['listId'])
@ObjectType({ description: 'Where an ALLOW entry applies when not in the whole policy: one device, or one internal host of it.' })
export class IocScope {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  iocId: number;

  /** The entry's list (denormalised: a policy's matcher reads a list's scopes without scanning its entries). */
  @Column({ type: 'int' })
  listId: number;

  @ManyToOne(() => Ioc, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'ioc_id', foreignKeyConstraintName: 'FK_ioc_scope_ioc' })
  ioc?: Ioc;

  @Column({ type: 'int' })
  deviceId: number;

  @ManyToOne(() => Device, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'FK_ioc_scope_device' })
  device?: Device;

  /** The internal host's address; empty: every host of the device (GraphQL: null). */
  @Column({ type: 'varchar', length: 45 })
  internalHost: string;

  @TimestampColumn()
  @Field({ description: 'When the scope was added (by a FALSE_POSITIVE verdict).' })
  createdAt: Date;
}
