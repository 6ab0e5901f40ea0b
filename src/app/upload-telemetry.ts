import type { Services } from './services';

/** Who sent an upload and how: the fields every upload line carries. */
export interface UploadAttempt {
  via: 'graphql' | 'form';
  requestId: string;
  accountId: number | null;
  apiKeyId: number | null;
  /** The device, once it is known (a refusal can come before). */
  device?: number | null;
}

/** An upload was stored (or matched an earlier one: `duplicate`): one log line and the upload counters. */
export function uploadAccepted(services: Services, attempt: UploadAttempt, upload: { id: number; size: number; deviceId: number }, duplicate: boolean, status: number): void {
  const { metrics, logger } = services;
  metrics.uploadsReceived.inc({ via: attempt.via });
  metrics.uploadsAccepted.inc({ via: attempt.via, duplicate: String(duplicate) });
  metrics.uploadBytes.inc({ via: attempt.via }, upload.size);
  const line = { event: duplicate ? 'upload.duplicate' : 'upload.accepted', ...attempt, device: upload.deviceId, uploadId: upload.id, bytes: upload.size, status };
  logger.info(line, duplicate ? 'upload duplicate' : 'upload accepted');
}

/** An upload was refused, nothing stored. `code` is the reason (a UserErrorCode, or the form route's code). */
export function uploadRefused(services: Services, attempt: UploadAttempt, refusal: { code: string; reason: string; status: number }): void {
  const { metrics, logger } = services;
  metrics.uploadsReceived.inc({ via: attempt.via });
  metrics.uploadsRefused.inc({ via: attempt.via, reason: refusal.code });
  logger.info({ event: 'upload.refused', ...attempt, device: attempt.device ?? null, ...refusal }, 'upload refused');
}

/** A refusal from userErrors: GraphQL answers them with HTTP 200. */
export function refusalOf(errors: ReadonlyArray<{ code: string; message: string }>, status = 200): { code: string; reason: string; status: number } {
  return { code: errors[0]?.code ?? 'UNKNOWN', reason: errors.map((e) => e.message).join(' '), status };
}
