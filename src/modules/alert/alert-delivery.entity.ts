import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { AlertDeliveryStatus } from './alert.enums';

/** One alert to one destination: the worker's job, claimed with a lease, retried with backoff for up to 24 h. */
@Entity('alert_delivery')
@Index('UQ_alert_delivery', ['alertId', 'destinationId'], { unique: true })
@Index('UQ_alert_delivery_digest', ['digestId', 'destinationId'], { unique: true })
@Index('IDX_alert_delivery_due', ['status', 'nextAttemptAt'])
@Index('IDX_alert_delivery_account', ['accountId', 'id'])
@ObjectType({ implements: Node, simpleResolvers: true, description: 'The delivery of one alert to one destination, with its attempts.' })
export class AlertDelivery {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  /** The alert delivered; null for a digest. */
  @Column({ type: 'int', nullable: true })
  alertId: number | null;

  /** The digest delivered; null for an alert. */
  @Column({ type: 'int', nullable: true })
  digestId: number | null;

  @Column({ type: 'int' })
  destinationId: number;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => AlertDeliveryStatus, { description: 'Where it stands.' })
  status: AlertDeliveryStatus;

  @Column({ type: 'int', default: 0 })
  attempts: number;

  @TimestampColumn()
  @Field({ description: 'When the worker tries next (PENDING), or tried last.' })
  nextAttemptAt: Date;

  /** Set while a worker sends it; past it, another worker may take it (the first one died). */
  @TimestampColumn({ nullable: true })
  leaseUntil: Date | null;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Why its last attempt failed.' })
  lastError: string | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When the destination accepted it.' })
  deliveredAt: Date | null;

  @TimestampColumn()
  @Field({ description: 'When it was queued (with its alert).' })
  createdAt: Date;

  @Field(() => Int, { description: 'Attempts made so far (the attempts field lists them).' })
  get attemptCount(): number {
    return this.attempts;
  }
}

/** A rule's digest: the alerts it raised in one period, delivered to its destinations like an alert. */
@Entity('alert_digest')
@Index('UQ_alert_digest_period', ['ruleId', 'periodEnd'], { unique: true })
@ObjectType('AlertDigest', { description: 'A digest: the alerts one rule raised in one period.' })
export class AlertDigest {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  ruleId: number;

  @TimestampColumn()
  @Field({ description: 'Start of the period (inclusive).' })
  periodStart: Date;

  @TimestampColumn()
  @Field({ description: 'End of the period (exclusive): the scheduled local time.' })
  periodEnd: Date;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Alerts raised in the period.' })
  alertCount: number;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Hits they stand for.' })
  hitCount: number;

  @TimestampColumn()
  @Field({ description: 'When it was written.' })
  createdAt: Date;
}

/** One attempt of a delivery and its outcome. */
@Entity('alert_attempt')
@Index('IDX_alert_attempt_delivery', ['deliveryId'])
@ObjectType('AlertAttempt', { description: 'One attempt to deliver an alert, and its outcome.' })
export class AlertAttempt {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  deliveryId: number;

  @TimestampColumn()
  @Field({ description: 'When it started.' })
  attemptedAt: Date;

  @Column({ type: 'boolean' })
  @Field({ description: 'Whether the destination accepted the alert.' })
  ok: boolean;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Why it failed.' })
  error: string | null;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'How long it took, in milliseconds.' })
  durationMs: number;
}
