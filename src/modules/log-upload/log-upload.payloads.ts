import { Field, Int, ObjectType } from 'type-graphql';
import { Connection } from '../../common/pagination/connection';
import { createPayload, UserError } from '../../common/graphql/user-error.type';
import { UserErrorData } from '../../common/errors/user-error';
import { LogUpload } from './log-upload.entity';
import { SkipReason, UploadWarningCode } from './log-upload.enums';
import type { UploadWarningData } from './retention-warning';

export const LogUploadConnection = Connection(LogUpload, 'LogUpload', 'upload', 'uploads');
export const LogUploadReprocessPayload = createPayload('LogUploadReprocessPayload', 'logUpload', () => LogUpload, 'The upload, queued again.');

@ObjectType({ description: 'Something about an accepted upload worth knowing: it was stored, but not everything in it will be kept.' })
export class UploadWarning implements UploadWarningData {
  @Field(() => UploadWarningCode, { description: 'Machine-readable reason.' })
  code: UploadWarningCode;

  @Field({ description: 'What it means, for people.' })
  message: string;
}

@ObjectType({ description: 'Result of `logUploadCreate`.' })
export class LogUploadCreatePayload {
  @Field(() => LogUpload, {
    nullable: true,
    description: 'The upload, stored and queued (or the earlier one, when duplicate). Null when userErrors is not empty.',
  })
  logUpload: LogUpload | null;

  @Field({ description: 'True when the same file (same device, same MD5) had been uploaded before: nothing new was stored or counted.' })
  duplicate: boolean;

  @Field(() => [UploadWarning], {
    description:
      "About the file as far as it was read before the acknowledgment (its first and last lines; the worker parses the rest): e.g. BEYOND_RETENTION when the capture is older than RETENTION_DAYS. Empty when refused. The upload's own `warnings` hold what processing found.",
  })
  warnings: UploadWarningData[];

  @Field(() => [UserError], { description: 'Why the file was refused; empty on success. Nothing is stored when refused.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'How many lines were skipped for one reason.' })
export class SkippedLineCount {
  @Field(() => SkipReason, { description: 'Why those lines produced no packet.' })
  reason: SkipReason;

  @Field(() => Int, { description: 'Lines skipped for it.' })
  count: number;
}

@ObjectType({ description: 'A skipped line, kept as a sample.' })
export class SkippedLineSample {
  @Field(() => Int, { description: '1-based line number.' })
  lineNumber: number;

  @Field(() => SkipReason, { description: 'Why it was skipped.' })
  reason: SkipReason;

  @Field({ description: 'The line (cut to 200 characters).' })
  text: string;
}
