import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { LogUpload } from '../log-upload/log-upload.entity';
import { TriageStatus } from './hit-triage.enums';

/**
 * An analyst's verdict on a hit, keyed by the hit's stable identity (upload + hitIdentity(): connection, side,
 * entry), not its row id: a reprocess or a retro-hunt that finds the hit again finds its triage too. Deleted with
 * the upload.
 */
@Entity('flow_hit_triage')
@Index('UQ_flow_hit_triage_hit', ['uploadId', 'identity'], { unique: true })
@ObjectType({ description: "An analyst's verdict on a hit: who set it, when, and why." })
export class HitTriage {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  uploadId: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_flow_hit_triage_upload' })
  upload?: LogUpload;

  @Column({ type: 'varchar', length: 191 })
  identity: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => TriageStatus, { description: 'The verdict.' })
  status: TriageStatus;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Why, in the analyst’s words.' })
  note: string | null;

  /** The API key that set it. */
  @Column({ type: 'int' })
  apiKeyId: number;

  @TimestampColumn()
  @Field({ description: 'When it was set.' })
  updatedAt: Date;
}
