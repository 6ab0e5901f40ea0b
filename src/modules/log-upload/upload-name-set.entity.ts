import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LogUpload } from './log-upload.entity';

/**
 * An upload's distinct DNS question names (name-set.ts), written by the transaction that writes its hits when it was
 * parsed with DNS on, and deleted with the upload (cascade). No row: its questions are unknown (parsed with DNS off).
 * Chunked like log_upload_blob: rows of at most BLOB_CHUNK_BYTES of the compressed set.
 */
@Entity('upload_name_set')
export class UploadNameSet {
  @PrimaryColumn({ type: 'int' })
  uploadId: number;

  @PrimaryColumn({ type: 'int' })
  seq: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_upload_name_set_upload' })
  upload?: LogUpload;

  @Column({ type: 'int' })
  nameCount: number;

  @Column({ type: 'blob' })
  data: Buffer;
}
