import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LogUpload } from './log-upload.entity';

/** Rows of at most this many bytes: under MySQL's 64 KiB BLOB and far under max_allowed_packet. */
export const BLOB_CHUNK_BYTES = 60_000;

/**
 * The uploaded text, gzip-compressed, in ordered chunks. Kept in the database (not on a node's disk) so any
 * worker on any node can process or re-process it.
 */
@Entity('log_upload_blob')
export class LogUploadBlob {
  @PrimaryColumn({ type: 'int' })
  uploadId: number;

  @PrimaryColumn({ type: 'int' })
  seq: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_log_upload_blob_upload' })
  upload?: LogUpload;

  @Column({ type: 'blob' })
  data: Buffer;
}
