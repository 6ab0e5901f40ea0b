import busboy from 'busboy';
import { Request, Response, Router } from 'express';
import { Readable } from 'node:stream';
import { databaseFailureOf } from '../common/errors/database-failure';
import { Outcome, UserErrorCode, UserErrorData } from '../common/errors/user-error';
import { idOfType, toGlobalId } from '../common/ids/global-id';
import { UploadTooLargeError } from '../common/upload/spool';
import { Role } from '../modules/account/account.enums';
import { Device } from '../modules/device/device.entity';
import { IntakeResult } from '../modules/log-upload/acceptance/intake';
import { UploadSource } from '../modules/log-upload/log-upload.enums';
import { bearerToken } from './context';
import { drainAfterAnswer, openMultipart } from './multipart';
import { requestLogOf } from './request-log';
import { Services } from './services';
import { UploadAttempt, uploadAccepted, uploadRefused } from './upload-telemetry';

const STATUS_OF: Partial<Record<UserErrorCode, number>> = {
  [UserErrorCode.NOT_FOUND]: 404,
  [UserErrorCode.UNSUPPORTED_FORMAT]: 415,
  [UserErrorCode.NOT_TEXT]: 415,
  [UserErrorCode.CHECKSUM_MISMATCH]: 422,
  [UserErrorCode.SIZE_MISMATCH]: 422,
};

class Refusal {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
  ) {}
}

const refuse = (status: number, code: string, message: string) => new Refusal(status, code, message);
const fromUserErrors = (errors: UserErrorData[]) => refuse(STATUS_OF[errors[0].code] ?? 400, errors[0].code, errors.map((e) => e.message).join(' '));

/**
 * The original product's automated upload: `curl -F upfile=@FILE -F upfile_size=N -F md5_client=HEX URL`
 * (tsupload.sh). The device is found by an UPLOADER key (Authorization header or `token` field: the key's
 * bound device, else a `device`/`nickname` field, else the key's devices with the client's address) or,
 * for devices that allow it, by the client's address alone. Answers JSON; refusals carry an HTTP status.
 */
export function legacyUploadRouter(services: Services): Router {
  const router = Router();
  const handler = async (req: Request, res: Response) => {
    const log = requestLogOf(res);
    // Filled in as the key and the device become known, so a refusal says as much as was learnt.
    const attempt: UploadAttempt = { via: 'form', requestId: log?.requestId ?? '', accountId: null, apiKeyId: null, device: null };
    try {
      const result = await receiveForm(services, req, attempt);
      const { upload, duplicate, device, warnings } = result;
      uploadAccepted(services, attempt, upload, duplicate, duplicate ? 200 : 201);
      res.status(duplicate ? 200 : 201).json({
        id: toGlobalId('LogUpload', upload.id),
        status: upload.status,
        duplicate,
        device: device.nickname,
        size: upload.size,
        md5: upload.md5,
        // As logUploadCreate's: what the file's first and last lines tell before the worker parses it.
        warnings,
      });
    } catch (caught) {
      // A full or unreachable database: 507/503 with Retry-After, and nothing was stored.
      const failure = databaseFailureOf(caught);
      const err = failure ? refuse(failure.status, failure.code, failure.message) : caught;
      if (!(err instanceof Refusal)) throw err;
      if (failure) {
        services.logger.error({ err: caught }, 'form upload failed on the database');
        res.setHeader('retry-after', String(failure.retryAfterSeconds));
      }
      uploadRefused(services, attempt, { code: err.code, reason: err.message, status: err.status });
      res.status(err.status).json({ error: err.message, code: err.code });
    } finally {
      if (log) Object.assign(log, { accountId: attempt.accountId, apiKeyId: attempt.apiKeyId });
    }
  };
  const drain = drainAfterAnswer(services.config.maxUploadBytes + services.config.maxRequestBytes);
  router.post('/logupload', drain, handler);
  router.post('/cgi-bin/logupload.pl', drain, handler);
  return router;
}

interface FormParts {
  fields: Record<string, string>;
  file: Promise<Outcome<IntakeResult> | UploadTooLargeError> | null;
  fileName: string;
  tooMany: boolean;
}

