import { Arg, Authorized, Ctx, FieldResolver, ID, Resolver, Root, Subscription } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { READ_ROLES, UPLOAD_ROLES } from '../auth/auth.types';
import { Role } from '../account/account.enums';
import { createLoaders } from '../../app/loaders';
import { badUserInput } from '../../common/errors/graphql-errors';
import { MAX_FILTER_IDS } from '../flow-hit/hit-filter';
import { LogUpload } from '../log-upload/log-upload.entity';
import { HitsFoundEvent, HitsFoundFilter } from './live.types';

interface SubscribeData<A> {
  args: A;
  context: RequestContext;
}

/**
 * A subscription's events from `open`'s source, each resolved with loaders of its own: a subscription's context lives
 * as long as the subscription, and loaders kept that long would answer every event with what the first one loaded (a
 * device renamed since, a policy changed) and grow without bound.
 */
function subscription<T>(context: RequestContext, open: (signal: AbortSignal) => AsyncGenerator<T>): AsyncIterableIterator<T> {
  const ended = new AbortController();
  const source = open(ended.signal);
  const iterator: AsyncIterableIterator<T> = {
    next: async () => {
      const r = await source.next();
      if (!r.done) context.loaders = createLoaders(context.services, context.caller);
      return r;
    },
    // The subscription ended (the client completed it, or closed its connection): the source stops waiting for its
    // next event (an async generator's own return() would wait for it) and unregisters at once.
    return: async () => {
      ended.abort();
      return source.return(undefined);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

@Resolver(() => HitsFoundEvent)
export class LiveResolver {
  @Authorized([...new Set([...READ_ROLES, ...UPLOAD_ROLES])])
  @Subscription(() => LogUpload, {
    description: 'The upload now and at each change of its status or progress, from whichever server processes it; ends after COMPLETED or FAILED.',
    subscribe: ({ args, context }: SubscribeData<{ id: string }>) =>
      // An UPLOADER key follows only the uploads it made, as logUpload shows it only those.
      subscription(context, (signal) =>
        context.services.live.uploadProgress(
          context.caller!.accountId,
          idOfType(args.id, 'LogUpload'),
          context.caller!.role === Role.UPLOADER ? context.caller!.apiKeyId : null,
          signal,
        ),
      ),
  })
  uploadProgress(@Arg('id', () => ID, { description: 'Global ID of the upload.' }) _id: string, @Root() upload: LogUpload): LogUpload {
    return upload;
  }

  @Authorized(READ_ROLES)
  @Subscription(() => HitsFoundEvent, {
    description:
      'An event each time hits are found in an upload of your account from now on (by whichever server), when its hits include some that pass the filter: when it is processed, and when a re-run (a retro-hunt after a list change, a reprocess) finds hits it did not have. A re-run that finds nothing new sends none.',
    subscribe: ({ args, context }: SubscribeData<{ filter?: HitsFoundFilter | null }>) => {
      const f = args.filter;
      if (f?.minSeverity != null && (f.minSeverity < 0 || f.minSeverity > 5)) throw badUserInput('filter.minSeverity: 0-5.');
      if (f?.devices && f.devices.length > MAX_FILTER_IDS) throw badUserInput(`filter.devices: at most ${MAX_FILTER_IDS} devices.`);
      return subscription(context, (signal) =>
        context.services.live.hitsFound(
          context.caller!.accountId,
          { minSeverity: f?.minSeverity, directions: f?.directions, kinds: f?.kinds, deviceIds: f?.devices?.map((d) => idOfType(d, 'Device')) },
          signal,
        ),
      );
    },
  })
  hitsFound(
    @Arg('filter', () => HitsFoundFilter, { nullable: true, description: 'Which hits count.' }) _filter: HitsFoundFilter | null,
    @Root() event: HitsFoundEvent,
  ): HitsFoundEvent {
    return event;
  }

  @FieldResolver(() => LogUpload, { description: 'The upload the hits were found in.' })
  async logUpload(@Root() event: HitsFoundEvent, @Ctx() ctx: RequestContext): Promise<LogUpload> {
    // The event's own loaders (made for it by subscription()): the upload as it is now.
    const u = await ctx.loaders.logUpload.load(event.uploadId);
    if (!u) throw new Error(`upload ${event.uploadId} is gone`);
    return u;
  }
}
