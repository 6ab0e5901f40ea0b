import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { RetroHuntStatus } from './retro-hunt.enums';

/**
 * A retro-hunt: re-judges the stored uploads a change may affect (retro-hunt.service.ts). Its own row is its
 * job (QUEUED until `not_before`, then planned in one transaction that queues its uploads); each re-run upload
 * adds its counts here in the transaction that writes its hits.
 */
@Entity('retro_hunt')
@Index('IDX_retro_hunt_queue', ['status', 'notBefore'])
@Index('IDX_retro_hunt_account', ['accountId', 'id'])
@ObjectType({ implements: Node, description: 'A re-judging of stored uploads after a change of lists, policies or devices, or on request.' })
export class RetroHunt {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_retro_hunt_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => RetroHuntStatus, { description: 'Where it is.' })
  status: RetroHuntStatus;

  @Column({ type: 'text' })
  @Field({ description: 'The change(s) that caused it, one a line (changes in quick succession share one retro-hunt).' })
  cause: string;

  /** JSON: the targets (retro-hunt.scope.ts). */
  @Column({ type: 'text' })
  scope: string;

  /** Only uploads received at or after this instant (manual start's `since`); null: every stored upload. */
  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'Only uploads received since then were examined; null: every stored upload.' })
  since: Date | null;

  /** Claimable from then: the coalescing window. */
  @TimestampColumn()
  notBefore: Date;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Stored uploads of the affected devices whose address sets were examined.' })
  uploadsExamined: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Uploads whose addresses intersect the change: re-run through the processor.' })
  uploadsRerun: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, {
    description:
      'Of those, how many have been re-run so far (progress). A re-run that several hunts waited for (each planned while the upload was being processed) counts for each, as do its hits added and removed.',
  })
  uploadsDone: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, {
    description:
      'Uploads of its devices that were gone and could not be judged: those the retention purge deleted before the hunt (counted for a hunt without `since`; one from `since` names the period in `summary` instead), and those deleted with their device before their re-run came.',
  })
  uploadsPurged: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Hits the re-runs found that were not there before.' })
  hitsAdded: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Hits the re-runs no longer found (an entry removed, an ALLOW added...).' })
  hitsRemoved: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'DNS hits the re-runs found that were not there before (same querying host, name, type and matched entry).' })
  dnsHitsAdded: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'DNS hits the re-runs no longer found (a domain entry removed, an ALLOW entry added...).' })
  dnsHitsRemoved: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, {
    description:
      'Uploads of its devices it did not re-run because they were matched after its last change, against the lists as they are now (processed while it waited to be planned).',
  })
  uploadsUpToDate: number;

  /** How many changes it covers (each list change that joins it adds one); an upload records the count it saw (log_upload.judged_hunts). */
  @Column({ type: 'int', default: 0 })
  changes: number;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'What happened in words: why it was refused, what could not be judged.' })
  summary: string | null;

  @TimestampColumn()
  @Field({ description: 'When it was requested (by the first change it covers).' })
  createdAt: Date;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When it was planned and its uploads queued.' })
  startedAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When its last upload finished.' })
  finishedAt: Date | null;
}

/** The changed entries' ranges of a requested retro-hunt, per target (retro-hunt.request.ts); deleted once it is planned. */
@Entity('retro_hunt_range')
@Index('IDX_retro_hunt_range_hunt', ['retroHuntId', 'target'])
export class RetroHuntRange {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  retroHuntId: number;

  @ManyToOne(() => RetroHunt, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'retro_hunt_id', foreignKeyConstraintName: 'FK_retro_hunt_range_hunt' })
  retroHunt?: RetroHunt;

  /** Index of the target in the hunt's scope. */
  @Column({ type: 'int' })
  target: number;

  @Column({ type: 'varchar', length: 32 })
  rangeStart: string;

  @Column({ type: 'varchar', length: 32 })
  rangeEnd: string;
}

/** One row: up to when entry expiries have been turned into retro-hunts (an expiry passing changes the hits too). */
@Entity('retro_hunt_clock')
export class RetroHuntClock {
  @PrimaryColumn({ type: 'int' })
  id: number;

  @TimestampColumn()
  expiryCheckedAt: Date;
}

/** The changed domain entries of a requested retro-hunt, per target (retro-hunt.request.ts); deleted once it is planned. */
@Entity('retro_hunt_domain')
@Index('IDX_retro_hunt_domain_hunt', ['retroHuntId', 'target'])
export class RetroHuntDomain {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  retroHuntId: number;

  @ManyToOne(() => RetroHunt, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'retro_hunt_id', foreignKeyConstraintName: 'FK_retro_hunt_domain_hunt' })
  retroHunt?: RetroHunt;

  /** Index of the target in the hunt's scope. */
  @Column({ type: 'int' })
  target: number;

  /** The entry's name (ioc_domain.name): it and every name under it. */
  @Column({ type: 'varchar', length: 253 })
  name: string;
}
