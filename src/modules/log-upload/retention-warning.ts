import { CaptureSample } from './acceptance/capture-sample';
import { UploadWarningCode } from './log-upload.enums';
import { retentionCutoff } from '../report/retention.service';

export interface UploadWarningData {
  code: UploadWarningCode;
  message: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * What the acknowledgment can say: only the packet lines at the file's two ends have been read, so it warns
 * when one of them is older than the cutoff, and leaves the exact count to the worker (warnings, hitsPurged).
 */
export function acceptanceWarnings(sample: CaptureSample | null, days: number, now: number): UploadWarningData[] {
  const cutoff = retentionCutoff(days, now);
  if (cutoff == null || sample == null || sample.earliest >= cutoff) return [];
  const rule = `RETENTION_DAYS=${days} keeps hits captured since ${iso(cutoff)}`;
  const message =
    sample.latest < cutoff
      ? `The capture is older than the retention period (its first and last packets: ${iso(sample.earliest)}, ${iso(sample.latest)}; ${rule}): ` +
        'the flow hits found in it will be deleted by the next retention purge. The upload was stored; its hitsPurged will count them.'
      : `The capture starts before the retention period (its first packet: ${iso(sample.earliest)}; ${rule}): ` +
        "flow hits from before then will be deleted by the next retention purge. Once processed, the upload's warnings say how many.";
  return [{ code: UploadWarningCode.BEYOND_RETENTION, message }];
}

export interface CaptureAges {
  connections: number;
  connectionsBeforeCutoff: number;
  hits: number;
  hitsBeforeCutoff: number;
}

/** What the worker knows once every connection is dated: exact counts (the purge's rule: first packet before the cutoff). */
export function processingWarnings(ages: CaptureAges, days: number, now: number): UploadWarningData[] {
  const cutoff = retentionCutoff(days, now);
  if (cutoff == null || ages.connectionsBeforeCutoff === 0) return [];
  return [
    {
      code: UploadWarningCode.BEYOND_RETENTION,
      message:
        `${ages.connectionsBeforeCutoff} of ${ages.connections} connections (${ages.hitsBeforeCutoff} of ${ages.hits} flow hits) were captured before ${iso(cutoff)}, ` +
        `older than RETENTION_DAYS=${days}: those hits will be deleted by the next retention purge and counted in hitsPurged.`,
    },
  ];
}
