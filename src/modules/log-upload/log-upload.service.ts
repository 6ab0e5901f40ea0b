import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { DataSource, In } from 'typeorm';
import { isUniqueViolation } from '../../common/errors/db-errors';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { bulkInsert } from '../../db/bulk';
import { Device } from '../device/device.entity';
import { DeviceService } from '../device/device.service';
import { intake, IntakeResult, UploadRefusedError } from './acceptance/intake';
import { BLOB_CHUNK_BYTES } from './log-upload-blob.entity';
import { LogUpload } from './log-upload.entity';
import { LogUploadStatus, UploadSource } from './log-upload.enums';
import { acceptanceWarnings, UploadWarningData } from './retention-warning';

export interface DeviceSelector {
  deviceId?: number | null;
  /** True when an ID was given that did not decode (it then matches nothing, like a missing one). */
  deviceIdGiven?: boolean;
  nickname?: string | null;
  ip?: string | null;
}

export interface AcceptRequest {
  accountId: number;
  device: Device;
  apiKeyId: number | null;
  source: UploadSource;
  fileName: string;
  stream: Readable & { truncated?: boolean };
  clientMd5?: string | null;
  clientSize?: number | null;
}

export interface Accepted {
  upload: LogUpload;
  /** The same file (same device, same MD5) was already uploaded: this is that upload, not a new one. */
  duplicate: boolean;
  /** What the file's sampled lines tell already (e.g. older than retention); the worker adds exact counts. */
  warnings: UploadWarningData[];
}

export interface LogUploadFilterData {
  deviceIds?: (number | null)[] | null;
  statuses?: LogUploadStatus[] | null;
  receivedFrom?: Date | null;
  receivedTo?: Date | null;
  /** Only uploads made with this key (UPLOADER callers). */
  apiKeyId?: number | null;
}

/**
 * Accepts uploads: validated while streaming, then the upload row (QUEUED: it is the job) and its
 * compressed bytes are committed in one transaction before the caller acknowledges. Emits `queued`.
 */
export class LogUploadService {
  readonly events = new EventEmitter();

  constructor(
    private readonly dataSource: DataSource,
    private readonly devices: DeviceService,
    private readonly maxUploadBytes: number,
    /** RETENTION_DAYS: an upload older than it is accepted with a warning. */
    private readonly retentionDays = 0,
  ) {}

