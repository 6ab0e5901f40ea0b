import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { HitFoundBy, HitKind } from './alert.enums';

/**
 * The outbox: one row per (rule, matched entry, internal host, throttle window), written in the transaction that
 * writes the hits it stands for (alert-outbox.ts); later hits in the window add to hit_count. The worker
 * delivers it (alert_delivery) to the rule's destinations.
 */
@Entity('alert')
@Index('UQ_alert_throttle', ['ruleId', 'hitKind', 'iocId', 'internalKey', 'windowStart'], { unique: true })
@Index('IDX_alert_account', ['accountId', 'id'])
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description: 'One alert: a rule matched an entry for an internal host in a throttle window, standing for hitCount hits.',
})
export class Alert {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  ruleId: number;

  @Column({ type: 'varchar', length: 8, default: HitKind.IP })
  @Field(() => HitKind, { description: 'What its hits matched: an address entry (IP) or a domain entry (DNS).' })
  hitKind: HitKind;

  /** The matched entry: an ioc row (IP) or an ioc_domain row (DNS). */
  @Column({ type: 'int' })
  iocId: number;

  @Column({ type: 'int' })
  iocListId: number;

  @Column({ type: 'int' })
  deviceId: number;

  @Column({ type: 'int', nullable: true })
  uploadId: number | null;

  @Column({ type: 'varchar', length: 32 })
  internalKey: string;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: 'The internal host.' })
  internalIp: string;

  @Column({ type: 'varchar', length: 45 })
  @Field({ description: 'The external address of its first hit; empty for a DNS alert.' })
  externalIp: string;

  @Column({ type: 'varchar', length: 253, nullable: true })
  @Field(() => String, { nullable: true, description: 'The name its first DNS hit queried; null for an IP alert.' })
  qname: string | null;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => Direction, { description: 'Direction of its first hit.' })
  direction: Direction;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Severity of the matched list.' })
  severity: number;

  @Column({ type: 'varchar', length: 32 })
  @Field(() => IocCategory, { description: 'Category of the matched list.' })
  category: IocCategory;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => HitFoundBy, { description: 'How its first hit was found.' })
  foundBy: HitFoundBy;

  @TimestampColumn()
  @Field({ description: "Start of its throttle window: the key's first alert in the window (the window lasts the rule's throttleMinutes)." })
  windowStart: Date;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Hits it stands for so far (later hits in the window add to it).' })
  hitCount: number;

  @TimestampColumn()
  @Field({ description: 'Capture time of the earliest hit.' })
  firstSeenAt: Date;

  @TimestampColumn()
  @Field({ description: 'Capture time of the latest hit.' })
  lastSeenAt: Date;

  @TimestampColumn()
  @Field({ description: 'When it was raised.' })
  createdAt: Date;
}
