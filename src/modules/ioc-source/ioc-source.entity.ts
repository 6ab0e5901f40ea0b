import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { bigintNumber, TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { IocList } from '../ioc/ioc-list.entity';
import { IocSourceFetchOutcome, IocSourceFormat, IocSourceStatus } from './ioc-source.enums';

/** A feed the server fetches on a schedule into one list (REPLACE, kept entries keep their IDs). */
@Entity('ioc_source')
@Index('IDX_ioc_source_account', ['accountId', 'id'])
@Index('IDX_ioc_source_due', ['nextFetchAt'])
@ObjectType({ implements: Node, description: 'A threat-intel source: a feed URL fetched on a schedule into one IOC list.' })
export class IocSource {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @Column({ type: 'int' })
  listId: number;

  @ManyToOne(() => IocList, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'list_id', foreignKeyConstraintName: 'FK_ioc_source_list' })
  list?: IocList;

  @Column({ type: 'varchar', length: 2000 })
  @Field({ description: 'The feed URL (http or https).' })
  url: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => IocSourceFormat, { description: 'How the body is parsed.' })
  format: IocSourceFormat;

  @Column({ type: 'int' })
  @Field(() => Int, { description: 'Seconds between two scheduled fetches.' })
  everySeconds: number;

  /** JSON array of header names (shown). */
  @Column({ type: 'text' })
  headerNames: string;

  /** Header names to values, secrets (API keys) sent with each request, never returned nor logged: JSON, or sealed under IOC_SOURCE_SECRETS_KEY (header-secrets.ts). */
  @Column({ type: 'text' })
  headerValues: string;

  @Column({ type: 'varchar', length: 500, nullable: true })
  etag: string | null;

  @Column({ type: 'varchar', length: 100, nullable: true })
  lastModified: string | null;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => IocSourceStatus, { description: 'State after the last fetch.' })
  status: IocSourceStatus;

  @Column({ type: 'varchar', length: 1000, nullable: true })
  @Field(() => String, { nullable: true, description: 'Why the source is FAILING or HELD; null otherwise.' })
  statusReason: string | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When the last fetch finished; null before the first.' })
  lastFetchedAt: Date | null;

  @TimestampColumn()
  @Field({ description: 'When the next scheduled fetch is due.' })
  nextFetchAt: Date;

  /** Epoch ms until which `leaseOwner` fetches the source; others leave it alone. */
  @Column({ type: 'bigint', nullable: true, transformer: bigintNumber })
  leaseUntil: number | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  leaseOwner: string | null;

  @TimestampColumn()
  @Field({ description: 'When the source was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When the source was last changed or fetched.' })
  updatedAt: Date;
}

/** The summary one fetch left (newest first in `IocSource.fetches`). */
@Entity('ioc_source_fetch')
@Index('IDX_ioc_source_fetch_source', ['sourceId', 'id'])
@ObjectType({ description: 'What one fetch of a source did.' })
export class IocSourceFetch {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  sourceId: number;

  @ManyToOne(() => IocSource, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'source_id', foreignKeyConstraintName: 'FK_ioc_source_fetch_source' })
  source?: IocSource;

  @TimestampColumn()
  @Field({ description: 'When the fetch started.' })
  startedAt: Date;

  @TimestampColumn()
  @Field({ description: 'When it finished.' })
  finishedAt: Date;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => IocSourceFetchOutcome, { description: 'What it did.' })
  outcome: IocSourceFetchOutcome;

  @Column({ type: 'int', nullable: true })
  @Field(() => Int, { nullable: true, description: 'HTTP status of the final answer; null when none came (timeout, refused destination).' })
  httpStatus: number | null;

  @Column({ type: 'bigint', default: 0, transformer: bigintNumber })
  @Field(() => SafeInt, { description: 'Body bytes received (before decompression).' })
  bytes: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Entries added to the list.' })
  added: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Entries removed because the feed no longer has them.' })
  removed: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Entries the feed kept (same entry, same ID).' })
  unchanged: number;

  @Column({ type: 'int', default: 0 })
  @Field(() => Int, { description: 'Lines or records not imported (see skippedLines).' })
  skipped: number;

  /** JSON array of the first skipped lines: { lineNumber, text, code, reason }. */
  @Column({ type: 'text', nullable: true })
  skippedLines: string | null;

  @Column({ type: 'varchar', length: 1000, nullable: true })
  @Field(() => String, { nullable: true, description: 'Why the fetch failed or was held; null otherwise.' })
  error: string | null;
}
