import { Arg, Authorized, Ctx, Field, FieldResolver, ID, InputType, Int, Mutation, ObjectType, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { createPayload, PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { READ_ROLES } from '../auth/auth.types';
import { ApiKey } from '../account/api-key.entity';
import { FlowHit } from './flow-hit.entity';
import { HitFilter } from './hit-filter.inputs';
import { flowHitsOnly, resolveHitFilter } from './hit-filter';
import { HitTriage } from './hit-triage.entity';
import { FalsePositiveScope, TriageStatus } from './hit-triage.enums';
import { triageKey } from './hit-triage.service';

@InputType({ description: 'Which hits to triage (ids or a filter, not both) and the verdict.' })
export class FlowHitTriageInput {
  @Field(() => [ID], { nullable: true, description: 'These hits.' })
  ids?: string[] | null;

  @Field(() => HitFilter, { nullable: true, description: 'Every hit this filter matches (at most 10,000).' })
  filter?: HitFilter | null;

  @Field(() => TriageStatus, { description: 'The verdict.' })
  status: TriageStatus;

  @Field(() => String, { nullable: true, description: 'Why (at most 2,000 characters).' })
  note?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    description:
      'FALSE_POSITIVE only: also put each hit\'s matched entry on an ALLOW list of its device\'s policy (created as "False positives" when needed); a retro-hunt then removes the past hits it covers. The same as `allow: POLICY`.',
    deprecationReason: 'Use `allow: POLICY`; `allow` can also scope the entry to the device or the internal host.',
  })
  allowInPolicy?: boolean | null;

  @Field(() => FalsePositiveScope, {
    nullable: true,
    description:
      "FALSE_POSITIVE only: also allow each hit's matched entry on the \"False positives\" ALLOW list of its device's policy (created and attached when needed), in the whole policy, only on the hit's device, or only for the hit's internal host on that device. A retro-hunt then removes the past hits the allow covers. When a list of that name exists but is no longer an address ALLOW list, the call is refused (INVALID_STATE) and no verdict is stored.",
  })
  allow?: FalsePositiveScope | null;
}

@ObjectType({ description: 'What a triage call set.' })
export class FlowHitTriageResult {
  @Field(() => Int, { description: 'How many hits were given the verdict.' })
  count: number;

  @Field(() => [FlowHit], { description: 'The first 100 of them.' })
  hits: FlowHit[];
}

export const FlowHitTriagePayload = createPayload('FlowHitTriagePayload', 'result', () => FlowHitTriageResult, 'What was set.');

@Resolver(() => HitTriage)
export class HitTriageResolver {
  @FieldResolver(() => ApiKey, { nullable: true, description: 'The API key that set it; null when the key has since been deleted.' })
  apiKey(@Root() t: HitTriage, @Ctx() ctx: RequestContext): Promise<ApiKey | null> {
    return ctx.services.dataSource.getRepository(ApiKey).findOneBy({ id: t.apiKeyId, accountId: t.accountId });
  }
}

/** Triage on hits, beside the flow-hit module's fields. */
@Resolver(() => FlowHit)
export class FlowHitTriageResolver {
  @Authorized(READ_ROLES)
  @Mutation(() => FlowHitTriagePayload, {
    description: 'Records a verdict on hits (ANALYST or ADMIN), kept across reprocessing and retro-hunts. Hits of another account look missing.',
  })
  async flowHitTriage(
    @Arg('input', { description: 'Which hits and the verdict.' }) input: FlowHitTriageInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    const caller = ctx.caller!;
    return toPayload(
      await ctx.services.hitTriage.triage(caller, {
        ids: input.ids?.map((id) => idOfType(id, 'FlowHit')),
        filter: input.filter ? flowHitsOnly(resolveHitFilter(caller.accountId, input.filter), 'dnsHits, which are not triaged') : null,
        status: input.status,
        note: input.note,
        allowInPolicy: input.allowInPolicy,
        allow: input.allow,
      }),
      'result',
    );
  }

  @FieldResolver(() => HitTriage, { nullable: true, description: 'The latest verdict on it; null while nobody has triaged it (OPEN).' })
  triage(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<HitTriage | null> {
    return ctx.loaders.hitTriage.load(triageKey(hit));
  }

  @FieldResolver(() => TriageStatus, { description: 'Its triage status: OPEN until someone triages it.' })
  async triageStatus(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<TriageStatus> {
    return (await ctx.loaders.hitTriage.load(triageKey(hit)))?.status ?? TriageStatus.OPEN;
  }
}
