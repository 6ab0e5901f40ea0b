import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { GraphQLError } from 'graphql';
import { DATABASE_FAILURES } from '../../common/errors/database-failure';
import { UserErrorCode } from '../../common/errors/user-error';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { Role } from '../account/account.enums';
import { Caller, READ_ROLES } from '../auth/auth.types';
import { Device } from '../device/device.entity';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { FlowHitConnection } from '../flow-hit/flow-hit.payloads';
import { LogUpload } from './log-upload.entity';
import { SkipReason } from './log-upload.enums';
import { isUserErrorRefusal, UploadRefusalCode } from './acceptance/refusal';
import { LogUploadsArgs } from './log-upload.args';
import { LogUploadCreateInput, LogUploadReprocessInput } from './log-upload.inputs';
import {
  LogUploadConnection,
  LogUploadCreatePayload,
  LogUploadReprocessPayload,
  SkippedLineCount,
  SkippedLineSample,
  UploadWarning,
} from './log-upload.payloads';
import type { UploadWarningData } from './retention-warning';

/**
 * The HTTP status of each refusal of logUploadCreate: 200 for those answered as userErrors, the request's own
 * status for the others (thrown). Exhaustive: a new UploadRefusalCode fails to compile until it is mapped.
 */
const GRAPHQL_STATUS: Record<UploadRefusalCode, number> = {
  [UserErrorCode.INVALID]: 200,
  [UserErrorCode.REQUIRED]: 200,
  [UserErrorCode.NOT_FOUND]: 200,
  [UserErrorCode.UNSUPPORTED_FORMAT]: 200,
  [UserErrorCode.NOT_TEXT]: 200,
  [UserErrorCode.EMPTY]: 200,
  [UserErrorCode.CHECKSUM_MISMATCH]: 200,
  [UserErrorCode.SIZE_MISMATCH]: 200,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  AMBIGUOUS: 409,
  INSUFFICIENT_STORAGE: DATABASE_FAILURES.STORAGE_FULL.status,
  SERVICE_UNAVAILABLE: DATABASE_FAILURES.UNAVAILABLE.status,
};

/** UPLOADER keys see only the uploads they made; other roles see the account's. */
const uploaderKey = (caller: Caller) => (caller.role === Role.UPLOADER ? caller.apiKeyId : null);

nodeLoaders.set('LogUpload', {
  roles: [...READ_ROLES, Role.UPLOADER],
  load: async (ctx, id) => {
    const u = await ctx.loaders.logUpload.load(id);
    const key = uploaderKey(ctx.caller!);
    return u && (key == null || u.apiKeyId === key) ? u : null;
  },
});

@Resolver(() => LogUpload)
export class LogUploadResolver {
  @Authorized([...READ_ROLES, Role.UPLOADER])
  @Query(() => LogUpload, { nullable: true, description: 'An upload by ID; null when there is none (UPLOADER keys see only their own uploads).' })
  async logUpload(@Arg('id', () => ID, { description: 'Global ID of the upload.' }) id: string, @Ctx() ctx: RequestContext): Promise<LogUpload | null> {
    const pk = idOfType(id, 'LogUpload');
    return pk == null ? null : ((await nodeLoaders.get('LogUpload')!.load(ctx, pk)) as LogUpload | null);
  }