async function receiveForm(services: Services, req: Request, attempt: UploadAttempt) {
  if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')) {
    throw refuse(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send multipart/form-data with fields upfile, upfile_size and md5_client (curl -F).');
  }
  // A key in the header is checked before the body is read; a `token` field only after.
  const headerToken = bearerToken(req.headers.authorization);
  if (req.headers.authorization && !headerToken) throw refuse(401, 'UNAUTHENTICATED', 'The Authorization header must be "Bearer <key>".');
  const headerKey = headerToken ? await services.accounts.keyForSecret(headerToken) : null;
  if (headerToken && !headerKey) throw refuse(401, 'UNAUTHENTICATED', 'Unknown or revoked API key.');
  if (headerKey) Object.assign(attempt, { accountId: headerKey.accountId, apiKeyId: headerKey.id });

  const parts = await readParts(services, req);
  if (parts.tooMany) throw refuse(413, 'PAYLOAD_TOO_LARGE', 'One file per upload (field upfile).');
  const fieldToken = parts.fields.token?.trim() || null;
  const key = headerKey ?? (fieldToken ? await services.accounts.keyForSecret(fieldToken) : null);
  if (fieldToken && !key) throw refuse(401, 'UNAUTHENTICATED', 'Unknown or revoked API key.');
  if (key) Object.assign(attempt, { accountId: key.accountId, apiKeyId: key.id });
  if (key && key.role !== Role.UPLOADER && key.role !== Role.ADMIN) throw refuse(403, 'FORBIDDEN', "Your API key's role may not upload.");
  // A refused file ends the reading of the form, so a field after it (a device nickname) may be missing: with a
  // key, the file's refusal is the answer. Without one the uploader's address is the credential, checked first.
  const found = await identifyDevice(services, req, parts.fields, key).catch((err: unknown) => {
    if (key && err instanceof Refusal) return err;
    throw err;
  });
  if (!(found instanceof Refusal)) Object.assign(attempt, { accountId: found.accountId, device: found.id });
  const file = parts.file ? await parts.file : null;
  if (file instanceof UploadTooLargeError) throw refuse(413, 'PAYLOAD_TOO_LARGE', `The file is larger than the limit of ${file.limit} bytes; nothing was stored.`);
  if (file && !file.ok) throw fromUserErrors(file.errors);
  if (found instanceof Refusal) throw found;
  const device = found;
  if (!file) throw refuse(400, 'REQUIRED', 'The form has no file: send it as field "upfile".');
  const sizeField = parts.fields.upfile_size?.trim();
  if (sizeField && !/^\d+$/.test(sizeField)) throw refuse(400, 'INVALID', 'upfile_size must be a whole number of bytes.');
  const outcome = await services.logUploads.commit({
    accountId: device.accountId,
    device,
    apiKeyId: key?.id ?? null,
    source: UploadSource.FORM,
    fileName: parts.fileName,
    file: file.value,
    clientSize: sizeField ? Number(sizeField) : null,
    clientMd5: parts.fields.md5_client?.trim() || null,
  });
  if (!outcome.ok) throw fromUserErrors(outcome.errors);
  return { ...outcome.value, device };
}

/**
 * Reads the form's fields and streams its file into intake. A refused file (too large, binary, empty) ends
 * the reading at once: the refusal is the answer, and what the client still sends is dropped after it.
 */
function readParts(services: Services, req: Request): Promise<FormParts> {
  return new Promise((resolve, reject) => {
    const parts: FormParts = { fields: {}, file: null, fileName: 'upload.txt', tooMany: false };
    let done = false;
    let bb: busboy.Busboy | null = null;
    const finish = (err?: Refusal) => {
      if (done) return;
      done = true;
      if (bb) {
        req.unpipe(bb);
        bb.destroy();
      }
      if (err) reject(err);
      else resolve(parts);
    };
    bb = openMultipart(
      req,
      { files: 1, fields: 10, fieldSize: 4096, parts: 12, fileSize: services.config.maxUploadBytes + 1 },
      (err) => finish(refuse(err.status, 'INVALID', err.message)),
    );
    if (!bb) return;
    bb.on('file', (name: string, stream: Readable & { truncated?: boolean }, info: busboy.FileInfo) => {
      if (done || name !== 'upfile' || parts.file) {
        stream.resume();
        return;
      }
      parts.fileName = info.filename || 'upload.txt';
      parts.file = services.logUploads.receive(stream).then(
        (file) => {
          if (!file.ok) finish();
          return file;
        },
        (err) => {
          stream.resume();
          if (err instanceof UploadTooLargeError) {
            finish();
            return err;
          }
          throw err;
        },
      );
      // Awaited only once the form is read or the file refused; a broken form must not leave an unhandled rejection (a crash).
      parts.file.catch(() => undefined);
    });
    bb.on('field', (name: string, value: string) => {
      parts.fields[name] = value;
    });
    bb.on('filesLimit', () => {
      parts.tooMany = true;
    });
    bb.on('close', () => finish());
    // A client gone mid-body (dropped, or cut by REQUEST_TIMEOUT_MS): end the file stream too, or its intake waits forever.
    req.once('close', () => {
      if (!req.complete) finish(refuse(400, 'ABORTED', 'The upload was aborted.'));
    });
    req.pipe(bb);
  });
}

async function identifyDevice(services: Services, req: Request, fields: Record<string, string>, key: { accountId: number; deviceId: number | null } | null): Promise<Device> {
  const client = req.ip ?? '';
  if (key) {
    if (key.deviceId != null) {
      const bound = await services.devices.find(key.accountId, key.deviceId);
      if (bound) return bound;
    }
    const byId = fields.device?.trim();
    const byNick = fields.nickname?.trim();
    if (byId || byNick) {
      const r = await services.logUploads.resolveDevice(key.accountId, { deviceId: byId ? idOfType(byId, 'Device') : null, deviceIdGiven: !!byId, nickname: byNick || null });
      if (!r.ok) throw fromUserErrors(r.errors);
      return r.value;
    }
    const found = await services.devices.findByIp(key.accountId, client);
    if (found.length === 1) return found[0];
    throw refuse(400, 'REQUIRED', `Name the device: bind the key to it, or send a "device" (ID) or "nickname" field${found.length > 1 ? `; ${found.length} devices have the address ${client}` : ''}.`);
  }
  const candidates = await services.devices.findByIp(null, client, { identifiableOnly: true });
  if (candidates.length === 1) return candidates[0];
  if (candidates.length > 1) throw refuse(409, 'AMBIGUOUS', `Several devices allow identification by ${client}; send an UPLOADER API key instead.`);
  throw refuse(401, 'UNAUTHENTICATED', `Send an UPLOADER API key (Authorization: Bearer, or a "token" field); no device is identified by the address ${client}.`);
}
