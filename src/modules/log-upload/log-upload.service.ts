import { clip } from '../../common/text';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { DataSource, In } from 'typeorm';
import { databaseFailureOf } from '../../common/errors/database-failure';
import { API_KEY_REQUIRED } from '../../common/errors/graphql-errors';
import { isUniqueViolation } from '../../common/errors/db-errors';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { UploadTooLargeError } from '../../common/upload/spool';
import { Role } from '../account/account.enums';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { bulkInsert } from '../../db/bulk';
import { Device } from '../device/device.entity';
import { DeviceService } from '../device/device.service';
import { intake, IntakeResult, UploadRefusedError } from './acceptance/intake';
import { refusal, UploadRefusal, UploadRefusalCode } from './acceptance/refusal';
import { BLOB_CHUNK_BYTES } from './log-upload-blob.entity';
import { LogUpload } from './log-upload.entity';
import { LogUploadStatus, UploadSource } from './log-upload.enums';
import { acceptanceWarnings, UploadWarningData } from './retention-warning';
import { silentTelemetry, UploadAttempt, UploadTelemetry } from './upload-telemetry';

export interface DeviceSelector {
  deviceId?: number | null;
  /** True when an ID was given that did not decode (it then matches nothing, like a missing one). */
  deviceIdGiven?: boolean;
  nickname?: string | null;
  ip?: string | null;
}

/** The API key an upload came with, as the entrance found it (GraphQL: the caller; the form: header or field). */
export interface UploadKey {
  id: number;
  accountId: number;
  role: Role;
  /** The device the key is bound to: it names the device when the request names none. */
  deviceId: number | null;
}

/** The file of an upload: a stream still to read, or (the form post) one whose reading began as the form arrived. */
export type UploadFile = { name: string; stream: Readable & { truncated?: boolean } } | { name: string; receiving: Promise<Checked<IntakeResult>> };

/** What an entrance hands to LogUploadService.submit: everything it read from its request, nothing decided. */
export interface UploadRequest {
  via: 'graphql' | 'form';
  requestId: string;
  /** Null when the request carried no key. */
  key: UploadKey | null;
  /** The device as the request names it (none of it given: the key's device, or the uploader's address). */
  device: DeviceSelector;
  /**
   * The uploader's address, from the form post only (tsupload.sh): without a key it identifies a device that
   * allows it; with one, the key's account's device that has it.
   */
  uploaderAddress: string | null;
  /** Null when the request has no file. */
  file: UploadFile | null;
  clientMd5?: string | null;
  clientSize?: number | null;
  /** The HTTP status the entrance answers each outcome with, for the log line (its exhaustive map). */
  statusOf: { refused: Readonly<Record<UploadRefusalCode, number>>; accepted(duplicate: boolean): number };
}

/** An answer or the refusal that is the answer instead. */
export type Checked<T> = { ok: true; value: T } | { ok: false; refusal: UploadRefusal };

const refused = <T>(r: UploadRefusal): Checked<T> => ({ ok: false, refusal: r });
const fromUserErrors = <T>(errors: { code: UserErrorCode; field: string[] | null; message: string }[]): Checked<T> =>
  refused({ code: errors[0].code as UploadRefusalCode, field: errors[0].field, message: errors.map((e) => e.message).join(' ') });