  @Authorized([...READ_ROLES, Role.UPLOADER])
  @Query(() => LogUploadConnection, { description: 'Uploads, newest first (UPLOADER keys see only their own).' })
  logUploads(@Args() args: LogUploadsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<LogUpload>> {
    const f = args.filter;
    const filter = { ...f, deviceIds: f?.devices ? f.devices.map((d) => idOfType(d, 'Device')) : null, apiKeyId: uploaderKey(ctx.caller!) };
    return ctx.services.logUploads.list(ctx.caller!.accountId, filter, args);
  }

  // No @Authorized: the key and its role are checked by LogUploadService.submit, as for the form post, so both
  // entrances refuse alike (UNAUTHENTICATED, FORBIDDEN).
  @Mutation(() => LogUploadCreatePayload, {
    description:
      'Uploads tcpdump text (GraphQL multipart; send "Apollo-Require-Preflight: true") with an UPLOADER or ADMIN key. Answers once the file and its job are stored; processing takes seconds. Over the size limit: HTTP 413 and nothing stored.',
  })
  async logUploadCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: LogUploadCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<LogUploadCreatePayload> {
    const caller = ctx.caller;
    const upload = await input.file;
    const outcome = await ctx.services.logUploads.submit({
      via: 'graphql',
      requestId: ctx.requestId,
      key: caller ? { id: caller.apiKeyId, accountId: caller.accountId, role: caller.role, deviceId: caller.deviceId } : null,
      device: {
        deviceId: input.device != null ? idOfType(input.device, 'Device') : null,
        deviceIdGiven: input.device != null,
        nickname: input.deviceNickname,
        ip: input.deviceIp,
      },
      uploaderAddress: null,
      file: { name: upload.filename, stream: upload.createReadStream() },
      clientMd5: input.md5,
      clientSize: input.size,
      statusOf: { refused: GRAPHQL_STATUS, accepted: () => 200 },
    });
    if (outcome.ok) return { logUpload: outcome.value.upload, duplicate: outcome.value.duplicate, warnings: outcome.value.warnings, userErrors: [] };
    const { refusal } = outcome;
    if (isUserErrorRefusal(refusal)) return { logUpload: null, duplicate: false, warnings: [], userErrors: [refusal] };
    throw new GraphQLError(refusal.message, { extensions: { code: refusal.code, http: { status: GRAPHQL_STATUS[refusal.code] } } });
  }

  @Authorized([Role.ADMIN])
  @Mutation(() => LogUploadReprocessPayload, {
    description: "Processes a finished upload again against its device's current policy; its counts and hits are replaced.",
  })
  async logUploadReprocess(
    @Arg('input', { description: 'What to do; see the input type.' }) input: LogUploadReprocessInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.logUploads.reprocess(ctx.caller!.accountId, idOfType(input.id, 'LogUpload')), 'logUpload');
  }

  @FieldResolver(() => Device, { description: 'The device the file came from.' })
  async device(@Root() upload: LogUpload, @Ctx() ctx: RequestContext): Promise<Device> {
    const d = await ctx.loaders.device.load(upload.deviceId);
    if (!d) throw new Error(`upload ${upload.id} references missing device`);
    return d;
  }

  @FieldResolver(() => [SkippedLineCount], { description: 'Lines that were not packets, counted by reason (after processing).' })
  skippedByReason(@Root() upload: LogUpload): SkippedLineCount[] {
    return Object.entries(upload.skipped?.byReason ?? {}).map(([reason, count]) => ({ reason: reason as SkipReason, count }));
  }

  @FieldResolver(() => [SkippedLineSample], { description: 'The first skipped lines of each reason, with their line numbers.' })
  skippedSamples(@Root() upload: LogUpload): SkippedLineSample[] {
    return upload.skipped?.samples ?? [];
  }

  @FieldResolver(() => [UploadWarning], {
    description:
      'What processing found worth a warning, e.g. BEYOND_RETENTION with how many connections and hits are older than RETENTION_DAYS. Empty before processing.',
  })
  warnings(@Root() upload: LogUpload): UploadWarningData[] {
    return upload.warnings ?? [];
  }

  @FieldResolver(() => Int, { description: 'Percent of the text parsed so far (100 once COMPLETED).' })
  progressPercent(@Root() upload: LogUpload): number {
    return upload.textBytes > 0 ? Math.min(100, Math.floor((upload.progressBytes * 100) / upload.textBytes)) : 0;
  }

  @Authorized(READ_ROLES)
  @FieldResolver(() => FlowHitConnection, { description: 'The flow hits found in this upload, in capture order.' })
  flowHits(@Root() upload: LogUpload, @Args() page: PageArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<FlowHit>> {
    return ctx.services.flowHits.ofUpload(upload.accountId, upload.id, page);
  }
}
