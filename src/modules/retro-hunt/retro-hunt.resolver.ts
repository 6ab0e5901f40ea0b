import { Arg, Args, Authorized, Ctx, FieldResolver, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { READ_ROLES, WRITE_ROLES } from '../auth/auth.types';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { RetroHunt } from './retro-hunt.entity';
import { RetroHuntStartInput } from './retro-hunt.inputs';
import { RetroHuntConnection, RetroHuntStartPayload } from './retro-hunt.payloads';

nodeLoaders.set('RetroHunt', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.retroHunt.load(id) });

@Resolver(() => RetroHunt)
export class RetroHuntResolver {
  @Authorized(READ_ROLES)
  @Query(() => RetroHuntConnection, { description: "Your account's retro-hunts, newest first." })
  retroHunts(@Args() args: PageArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<RetroHunt>> {
    return ctx.services.retroHunts.list(ctx.caller!.accountId, args);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => RetroHuntStartPayload, {
    description: 'Re-judges stored uploads now (list changes start retro-hunts by themselves); refused past RETRO_HUNT_MAX_UPLOADS uploads.',
  })
  async retroHuntStart(
    @Arg('input', { description: 'What to re-judge; see the input type.' }) input: RetroHuntStartInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(
      await ctx.services.retroHunts.start(ctx.caller!.accountId, {
        lists: input.lists?.map((id) => idOfType(id, 'IocList')),
        devices: input.devices?.map((id) => idOfType(id, 'Device')),
        since: input.since,
      }),
      'retroHunt',
    );
  }

  @FieldResolver(() => Int, { description: 'Share of its uploads re-run so far, 0-100 (100 once complete or when there were none).' })
  progressPercent(@Root() hunt: RetroHunt): number {
    return hunt.uploadsRerun === 0 ? 100 : Math.floor((100 * hunt.uploadsDone) / hunt.uploadsRerun);
  }
}

/** How a hit was found, beside the flow-hit module's fields (kept apart so that the hit model's files change little). */
@Resolver(() => FlowHit)
export class FlowHitFoundResolver {
  @FieldResolver(() => RetroHunt, { nullable: true, description: 'The retro-hunt that found it; null when its upload did.' })
  retroHunt(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<RetroHunt | null> {
    return hit.retroHuntId == null ? Promise.resolve(null) : ctx.loaders.retroHunt.load(hit.retroHuntId);
  }
}