export type CommitRequest = {
  accountId: number;
  device: Device;
  apiKeyId: number | null;
  source: UploadSource;
  fileName: string;
  file: IntakeResult;
  clientMd5?: string | null;
  clientSize?: number | null;
};

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
    private readonly telemetry: UploadTelemetry = silentTelemetry,
  ) {}

  /**
   * The one entrance of an upload, whichever route it came by (GraphQL mutation, legacy form post): finds the
   * device, reads and checks the file, stores it with its job, and reports the outcome (log line, counters).
   * Every expected failure is a refusal with an UploadRefusalCode; the routes only translate it. A database
   * failure is reported as a refusal too, then thrown for the route to answer (503/507).
   */
  async submit(req: UploadRequest): Promise<Checked<Accepted & { device: Device }>> {
    const attempt: UploadAttempt = {
      via: req.via,
      requestId: req.requestId,
      accountId: req.key?.accountId ?? null,
      apiKeyId: req.key?.id ?? null,
      device: null,
    };
    const refuse = (r: UploadRefusal) => {
      this.telemetry.refused(attempt, { code: r.code, reason: r.message, status: req.statusOf.refused[r.code] });
      return refused<Accepted & { device: Device }>(r);
    };
    try {
      const outcome = await this.submitChecked(req, attempt);
      if (!outcome.ok) return refuse(outcome.refusal);
      const { upload, duplicate } = outcome.value;
      this.telemetry.accepted(attempt, upload, duplicate, req.statusOf.accepted(duplicate));
      return outcome;
    } catch (err) {
      const failed = databaseFailureOf(err);
      if (failed) refuse(refusal(failed.code as UploadRefusalCode, null, failed.message));
      throw err;
    }
  }

  private async submitChecked(req: UploadRequest, attempt: UploadAttempt): Promise<Checked<Accepted & { device: Device }>> {
    const stream = req.file && 'stream' in req.file ? req.file.stream : null;
    // A stream not read yet is drained on a refusal, so the request ends and its connection stays usable.
    const discard = <T>(r: Checked<T>): Checked<T> => {
      if (!r.ok) stream?.resume();
      return r;
    };
    if (req.key && req.key.role !== Role.UPLOADER && req.key.role !== Role.ADMIN) {
      return discard(refused(refusal('FORBIDDEN', null, "Your API key's role may not upload.")));
    }
    const claims = checkClientClaims(req.clientMd5, req.clientSize);
    if (!claims.ok) return discard(fromUserErrors(claims.errors));
    const found = await this.identifyDevice(req);
    if (found.ok) Object.assign(attempt, { accountId: found.value.accountId, device: found.value.id });
    if (!req.file) return found.ok ? refused(refusal(UserErrorCode.REQUIRED, ['input', 'file'], 'The form has no file: send it as field "upfile".')) : found;
    let file: Checked<IntakeResult>;
    if ('stream' in req.file) {
      // Named first, read after: an unknown device costs no reading.
      if (!found.ok) return discard(found);
      file = await this.receive(req.file.stream);
    } else {
      // The form's file was being read while its fields arrived. A refused file ends the reading of the form, so
      // a field after it (a nickname) may be missing: with a key, the file's refusal is the answer. Without one
      // the uploader's address is the credential, and its refusal comes first.
      file = await req.file.receiving;
      if (!found.ok && !req.key) return found;
    }
    if (!file.ok) return file;
    if (!found.ok) return found;
    const committed = await this.commit({
      accountId: found.value.accountId,
      device: found.value,
      apiKeyId: req.key?.id ?? null,
      source: req.via === 'graphql' ? UploadSource.GRAPHQL : UploadSource.FORM,
      fileName: req.file.name,
      file: file.value,
      clientMd5: req.clientMd5,
      clientSize: req.clientSize,
    });
    return committed.ok ? { ok: true, value: { ...committed.value, device: found.value } } : fromUserErrors(committed.errors);
  }

  /**
   * The upload's device: named by the request (ID, nickname or address), else the key's bound device, else the
   * key's account's one device with the uploader's address. Without a key: the one device that allows
   * identification by the uploader's address.
   */
  private async identifyDevice(req: UploadRequest): Promise<Checked<Device>> {
    const { key, device: by, uploaderAddress: client } = req;
    if (!key) {
      const candidates = client ? await this.devices.findByIp(null, client, { identifiableOnly: true }) : [];
      if (candidates.length === 1) return { ok: true, value: candidates[0] };
      if (candidates.length > 1)
        return refused(refusal('AMBIGUOUS', null, `Several devices allow identification by ${client}; send an UPLOADER API key instead.`));
      // GraphQL refuses a request without a key before any resolver (API_KEY_REQUIRED); the form says more.
      return refused(
        refusal('UNAUTHENTICATED', null, `${API_KEY_REQUIRED} A form post may send it as a "token" field; no device is identified by the address ${client}.`),
      );
    }
    const named = by.deviceIdGiven || by.deviceId != null || !!by.nickname || !!by.ip;
    if (!named && key.deviceId != null) {
      const bound = await this.devices.find(key.accountId, key.deviceId);
      if (bound) return { ok: true, value: bound };
    }
    if (!named && client) {
      const found = await this.devices.findByIp(key.accountId, client);
      if (found.length === 1) return { ok: true, value: found[0] };
      return refused(
        refusal(
          UserErrorCode.REQUIRED,
          ['input', 'device'],
          `Name the device: bind the key to it, or send a "device" (ID) or "nickname" field${found.length > 1 ? `; ${found.length} devices have the address ${client}` : ''}.`,
        ),
      );
    }
    const r = await this.resolveDevice(key.accountId, by);
    return r.ok ? r : fromUserErrors(r.errors);
  }

  /** Picks the device of an upload by ID, nickname or IP: exactly one of them. */
  async resolveDevice(accountId: number, by: DeviceSelector): Promise<Outcome<Device>> {
    const given = [by.deviceIdGiven || by.deviceId != null, !!by.nickname, !!by.ip].filter(Boolean).length;
    if (given !== 1)
      return failure(userError(UserErrorCode.INVALID, ['input', 'device'], 'Name the device by exactly one of device, deviceNickname or deviceIp.'));
    if (by.deviceIdGiven || by.deviceId != null) {
      const d = await this.devices.find(accountId, by.deviceId ?? null);
      return d ? success(d) : failure(userError(UserErrorCode.NOT_FOUND, ['input', 'device'], 'No device with this ID.'));
    }
    if (by.nickname) {
      const d = await this.devices.findByNickname(accountId, by.nickname);
      return d ? success(d) : failure(userError(UserErrorCode.NOT_FOUND, ['input', 'deviceNickname'], `No device nicknamed "${by.nickname.slice(0, 64)}".`));
    }
    const found = await this.devices.findByIp(accountId, by.ip as string);
    if (found.length === 0)
      return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'deviceIp'], `No device has the address ${String(by.ip).slice(0, 45)}.`));
    if (found.length > 1) {
      return failure(
        userError(
          UserErrorCode.INVALID,
          ['input', 'deviceIp'],
          `${found.length} devices have this address (${found.map((d) => d.nickname).join(', ')}); name the device by ID or nickname.`,
        ),
      );
    }
    return success(found[0]);
  }

  /**
   * Reads an upload stream, refusing binary captures, non-text and empty files, and anything over the size
   * limit (PAYLOAD_TOO_LARGE; the stream is drained). Nothing is stored yet.
   */
  async receive(stream: Readable & { truncated?: boolean }): Promise<Checked<IntakeResult>> {
    try {
      return { ok: true, value: await intake(stream, this.maxUploadBytes) };
    } catch (err) {
      if (err instanceof UploadRefusedError) return refused(refusal(UserErrorCode[err.code], ['input', 'file'], err.message));
      if (err instanceof UploadTooLargeError) {
        stream.resume();
        return refused(refusal('PAYLOAD_TOO_LARGE', ['input', 'file'], `The file is larger than the limit of ${err.limit} bytes; nothing was stored.`));
      }
      throw err;
    }
  }

  /**
   * Checks the client's size and MD5 against what arrived, answers a repeat with the earlier upload, and
   * otherwise stores the upload row (QUEUED: it is the job) and its bytes in one transaction.
   */
  async commit(req: CommitRequest): Promise<Outcome<Accepted>> {
    const { file } = req;
    const claims = checkClientClaims(req.clientMd5, req.clientSize);
    if (!claims.ok) return claims;
    const md5 = req.clientMd5?.trim().toLowerCase() || null;
    if (req.clientSize != null && req.clientSize !== file.size) {
      return failure(
        userError(UserErrorCode.SIZE_MISMATCH, ['input', 'size'], `The client said ${req.clientSize} bytes but ${file.size} arrived; nothing was stored.`),
      );
    }
    if (md5 != null && md5 !== file.md5) {
      return failure(
        userError(
          UserErrorCode.CHECKSUM_MISMATCH,
          ['input', 'md5'],
          `The client's MD5 ${md5} does not match the MD5 of what arrived (${file.md5}); nothing was stored.`,
        ),
      );
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
            fileName: clip(req.fileName || 'upload.txt', 255),
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
      return failure(
        userError(UserErrorCode.INVALID_STATE, ['input', 'id'], `The upload is ${upload.status.toLowerCase()} already; reprocess it once it has finished.`),
      );
    }
    const result = await repo.update(
      { id: upload.id, status: In([LogUploadStatus.COMPLETED, LogUploadStatus.FAILED]) },
      {
        status: LogUploadStatus.QUEUED,
        error: null,
        attempts: 0,
        leaseOwner: null,
        leaseExpiresAt: null,
        finishedAt: null,
        progressBytes: 0,
        progressLines: 0,
      },
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
    return failure(userError(UserErrorCode.INVALID, ['input', 'size'], "The file's size (size, or the form's upfile_size) must be a whole number of bytes."));
  }
  return success(true);
}
