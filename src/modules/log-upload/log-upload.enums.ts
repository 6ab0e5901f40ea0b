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
