import type { UploadTelemetry } from '../modules/log-upload/upload-telemetry';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/** The server's telemetry: the uploads_* counters and the upload.accepted/duplicate/refused log lines. */
export function uploadTelemetry(metrics: Metrics, logger: Logger): UploadTelemetry {
  return {
    accepted(attempt, upload, duplicate, status) {
      metrics.uploadsReceived.inc({ via: attempt.via });
      metrics.uploadsAccepted.inc({ via: attempt.via, duplicate: String(duplicate) });
      metrics.uploadBytes.inc({ via: attempt.via }, upload.size);
      const line = {
        event: duplicate ? 'upload.duplicate' : 'upload.accepted',
        ...attempt,
        device: upload.deviceId,
        uploadId: upload.id,
        bytes: upload.size,
        status,
      };
      logger.info(line, duplicate ? 'upload duplicate' : 'upload accepted');
    },
    refused(attempt, refusal) {
      metrics.uploadsReceived.inc({ via: attempt.via });
      metrics.uploadsRefused.inc({ via: attempt.via, reason: refusal.code });
      logger.info({ event: 'upload.refused', ...attempt, ...refusal }, 'upload refused');
    },
  };
}
