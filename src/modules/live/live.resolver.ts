import { Arg, Authorized, Ctx, FieldResolver, ID, Resolver, Root, Subscription } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { READ_ROLES, UPLOAD_ROLES } from '../auth/auth.types';
import { LogUpload } from '../log-upload/log-upload.entity';
import { HitsFoundEvent, HitsFoundFilter } from './live.types';

interface SubscribeData<A> {
  args: A;
  context: RequestContext;
}

@Resolver(() => HitsFoundEvent)
export class LiveResolver {
  @Authorized([...new Set([...READ_ROLES, ...UPLOAD_ROLES])])
  @Subscription(() => LogUpload, {
    description: 'The upload now and at each change of its status or progress, from whichever server processes it; ends after COMPLETED or FAILED.',
    subscribe: ({ args, context }: SubscribeData<{ id: string }>) =>
      context.services.live.uploadProgress(context.caller!.accountId, idOfType(args.id, 'LogUpload')),
  })
  uploadProgress(@Arg('id', () => ID, { description: 'Global ID of the upload.' }) _id: string, @Root() upload: LogUpload): LogUpload {
    return upload;
  }

  @Authorized(READ_ROLES)
  @Subscription(() => HitsFoundEvent, {
    description:
      'An event each time hits are found in an upload of your account from now on (by whichever server), when its hits include some that pass the filter: when it is processed, and when a re-run (a retro-hunt after a list change, a reprocess) finds hits it did not have. A re-run that finds nothing new sends none.',
    subscribe: ({ args, context }: SubscribeData<{ filter?: HitsFoundFilter | null }>) =>
      context.services.live.hitsFound(context.caller!.accountId, {
        minSeverity: args.filter?.minSeverity,
        directions: args.filter?.directions,
        kinds: args.filter?.kinds,
        deviceIds: args.filter?.devices?.map((d) => idOfType(d, 'Device')),
      }),
  })
  hitsFound(
    @Arg('filter', () => HitsFoundFilter, { nullable: true, description: 'Which hits count.' }) _filter: HitsFoundFilter | null,
    @Root() event: HitsFoundEvent,
  ): HitsFoundEvent {
    return event;
  }

  @FieldResolver(() => LogUpload, { description: 'The upload the hits were found in.' })
  async logUpload(@Root() event: HitsFoundEvent, @Ctx() ctx: RequestContext): Promise<LogUpload> {
    // Not the context's loader: a subscription's context lives as long as it does, and its cache would go stale.
    const [u] = await ctx.services.logUploads.findMany(ctx.caller!.accountId, [event.uploadId]);
    if (!u) throw new Error(`upload ${event.uploadId} is gone`);
    return u;
  }
}
