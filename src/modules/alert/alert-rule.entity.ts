import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { bigintNumber, TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { AlertDigestMode, HitFoundBy, HitKind } from './alert.enums';

/**
 * Which hits raise alerts, and where they go. Every condition is a filter; an empty list matches anything.
 * One alert per (rule, matched entry, internal host) per throttle window stands for all its hits.
 */
@Entity('alert_rule')
@Index('IDX_alert_rule_account', ['accountId'])
@ObjectType({
  implements: Node,
  simpleResolvers: true,
  description: 'Which hits raise alerts, and which destinations they go to. Empty condition lists match anything.',
})
export class AlertRule {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_alert_rule_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 64 })
  @Field({ description: 'Name, 1-64 characters.' })
  name: string;

  @Column({ type: 'boolean', default: true })
  @Field({ description: 'Whether it raises alerts.' })
  enabled: boolean;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Lowest severity (0-5) of the matched list that raises an alert.' })
  minSeverity: number;

  @Column({ type: 'simple-json' })
  @Field(() => [Direction], { description: 'Directions that raise alerts; empty: both.' })
  directions: Direction[];

  @Column({ type: 'simple-json' })
  deviceIds: number[];

  @Column({ type: 'simple-json' })
  iocListIds: number[];

  @Column({ type: 'simple-json' })
  @Field(() => [IocCategory], { description: 'Categories of the matched list that raise alerts; empty: any.' })
  categories: IocCategory[];

  @Column({ type: 'simple-json' })
  @Field(() => [HitFoundBy], { description: 'How the hit was found (its upload, or a retro-hunt); empty: either.' })
  foundBy: HitFoundBy[];

  @Column({ type: 'simple-json' })
  @Field(() => [HitKind], { description: 'What the hit matched (an address entry by a flow, a domain entry by a DNS query); empty: either.' })
  hitKinds: HitKind[];

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Throttle window in minutes: one alert per matched entry and internal host per window, with its hit count.' })
  throttleMinutes: number;

  @Column({ type: 'simple-json' })
  destinationIds: number[];

  @Column({ type: 'varchar', length: 16, default: AlertDigestMode.IMMEDIATE })
  @Field(() => AlertDigestMode, { description: 'Each alert as raised, or a daily or weekly digest of them.' })
  digest: AlertDigestMode;

  @Column({ type: 'varchar', length: 5, nullable: true })
  @Field(() => String, { nullable: true, description: 'Local time (HH:MM) of the digest.' })
  digestTime: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  @Field(() => String, { nullable: true, description: 'IANA time zone of digestTime, e.g. Europe/Paris.' })
  digestTimeZone: string | null;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, { nullable: true, description: 'Weekday of a WEEKLY digest: 1 Monday ... 7 Sunday.' })
  digestWeekday: number | null;

  /** End of the period of the last digest written (epoch ms); its next one starts there. */
  @Column({ type: 'bigint', nullable: true, transformer: bigintNumber })
  digestUntil: number | null;

  @TimestampColumn()
  @Field({ description: 'When it was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When it was last changed.' })
  updatedAt: Date;
}
