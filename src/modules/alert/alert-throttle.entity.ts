import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { bigintNumber } from '../../db/columns';
import { AlertRule } from './alert-rule.entity';

/**
 * Where each throttle key's current window started: one row per (rule, hit kind, matched entry, internal host).
 * A window starts at the key's first alert and lasts the rule's throttleMinutes; the next hit after it starts a
 * new one (alert-outbox.ts). The outbox upserts the row and reads it back under its row lock, so two writers of
 * the same key at once share one window. Not exposed: alert.windowStart shows it.
 */
@Entity('alert_throttle')
@Index('UQ_alert_throttle_key', ['ruleId', 'hitKind', 'iocId', 'internalKey'], { unique: true })
@Index('IDX_alert_throttle_window', ['windowStart'])
export class AlertThrottle {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  ruleId: number;

  @ManyToOne(() => AlertRule, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'rule_id', foreignKeyConstraintName: 'FK_alert_throttle_rule' })
  rule?: AlertRule;

  @Column({ type: 'varchar', length: 8 })
  hitKind: string;

  @Column({ type: 'int' })
  iocId: number;

  @Column({ type: 'varchar', length: 32 })
  internalKey: string;

  /** Epoch milliseconds: the start of the key's current (or last) window. */
  @Column({ type: 'bigint', transformer: bigintNumber })
  windowStart: number;
}
