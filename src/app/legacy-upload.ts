import busboy from 'busboy';
import { Request, Response, Router } from 'express';
import { Readable } from 'node:stream';
import { DATABASE_FAILURES, databaseFailureOf } from '../common/errors/database-failure';
import { UserErrorCode } from '../common/errors/user-error';
import { idOfType, toGlobalId } from '../common/ids/global-id';
import { IntakeResult } from '../modules/log-upload/acceptance/intake';
import { UploadRefusalCode } from '../modules/log-upload/acceptance/refusal';
import { Checked } from '../modules/log-upload/log-upload.service';
import { UploadAttempt } from '../modules/log-upload/upload-telemetry';
import { bearerToken } from './context';
import { drainAfterAnswer, openMultipart } from './multipart';
import { requestLogOf } from './request-log';
import { Services } from './services';

/**
 * The HTTP status of each refusal of the service (LogUploadService.submit). Exhaustive: a new UploadRefusalCode
 * fails to compile until it is mapped here.
 */
const STATUS_OF: Record<UploadRefusalCode, number> = {
  [UserErrorCode.INVALID]: 400,
  [UserErrorCode.REQUIRED]: 400,
  [UserErrorCode.NOT_FOUND]: 404,
  [UserErrorCode.UNSUPPORTED_FORMAT]: 415,
  [UserErrorCode.NOT_TEXT]: 415,
  [UserErrorCode.EMPTY]: 400,
  [UserErrorCode.CHECKSUM_MISMATCH]: 422,
  [UserErrorCode.SIZE_MISMATCH]: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  AMBIGUOUS: 409,
  INSUFFICIENT_STORAGE: DATABASE_FAILURES.STORAGE_FULL.status,
  SERVICE_UNAVAILABLE: DATABASE_FAILURES.UNAVAILABLE.status,
};

/** A form this route could not read (not multipart, malformed, a bad key): answered before the service is asked. */
class Refusal {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
  ) {}
}

const refuse = (status: number, code: string, message: string) => new Refusal(status, code, message);

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
    // Filled in as the key becomes known, so a refusal of the form itself says as much as was learnt.
    const attempt: UploadAttempt = { via: 'form', requestId: log?.requestId ?? '', accountId: null, apiKeyId: null, device: null };
    try {
      const outcome = await submitForm(services, req, attempt);
      if (log) Object.assign(log, { accountId: outcome.ok ? outcome.value.device.accountId : attempt.accountId, apiKeyId: attempt.apiKeyId });
      if (!outcome.ok) {
        res.status(STATUS_OF[outcome.refusal.code]).json({ error: outcome.refusal.message, code: outcome.refusal.code });
        return;
      }
      const { upload, duplicate, device, warnings } = outcome.value;
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
      if (log) Object.assign(log, { accountId: attempt.accountId, apiKeyId: attempt.apiKeyId });
      // A full or unreachable database: 507/503 with Retry-After, and nothing was stored (the service logged it).
      const failure = databaseFailureOf(caught);
      if (failure) {
        services.logger.error({ err: caught }, 'form upload failed on the database');
        res.setHeader('retry-after', String(failure.retryAfterSeconds));
        res.status(failure.status).json({ error: failure.message, code: failure.code });
        return;
      }
      if (!(caught instanceof Refusal)) throw caught;
      services.uploadTelemetry.refused(attempt, { code: caught.code, reason: caught.message, status: caught.status });
      res.status(caught.status).json({ error: caught.message, code: caught.code });
    }
  };
  const drain = drainAfterAnswer(services.config.maxUploadBytes + services.config.maxRequestBytes);
  router.post('/logupload', drain, handler);
  router.post('/cgi-bin/logupload.pl', drain, handler);
  return router;
}

interface FormParts {
  fields: Record<string, string>;
  file: Promise<Checked<IntakeResult>> | null;
  fileName: string;
  tooMany: boolean;
}

/** Reads the form (key, fields, the file as it streams in) and hands it to the one upload service method. */
async function submitForm(services: Services, req: Request, attempt: UploadAttempt) {
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
  const byId = parts.fields.device?.trim();
  const sizeField = parts.fields.upfile_size?.trim();
  return services.logUploads.submit({
    via: 'form',
    requestId: attempt.requestId,
    key: key ? { id: key.id, accountId: key.accountId, role: key.role, deviceId: key.deviceId } : null,
    device: { deviceId: byId ? idOfType(byId, 'Device') : null, deviceIdGiven: !!byId, nickname: parts.fields.nickname?.trim() || null },
    uploaderAddress: req.ip ?? '',
    file: parts.file ? { name: parts.fileName, receiving: parts.file } : null,
    // Not a whole number: NaN, which the service refuses as it refuses a bad `size`.
    clientSize: sizeField ? (/^\d+$/.test(sizeField) ? Number(sizeField) : Number.NaN) : null,
    clientMd5: parts.fields.md5_client?.trim() || null,
    statusOf: { refused: STATUS_OF, accepted: (duplicate) => (duplicate ? 200 : 201) },
  });
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
    bb = openMultipart(req, { files: 1, fields: 10, fieldSize: 4096, parts: 12, fileSize: services.config.maxUploadBytes + 1 }, (err) =>
      finish(refuse(err.status, 'INVALID', err.message)),
    );
    if (!bb) return;
    bb.on('file', (name: string, stream: Readable & { truncated?: boolean }, info: busboy.FileInfo) => {
      if (done || name !== 'upfile' || parts.file) {
        stream.resume();
        return;
      }
      parts.fileName = info.filename || 'upload.txt';
      const file = services.logUploads.receive(stream).then(
        (received) => {
          if (!received.ok) finish();
          return received;
        },
        (err) => {
          stream.resume();
          throw err;
        },
      );
      parts.file = file;
      // Awaited only once the form is read or the file refused; a broken form must not leave an unhandled rejection (a crash).
      file.catch(() => undefined);
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
