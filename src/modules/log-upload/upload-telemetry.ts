/** Who sent an upload and how: the fields every upload line carries. */
export interface UploadAttempt {
  via: 'graphql' | 'form';
  requestId: string;
  accountId: number | null;
  apiKeyId: number | null;
  /** The device, once it is known (a refusal can come before). */
  device: number | null;
}

/** Where LogUploadService.submit reports every upload it accepts or refuses: one log line and the upload counters. */
export interface UploadTelemetry {
  accepted(attempt: UploadAttempt, upload: { id: number; size: number; deviceId: number }, duplicate: boolean, status: number): void;
  /** Nothing stored. `code` is the UploadRefusalCode, or the form route's own code for a form it could not read. */
  refused(attempt: UploadAttempt, refusal: { code: string; reason: string; status: number }): void;
}

export const silentTelemetry: UploadTelemetry = { accepted: () => undefined, refused: () => undefined };
