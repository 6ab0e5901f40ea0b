import { Args, ArgsType, Authorized, Ctx, Field, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';
import { HitFilter } from './hit-filter.inputs';
import { flowHitsOnly, resolveHitFilter } from './hit-filter';
import { FlowHitOrder } from './flow-hit.enums';
import { FlowHitConnection } from './flow-hit.payloads';
import type { RequestContext } from '../../app/context';
import { nodeLoaders } from '../../common/node/node.resolver';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { READ_ROLES } from '../auth/auth.types';
import { Device } from '../device/device.entity';
import { Ioc } from '../ioc/ioc.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { LogUpload } from '../log-upload/log-upload.entity';
import { FlowHit } from './flow-hit.entity';
import { TriageStatus } from './hit-triage.enums';

nodeLoaders.set('FlowHit', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.flowHit.load(id) });

@ArgsType()
export class FlowHitsArgs extends PageArgs {
  @Field(() => HitFilter, { description: 'Which hits; a time window is required.' })
  filter: HitFilter;

  @Field(() => FlowHitOrder, { nullable: true, description: 'Order (default FIRST_SEEN_DESC).' })
  orderBy?: FlowHitOrder | null;

  @Field(() => [TriageStatus], {
    nullable: true,
    description: 'Only hits with these triage statuses (OPEN: not triaged, or set back to OPEN).',
    deprecationReason: 'Use filter.triageStatuses, which reports, the dashboard and the export share.',
  })
  triageStatuses?: TriageStatus[] | null;
}

@Resolver(() => FlowHit)
export class FlowHitResolver {
  @Authorized(READ_ROLES)
  @Query(() => FlowHitConnection, { description: 'The drill-down: individual flow hits matching a filter, a page at a time (first at most 100).' })
  flowHits(@Args() args: FlowHitsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<FlowHit>> {
    const filter = args.triageStatuses && !args.filter.triageStatuses ? { ...args.filter, triageStatuses: args.triageStatuses } : args.filter;
    return ctx.services.flowHits.search(
      flowHitsOnly(resolveHitFilter(ctx.caller!.accountId, filter), 'dnsHits'),
      args.orderBy ?? FlowHitOrder.FIRST_SEEN_DESC,
      args,
    );
  }

  @FieldResolver(() => Device, { description: 'The device whose upload held the connection.' })
  async device(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<Device> {
    const d = await ctx.loaders.device.load(hit.deviceId);
    if (!d) throw new Error(`flow hit ${hit.id} references missing device`);
    return d;
  }

  @FieldResolver(() => LogUpload, { description: 'The upload the connection was found in.' })
  async upload(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<LogUpload> {
    const u = await ctx.loaders.logUpload.load(hit.uploadId);
    if (!u) throw new Error(`flow hit ${hit.id} references missing upload`);
    return u;
  }

  @FieldResolver(() => Ioc, { nullable: true, description: 'The matched entry; null when it has since been removed from its list (matchedCidr keeps it).' })
  ioc(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<Ioc | null> {
    return ctx.loaders.ioc.load(hit.iocId);
  }

  @FieldResolver(() => IocList, { nullable: true, description: "The matched entry's list; null when the list has since been deleted." })
  iocList(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(hit.iocListId);
  }

  @FieldResolver(() => SafeInt, { description: 'Packets both ways.' })
  packets(@Root() hit: FlowHit): number {
    return hit.packetsForward + hit.packetsReverse;
  }

  @FieldResolver(() => SafeInt, { description: "Bytes both ways (tcpdump's `length` of each packet, summed)." })
  bytes(@Root() hit: FlowHit): number {
    return hit.bytesForward + hit.bytesReverse;
  }

  @FieldResolver(() => SafeInt, { description: 'Packets from the initiator to the responder.' })
  packetsSent(@Root() hit: FlowHit): number {
    return hit.packetsForward;
  }

  @FieldResolver(() => SafeInt, { description: 'Packets from the responder back to the initiator.' })
  packetsReceived(@Root() hit: FlowHit): number {
    return hit.packetsReverse;
  }

  @FieldResolver(() => SafeInt, { description: 'Bytes from the initiator to the responder.' })
  bytesSent(@Root() hit: FlowHit): number {
    return hit.bytesForward;
  }

  @FieldResolver(() => SafeInt, { description: 'Bytes from the responder back to the initiator.' })
  bytesReceived(@Root() hit: FlowHit): number {
    return hit.bytesReverse;
  }
}
