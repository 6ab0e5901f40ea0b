import { Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LogUpload } from '../log-upload/log-upload.entity';
import { RetroHunt } from './retro-hunt.entity';

/**
 * A retro-hunt waiting for a run of an upload (retro-hunt.service.ts): written when the hunt queues the upload, or
 * names itself on it while it is being processed, and deleted by the run that judges the upload against the lists
 * after the hunt's changes (log-upload.processor.ts). Several hunts can wait for one run: each planned while the
 * upload was being matched against the lists before its change. A row of an upload whose re-run failed stays after
 * its hunt completes, counted for nothing, until the upload runs again (that run drops it) or is deleted.
 */
@Entity('retro_hunt_upload')
@Index('IDX_retro_hunt_upload_upload', ['uploadId'])
export class RetroHuntUpload {
  @PrimaryColumn({ type: 'int' })
  retroHuntId: number;

  @PrimaryColumn({ type: 'int' })
  uploadId: number;

  @ManyToOne(() => RetroHunt, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'retro_hunt_id', foreignKeyConstraintName: 'FK_retro_hunt_upload_hunt' })
  retroHunt?: RetroHunt;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_retro_hunt_upload_upload' })
  upload?: LogUpload;
}
