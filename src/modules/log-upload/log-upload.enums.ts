import { registerEnumType } from 'type-graphql';

/** Where an upload is in its life. */
export enum LogUploadStatus {
  QUEUED = 'QUEUED',
  PROCESSING = 'PROCESSING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}

/** Which door a file came in by. */
export enum UploadSource {
  GRAPHQL = 'GRAPHQL',
  FORM = 'FORM',
}

registerEnumType(LogUploadStatus, {
  name: 'LogUploadStatus',
  description: 'Where an upload is in its life.',
  valuesConfig: {
    QUEUED: { description: 'Stored durably and waiting for a worker.' },
    PROCESSING: { description: 'A worker holds its lease and is parsing and matching it (see progress).' },
    COMPLETED: { description: 'Parsed and matched; its counts and flow hits are final.' },
    FAILED: { description: 'Could not be processed; `error` says why. It can be reprocessed.' },
  },
});

registerEnumType(UploadSource, {
  name: 'UploadSource',
  description: 'How the file was uploaded.',
  valuesConfig: {
    GRAPHQL: { description: 'The `logUploadCreate` multipart mutation.' },
    FORM: { description: 'The legacy form post of the original tsupload.sh (`/logupload`).' },
  },
});

/** Why an accepted upload deserves a second look; the upload itself was stored. */
export enum UploadWarningCode {
  BEYOND_RETENTION = 'BEYOND_RETENTION',
}

registerEnumType(UploadWarningCode, {
  name: 'UploadWarningCode',
  description: 'Why an accepted upload deserves a second look: it was stored, but not everything in it will be kept.',
  valuesConfig: {
    BEYOND_RETENTION: {
      description:
        'Packets of the capture are older than RETENTION_DAYS: the flow hits found among them are deleted by the next retention purge (see `hitsPurged`).',
    },
  },
});