  /** Picks the device of an upload by ID, nickname or IP: exactly one of them. */
  async resolveDevice(accountId: number, by: DeviceSelector): Promise<Outcome<Device>> {
    const given = [by.deviceIdGiven || by.deviceId != null, !!by.nickname, !!by.ip].filter(Boolean).length;
    if (given !== 1) return failure(userError(UserErrorCode.INVALID, ['input', 'device'], 'Name the device by exactly one of device, deviceNickname or deviceIp.'));
    if (by.deviceIdGiven || by.deviceId != null) {
      const d = await this.devices.find(accountId, by.deviceId ?? null);
      return d ? success(d) : failure(userError(UserErrorCode.NOT_FOUND, ['input', 'device'], 'No device with this ID.'));
    }
    if (by.nickname) {
      const d = await this.devices.findByNickname(accountId, by.nickname);
      return d ? success(d) : failure(userError(UserErrorCode.NOT_FOUND, ['input', 'deviceNickname'], `No device nicknamed "${by.nickname.slice(0, 64)}".`));
    }
    const found = await this.devices.findByIp(accountId, by.ip as string);
    if (found.length === 0) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'deviceIp'], `No device has the address ${String(by.ip).slice(0, 45)}.`));
    if (found.length > 1) {
      return failure(
        userError(UserErrorCode.INVALID, ['input', 'deviceIp'], `${found.length} devices have this address (${found.map((d) => d.nickname).join(', ')}); name the device by ID or nickname.`),
      );
    }
    return success(found[0]);
  }

  /** Reads, validates and stores an upload in one go (the GraphQL path: the device is known first). */
  async accept(req: AcceptRequest): Promise<Outcome<Accepted>> {
    const claims = checkClientClaims(req.clientMd5, req.clientSize);
    if (!claims.ok) {
      req.stream.resume();
      return claims;
    }
    const file = await this.receive(req.stream);
    if (!file.ok) return file;
    return this.commit({ ...req, file: file.value });
  }

  /**
   * Reads an upload stream, refusing binary captures, non-text and empty files as user errors.
   * Over the size limit it throws UploadTooLargeError (HTTP 413). Nothing is stored yet.
   */
  async receive(stream: Readable & { truncated?: boolean }): Promise<Outcome<IntakeResult>> {
    try {
      return success(await intake(stream, this.maxUploadBytes));
    } catch (err) {
      if (err instanceof UploadRefusedError) return failure(userError(UserErrorCode[err.code], ['input', 'file'], err.message));
      throw err;
    }
  }

  /**
   * Checks the client's size and MD5 against what arrived, answers a repeat with the earlier upload, and
   * otherwise stores the upload row (QUEUED: it is the job) and its bytes in one transaction.
   */
  async commit(req: Omit<AcceptRequest, 'stream'> & { file: IntakeResult }): Promise<Outcome<Accepted>> {
    const { file } = req;
    const claims = checkClientClaims(req.clientMd5, req.clientSize);
    if (!claims.ok) return claims;
    const md5 = req.clientMd5?.trim().toLowerCase() || null;
    if (req.clientSize != null && req.clientSize !== file.size) {
      return failure(userError(UserErrorCode.SIZE_MISMATCH, ['input', 'size'], `The client said ${req.clientSize} bytes but ${file.size} arrived; nothing was stored.`));
    }
    if (md5 != null && md5 !== file.md5) {
      return failure(userError(UserErrorCode.CHECKSUM_MISMATCH, ['input', 'md5'], `The client's MD5 ${md5} does not match the MD5 of what arrived (${file.md5}); nothing was stored.`));
    }
    const warnings = acceptanceWarnings(file.sample, this.retentionDays, Date.now());
    const existing = await this.findDuplicate(req.device.id, file.md5);
    if (existing) return success({ upload: existing, duplicate: true, warnings });
    const repo = this.dataSource.getRepository(LogUpload);
    let upload: LogUpload;
    try {
      upload = await this.dataSource.transaction(async (em) => {
        const row = await em.getRepository(LogUpload).save(
          repo.create({
            accountId: req.accountId,
            deviceId: req.device.id,
            source: req.source,
            apiKeyId: req.apiKeyId,
            fileName: (req.fileName || 'upload.txt').slice(0, 255),
            size: file.size,
            textBytes: file.textBytes,
            storedBytes: file.stored.length,
            storedEncoding: file.storedEncoding,
            md5: file.md5,
            status: LogUploadStatus.QUEUED,
            error: null,
            attempts: 0,
            leaseOwner: null,
            leaseExpiresAt: null,
            receivedAt: new Date(),
            startedAt: null,
            finishedAt: null,
            progressBytes: 0,
            progressLines: 0,
            policyId: null,
            skipped: null,
            firstCaptureAt: null,
            lastCaptureAt: null,
            hitsPurged: 0,
            warnings: null,
          }),
        );
        const chunks: unknown[][] = [];
        for (let off = 0, seq = 0; off < file.stored.length; off += BLOB_CHUNK_BYTES, seq++) {
          chunks.push([row.id, seq, file.stored.subarray(off, off + BLOB_CHUNK_BYTES)]);
        }
        await bulkInsert(em, 'log_upload_blob', ['upload_id', 'seq', 'data'], chunks);
        return row;
      });
    } catch (err) {
      // The same file from the same device raced in on another request: answer with that one.
      if (isUniqueViolation(err)) {
        const raced = await this.findDuplicate(req.device.id, file.md5);
        if (raced) return success({ upload: raced, duplicate: true, warnings });
      }
      throw err;
    }
    this.events.emit('queued', upload.id);
    return success({ upload, duplicate: false, warnings });
  }

  async find(accountId: number, id: number | null): Promise<LogUpload | null> {
    if (id == null) return null;
    return this.dataSource.getRepository(LogUpload).findOneBy({ id, accountId });
  }

  async findMany(accountId: number, ids: readonly number[]): Promise<(LogUpload | null)[]> {
    const rows = ids.length ? await this.dataSource.getRepository(LogUpload).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** Newest first. */
  async list(accountId: number, filter: LogUploadFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<LogUpload>> {
    const qb = this.dataSource.getRepository(LogUpload).createQueryBuilder('u').where('u.accountId = :accountId', { accountId });
    if (filter?.deviceIds) {
      const ids = filter.deviceIds.filter((id): id is number => id != null);
      qb.andWhere(ids.length ? 'u.deviceId IN (:...deviceIds)' : '1 = 0', { deviceIds: ids });
    }
    if (filter?.apiKeyId != null) qb.andWhere('u.apiKeyId = :apiKeyId', { apiKeyId: filter.apiKeyId });
    if (filter?.statuses?.length) qb.andWhere('u.status IN (:...statuses)', { statuses: filter.statuses });
    if (filter?.receivedFrom) qb.andWhere('u.receivedAt >= :from', { from: filter.receivedFrom.getTime() });
    if (filter?.receivedTo) qb.andWhere('u.receivedAt < :to', { to: filter.receivedTo.getTime() });
    return keysetPaginate(
      qb,
      'upload',
      [
        { expression: 'u.receivedAt', direction: 'DESC', value: (u) => u.receivedAt.getTime() },
        { expression: 'u.id', direction: 'DESC', value: (u) => u.id },
      ],
      page,
    );
  }

  /** Queues an upload again, to be matched against the device's current policy; its old results are replaced. */
  async reprocess(accountId: number, id: number | null): Promise<Outcome<LogUpload>> {
    const repo = this.dataSource.getRepository(LogUpload);
    const upload = await this.find(accountId, id);
    if (!upload) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No upload with this ID.'));
    if (upload.status === LogUploadStatus.QUEUED || upload.status === LogUploadStatus.PROCESSING) {
      return failure(userError(UserErrorCode.INVALID_STATE, ['input', 'id'], `The upload is ${upload.status.toLowerCase()} already; reprocess it once it has finished.`));
    }
    const result = await repo.update(
      { id: upload.id, status: In([LogUploadStatus.COMPLETED, LogUploadStatus.FAILED]) },
      { status: LogUploadStatus.QUEUED, error: null, attempts: 0, leaseOwner: null, leaseExpiresAt: null, finishedAt: null, progressBytes: 0, progressLines: 0 },
    );
    if (!result.affected) return failure(userError(UserErrorCode.INVALID_STATE, ['input', 'id'], 'The upload changed state meanwhile; try again.'));
    this.events.emit('queued', upload.id);
    return success((await this.find(accountId, upload.id)) as LogUpload);
  }

  private findDuplicate(deviceId: number, md5: string): Promise<LogUpload | null> {
    return this.dataSource.getRepository(LogUpload).findOneBy({ deviceId, md5 });
  }
}

/** The client's md5 and size, when given, must at least be well-formed. */
function checkClientClaims(md5: string | null | undefined, size: number | null | undefined): Outcome<true> {
  if (md5 != null && md5.trim() !== '' && !/^[0-9a-fA-F]{32}$/.test(md5.trim())) {
    return failure(userError(UserErrorCode.INVALID, ['input', 'md5'], 'md5 must be 32 hexadecimal digits.'));
  }
  if (size != null && (!Number.isSafeInteger(size) || size < 0)) {
    return failure(userError(UserErrorCode.INVALID, ['input', 'size'], 'size must be a whole number of bytes.'));
  }
  return success(true);
}
