import { registerEnumType } from 'type-graphql';
import { SkipReason } from './parsing/parse-stats';

export { SkipReason };

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

// The parser's own set (parsing/ stays free of GraphQL): registered here, so a reason added there fails the
// schema's description test until it is described.
registerEnumType(SkipReason, {
  name: 'SkipReason',
  description: 'Why a line of an upload produced no packet. Every line is either a packet or counted under one of these.',
  valuesConfig: {
    NOT_PACKET: { description: 'Not a packet line: empty, a continuation line (indented), or hex/ASCII dump output (`-x`, `-X`).' },
    NO_TIMESTAMP: {
      description:
        'Does not start with the epoch timestamp of `tcpdump -tt` (e.g. the time of day printed without `-tt`, `[Error converting time]`, an encapsulated packet printed on its own line).',
    },
    NOT_IP: { description: 'Timestamped, but not an IPv4 or IPv6 packet (ARP, STP, LLDP, ...).' },
    MALFORMED_ADDRESS: {
      description: 'An IP header whose addresses do not parse (`IP bad-len 0`, `IP6 version error`, a `-v` header without its address line).',
    },
    TOO_LONG: { description: 'Longer than the per-line limit (64 KiB); nothing tcpdump prints for one packet is that long without `-X`.' },
  },
});
