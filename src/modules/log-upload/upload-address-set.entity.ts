import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LogUpload } from './log-upload.entity';

/**
 * An upload's distinct matchable external addresses (address-set.ts), written by the transaction that writes its
 * hits and deleted with the upload (cascade). Chunked like log_upload_blob: the IPv4 part (v4_count addresses,
 * 4 bytes each) then the IPv6 part (16 bytes each), split into rows of at most BLOB_CHUNK_BYTES.
 */
@Entity('upload_address_set')
export class UploadAddressSet {
  @PrimaryColumn({ type: 'int' })
  uploadId: number;

  @PrimaryColumn({ type: 'int' })
  seq: number;

  @ManyToOne(() => LogUpload, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'upload_id', foreignKeyConstraintName: 'FK_upload_address_set_upload' })
  upload?: LogUpload;

  @Column({ type: 'int' })
  v4Count: number;

  @Column({ type: 'blob' })
  data: Buffer;
}
