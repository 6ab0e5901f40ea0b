import { Args, ArgsType, Authorized, Ctx, Field, FieldResolver, Int, Query, Resolver, Root } from 'type-graphql';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';
import type { RequestContext } from '../../app/context';
import { nodeLoaders } from '../../common/node/node.resolver';
import { READ_ROLES } from '../auth/auth.types';
import { Device } from '../device/device.entity';
import { IocDomain } from '../ioc/ioc-domain.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { LogUpload } from '../log-upload/log-upload.entity';
import { FlowHit } from '../flow-hit/flow-hit.entity';
import { DnsHit } from './dns-hit.entity';
import { DnsHitFilter } from './dns-hit.inputs';
import { DnsHitConnection } from './dns-hit.payloads';

nodeLoaders.set('DnsHit', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.dnsHit.load(id) });

@ArgsType()
export class DnsHitsArgs extends PageArgs {
  @Field(() => DnsHitFilter, { description: 'Which DNS hits; a time window is required.' })
  filter: DnsHitFilter;
}

@Resolver(() => DnsHit)
export class DnsHitResolver {
  @Authorized(READ_ROLES)
  @Query(() => DnsHitConnection, { description: 'DNS hits matching a filter, newest first (first query), a page at a time (first at most 100).' })
  dnsHits(@Args() args: DnsHitsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<DnsHit>> {
    return ctx.services.dnsHits.search(ctx.caller!.accountId, args.filter, args);
  }

  @FieldResolver(() => Device, { description: 'The device whose upload held the queries.' })
  async device(@Root() hit: DnsHit, @Ctx() ctx: RequestContext): Promise<Device> {
    const d = await ctx.loaders.device.load(hit.deviceId);
    if (!d) throw new Error(`dns hit ${hit.id} references missing device`);
    return d;
  }

  @FieldResolver(() => LogUpload, { description: 'The upload the queries were found in.' })
  async upload(@Root() hit: DnsHit, @Ctx() ctx: RequestContext): Promise<LogUpload> {
    const u = await ctx.loaders.logUpload.load(hit.uploadId);
    if (!u) throw new Error(`dns hit ${hit.id} references missing upload`);
    return u;
  }

  @FieldResolver(() => IocDomain, {
    nullable: true,
    description: 'The matched entry; null when it has since been removed from its list (matchedName keeps it).',
  })
  iocDomain(@Root() hit: DnsHit, @Ctx() ctx: RequestContext): Promise<IocDomain | null> {
    return ctx.loaders.iocDomain.load(hit.iocDomainId);
  }

  @FieldResolver(() => IocList, { nullable: true, description: "The matched entry's list; null when the list has since been deleted." })
  iocList(@Root() hit: DnsHit, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(hit.iocListId);
  }

  @FieldResolver(() => [String], {
    name: 'answers',
    description:
      'The A, AAAA and CNAME records of the responses to these queries in the same capture, each once, as `A 192.0.2.1` or `CNAME cdn.example.net` (at most 16).',
  })
  answerList(@Root() hit: DnsHit): string[] {
    return JSON.parse(hit.answers) as string[];
  }
}

@Resolver(() => LogUpload)
export class LogUploadDnsHitsResolver {
  @FieldResolver(() => Int, { description: 'DNS hits found in this upload (one per querying host, name and type); 0 when its policy had no DOMAIN list.' })
  dnsHits(@Root() upload: LogUpload, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.dnsHitCount.load(upload.id);
  }
}

@Resolver(() => FlowHit)
export class FlowHitDnsHitResolver {
  @FieldResolver(() => DnsHit, {
    nullable: true,
    description:
      'The DNS hit this connection followed: a lookup in the same upload, at or before its first packet, of a listed name that resolved to its external address (the latest such); null when none.',
  })
  followedDnsHit(@Root() hit: FlowHit, @Ctx() ctx: RequestContext): Promise<DnsHit | null> {
    return ctx.loaders.followedDnsHit.load(hit);
  }
}
