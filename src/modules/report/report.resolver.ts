import { GraphQLResolveInfo, Kind, SelectionSetNode } from 'graphql';
import { Arg, Authorized, Ctx, Field, FieldResolver, Info, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { badUserInput } from '../../common/errors/graphql-errors';
import { MAX_PAGE_SIZE } from '../../common/pagination/connection';
import { READ_ROLES } from '../auth/auth.types';
import { Device } from '../device/device.entity';
import { Ioc } from '../ioc/ioc.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { HitFilter } from '../flow-hit/hit-filter.inputs';
import { resolveHitFilter, ResolvedHitFilter } from '../flow-hit/hit-filter';
import { HitKind, TimeRangePreset } from '../flow-hit/flow-hit.enums';
import { IocDomain } from '../ioc/ioc-domain.entity';
import { GraphQLError } from 'graphql';
import { TriageStatus } from '../flow-hit/hit-triage.enums';
import { TimeBucket } from './report.enums';
import {
  CategoryRow,
  DeviceRow,
  DirectionRow,
  DomainRow,
  HitTotals,
  InternalHostRow,
  IocListRow,
  IocRow,
  KindRow,
  SeverityRow,
  ThreatRow,
  TimelineBucketRow,
} from './report.types';
import { validTimeZone } from './timeline';
import {
  BY_CATEGORY,
  BY_DEVICE,
  BY_DIRECTION,
  BY_DOMAIN,
  BY_INTERNAL_HOST,
  BY_IOC,
  BY_IOC_LIST,
  BY_SEVERITY,
  KIND_TOTALS,
  TOTALS,
} from './groupings/groupings';

const TOP_DEFAULT = 10;

function top(first: number | null | undefined): number {
  const v = first ?? TOP_DEFAULT;
  if (!Number.isInteger(v) || v < 1 || v > MAX_PAGE_SIZE) throw badUserInput(`"first" must be between 1 and ${MAX_PAGE_SIZE}.`);
  return v;
}

function zone(tz: string | null | undefined): string {
  const z = tz ?? 'UTC';
  if (!validTimeZone(z)) throw badUserInput(`timeZone: "${z.slice(0, 64)}" is not an IANA time zone (e.g. "Europe/Berlin").`);
  return z;
}

/**
 * Whether the field being resolved selects `name` (directly, or possibly through a fragment: then yes). Lets a
 * grouping skip a costly measure nobody asked for.
 */
function selects(info: GraphQLResolveInfo, name: string): boolean {
  const visit = (set: SelectionSetNode | undefined): boolean =>
    !!set?.selections.some((sel) => (sel.kind === Kind.FIELD ? sel.name.value === name : sel.kind === Kind.INLINE_FRAGMENT ? visit(sel.selectionSet) : true));
  return info.fieldNodes.some((node) => visit(node.selectionSet));
}

@ObjectType({
  description:
    "Hit report over a filter: of flow hits, or of DNS hits with the filter's kind DNS (byKind and byDomain aside). Each grouping is computed (one SQL query) only when selected.",
})
export class HitReport {
  filter: ResolvedHitFilter;
  /** The filter as given: byKind and byDomain resolve it again for the other kind. */
  input: HitFilter;

  @Field({ description: 'Start of the window covered.' })
  from: Date;

  @Field({ description: 'End of the window covered (exclusive).' })
  to: Date;
}

@ObjectType({ description: "The IP Defense dashboard (DNS Defense with kind DNS): the original product's overview in one query." })
export class Dashboard {
  filter: ResolvedHitFilter;
  /** The filter narrowed to hits nobody has triaged (or set back to OPEN): openHits. */
  openFilter: ResolvedHitFilter;
  timeZone: string;

  @Field({ description: 'Start of the window covered.' })
  from: Date;

  @Field({ description: 'End of the window covered (exclusive).' })
  to: Date;
}

/** A costly measure nobody selected is not computed (answered 0). */
const unselected = (info: GraphQLResolveInfo, ...fields: string[]) => fields.filter((field) => !selects(info, field));

const report = (filter: ResolvedHitFilter, input: HitFilter) =>
  Object.assign(new HitReport(), { filter, input, from: new Date(filter.from), to: new Date(filter.to) });

/**
 * The report's filter for hits of `kind` (its other conditions kept, the same window), or null when a condition
 * only the other kind has rules out every hit of this one (a DNS hit has no external address).
 */
function filterOfKind(r: HitReport, kind: HitKind, accountId: number): ResolvedHitFilter | null {
  if ((r.filter.kind ?? HitKind.IP) === kind) return r.filter;
  try {
    return resolveHitFilter(accountId, { ...r.input, kind }, r.filter.to);
  } catch (err) {
    if (err instanceof GraphQLError && err.extensions.code === 'BAD_USER_INPUT') return null;
    throw err;
  }
}

@Resolver(() => HitReport)
export class HitReportResolver {
  @Authorized(READ_ROLES)
  @Query(() => HitReport, { description: 'Hits grouped every way analysts need; select only the groupings you want.' })
  hitReport(
    @Arg('filter', () => HitFilter, { description: 'Which hits; a time window is required.' }) filter: HitFilter,
    @Ctx() ctx: RequestContext,
  ): HitReport {
    return report(resolveHitFilter(ctx.caller!.accountId, filter), filter);
  }

  @FieldResolver(() => [KindRow], {
    description:
      "IP and DNS hits side by side (both always present), over the filter's other conditions whatever its kind; a condition DNS hits cannot meet (externalAddress, ports, protocols, foundBy, foundSince, an internalAddress CIDR: DNS hits are filtered on one address only) leaves DNS at 0.",
  })
  async byKind(@Root() r: HitReport, @Ctx() ctx: RequestContext): Promise<KindRow[]> {
    return Promise.all(
      [HitKind.IP, HitKind.DNS].map(async (kind): Promise<KindRow> => {
        const f = filterOfKind(r, kind, ctx.caller!.accountId);
        const [t] = f ? await ctx.services.reports.group(f, KIND_TOTALS) : [];
        return t ?? { kind, hits: 0, packets: 0, internalHosts: 0, devices: 0, firstSeenAt: null, lastSeenAt: null };
      }),
    );
  }

  @FieldResolver(() => [DomainRow], {
    description:
      "DNS hits by queried name, most hits first, over the filter's conditions whatever its kind (none when a condition DNS hits cannot meet is given, as in byKind).",
  })
  async byDomain(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<DomainRow[]> {
    const n = top(first);
    const f = filterOfKind(r, HitKind.DNS, ctx.caller!.accountId);
    return f ? ctx.services.reports.group(f, BY_DOMAIN, { first: n }) : [];
  }

  @FieldResolver(() => HitTotals, { description: 'Totals.' })
  async totals(@Root() r: HitReport, @Ctx() ctx: RequestContext, @Info() info: GraphQLResolveInfo): Promise<HitTotals> {
    const [totals] = await ctx.services.reports.group(r.filter, TOTALS, { skip: unselected(info, 'externalAddresses') });
    return totals;
  }

  @FieldResolver(() => [DirectionRow], { description: 'INBOUND and OUTBOUND (both always present).' })
  byDirection(@Root() r: HitReport, @Ctx() ctx: RequestContext): Promise<DirectionRow[]> {
    return ctx.services.reports.group(r.filter, BY_DIRECTION);
  }

  @FieldResolver(() => [IocRow], { description: 'IOC entries by hits, most first.' })
  byIoc(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<IocRow[]> {
    return ctx.services.reports.group(r.filter, BY_IOC, { first: top(first) });
  }

  @FieldResolver(() => [IocListRow], { description: 'IOC lists by hits, most first.' })
  byIocList(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<IocListRow[]> {
    return ctx.services.reports.group(r.filter, BY_IOC_LIST, { first: top(first), skip: unselected(info, 'iocs') });
  }

  @FieldResolver(() => [CategoryRow], { description: 'Categories by hits.' })
  byCategory(@Root() r: HitReport, @Ctx() ctx: RequestContext): Promise<CategoryRow[]> {
    return ctx.services.reports.group(r.filter, BY_CATEGORY);
  }

  @FieldResolver(() => [SeverityRow], { description: 'Severities, most severe first.' })
  bySeverity(@Root() r: HitReport, @Ctx() ctx: RequestContext): Promise<SeverityRow[]> {
    return ctx.services.reports.group(r.filter, BY_SEVERITY);
  }

  @FieldResolver(() => [DeviceRow], { description: 'Devices by hits.' })
  byDevice(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<DeviceRow[]> {
    return ctx.services.reports.group(r.filter, BY_DEVICE, { first: top(first), skip: unselected(info, 'iocs') });
  }

  @FieldResolver(() => [InternalHostRow], { description: 'Internal hosts that talked to, or were contacted by, listed addresses; most hits first.' })
  byInternalHost(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<InternalHostRow[]> {
    return ctx.services.reports.group(r.filter, BY_INTERNAL_HOST, { first: top(first), skip: unselected(info, 'iocs') });
  }

  @FieldResolver(() => [ThreatRow], { description: 'One row per internal host and IOC entry, most severe then most hits first: the triage view.' })
  threats(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true, description: 'How many rows (1-100, default 10).' }) first?: number,
  ): Promise<ThreatRow[]> {
    return ctx.services.reports.threats(r.filter, top(first));
  }

  @FieldResolver(() => [TimelineBucketRow], { description: 'Hits per hour or day in a time zone, split by direction; empty buckets included.' })
  timeline(
    @Root() r: HitReport,
    @Ctx() ctx: RequestContext,
    @Arg('bucket', () => TimeBucket, { description: 'HOUR or DAY.' }) bucket: TimeBucket,
    @Arg('timeZone', () => String, { nullable: true, description: 'IANA time zone of the buckets (default UTC).' }) timeZone?: string,
  ): Promise<TimelineBucketRow[]> {
    if (bucket === TimeBucket.HOUR && r.filter.to - r.filter.from > 31 * 24 * 3600_000)
      throw badUserInput('timeline: HOUR buckets cover at most 31 days; use DAY.');
    return ctx.services.reports.timeline(r.filter, bucket, zone(timeZone));
  }
}

@Resolver(() => Dashboard)
export class DashboardResolver {
  @Authorized(READ_ROLES)
  @Query(() => Dashboard, { description: 'Inbound/outbound hits, devices and hosts with hits, top threats and a 7-day trend.' })
  dashboard(
    @Ctx() ctx: RequestContext,
    @Arg('preset', () => TimeRangePreset, { nullable: true, description: 'The window (default LAST_24_HOURS), or give from/to.' }) preset?: TimeRangePreset,
    @Arg('from', () => Date, { nullable: true, description: 'Start of the window.' }) from?: Date,
    @Arg('to', () => Date, { nullable: true, description: 'End of the window.' }) to?: Date,
    @Arg('timeZone', () => String, { nullable: true, description: "IANA time zone of the trend's days (default UTC)." }) timeZone?: string,
    @Arg('triageStatuses', () => [TriageStatus], { nullable: true, description: 'Only hits with these triage verdicts (default: every hit).' })
    triageStatuses?: TriageStatus[],
    @Arg('kind', () => HitKind, { nullable: true, description: 'IP (flow hits, the default) or DNS (DNS hits, never triaged: all OPEN).' })
    kind?: HitKind,
  ): Dashboard {
    const window = from || to ? { from, to, preset } : { preset: preset ?? TimeRangePreset.LAST_24_HOURS };
    const filter = resolveHitFilter(ctx.caller!.accountId, { ...window, triageStatuses, kind });
    const open = (filter.triageStatuses ?? [TriageStatus.OPEN]).filter((s) => s === TriageStatus.OPEN);
    const openFilter = { ...filter, triageStatuses: open };
    return Object.assign(new Dashboard(), { filter, openFilter, timeZone: zone(timeZone), from: new Date(filter.from), to: new Date(filter.to) });
  }

  @FieldResolver(() => Int, { description: 'Hits in the window nobody has triaged yet (or set back to OPEN): what is left to look at.' })
  async openHits(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.hitCount.load(d.openFilter);
  }

  @FieldResolver(() => Int, { description: 'INBOUND hits in the window.' })
  async inboundHits(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<number> {
    return (await ctx.loaders.totals.load(d.filter)).inbound;
  }

  @FieldResolver(() => Int, { description: 'OUTBOUND hits in the window.' })
  async outboundHits(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<number> {
    return (await ctx.loaders.totals.load(d.filter)).outbound;
  }

  @FieldResolver(() => Int, { description: 'Devices with hits in the window.' })
  async devices(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<number> {
    return (await ctx.loaders.totals.load(d.filter)).devices;
  }

  @FieldResolver(() => Int, { description: 'Internal hosts with hits in the window.' })
  async internalHosts(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<number> {
    return (await ctx.loaders.totals.load(d.filter)).internalHosts;
  }

  @FieldResolver(() => [ThreatRow], { description: 'The 3 top threats (internal host and IOC), most severe then most hits.' })
  topThreats(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<ThreatRow[]> {
    return ctx.services.reports.threats(d.filter, 3);
  }

  @FieldResolver(() => [TimelineBucketRow], { description: 'Hits per day over the 7 days ending with the window, in the time zone.' })
  trend(@Root() d: Dashboard, @Ctx() ctx: RequestContext): Promise<TimelineBucketRow[]> {
    return ctx.services.reports.timeline({ ...d.filter, from: d.filter.to - 7 * 24 * 3600_000 }, TimeBucket.DAY, d.timeZone);
  }
}

/** The address entry of an IP row; null for a DNS row (its entry is a domain: `domain`). */
const addressEntry = (ctx: RequestContext, r: { kind?: HitKind; iocId: number }) =>
  r.kind === HitKind.DNS ? Promise.resolve(null) : ctx.loaders.ioc.load(r.iocId);
const domainEntry = (ctx: RequestContext, r: { kind?: HitKind; iocId: number }) =>
  r.kind === HitKind.DNS ? ctx.loaders.iocDomain.load(r.iocId) : Promise.resolve(null);

/** Rows reference real objects, through the request's DataLoaders. */
@Resolver(() => IocRow)
export class IocRowResolver {
  @FieldResolver(() => Ioc, {
    nullable: true,
    description: 'The address entry (IP rows); null for DNS rows, or if it has since been removed (matchedCidr keeps it).',
  })
  ioc(@Root() r: IocRow, @Ctx() ctx: RequestContext): Promise<Ioc | null> {
    return addressEntry(ctx, r);
  }

  @FieldResolver(() => IocDomain, { nullable: true, description: 'The domain entry (DNS rows); null for IP rows, or if it has since been removed.' })
  domain(@Root() r: IocRow, @Ctx() ctx: RequestContext): Promise<IocDomain | null> {
    return domainEntry(ctx, r);
  }

  @FieldResolver(() => IocList, { nullable: true, description: "The entry's list; null if it has since been deleted." })
  iocList(@Root() r: IocRow, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(r.iocListId);
  }
}

@Resolver(() => IocListRow)
export class IocListRowResolver {
  @FieldResolver(() => IocList, { nullable: true, description: 'The list; null if it has since been deleted.' })
  iocList(@Root() r: IocListRow, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(r.iocListId);
  }
}

async function deviceOf(ctx: RequestContext, id: number): Promise<Device> {
  const d = await ctx.loaders.device.load(id);
  if (!d) throw new Error(`hits reference missing device ${id}`);
  return d;
}

@Resolver(() => DeviceRow)
export class DeviceRowResolver {
  @FieldResolver(() => Device, { description: 'The device.' })
  device(@Root() r: DeviceRow, @Ctx() ctx: RequestContext): Promise<Device> {
    return deviceOf(ctx, r.deviceId);
  }
}

@Resolver(() => InternalHostRow)
export class InternalHostRowResolver {
  @FieldResolver(() => Device, { description: 'The device whose network the host is in.' })
  device(@Root() r: InternalHostRow, @Ctx() ctx: RequestContext): Promise<Device> {
    return deviceOf(ctx, r.deviceId);
  }
}

@Resolver(() => ThreatRow)
export class ThreatRowResolver {
  @FieldResolver(() => Device, { description: 'The device whose network the host is in.' })
  device(@Root() r: ThreatRow, @Ctx() ctx: RequestContext): Promise<Device> {
    return deviceOf(ctx, r.deviceId);
  }

  @FieldResolver(() => Ioc, {
    nullable: true,
    description: 'The address entry (IP rows); null for DNS rows, or if it has since been removed (matchedCidr keeps it).',
  })
  ioc(@Root() r: ThreatRow, @Ctx() ctx: RequestContext): Promise<Ioc | null> {
    return addressEntry(ctx, r);
  }

  @FieldResolver(() => IocDomain, { nullable: true, description: 'The domain entry (DNS rows); null for IP rows, or if it has since been removed.' })
  domain(@Root() r: ThreatRow, @Ctx() ctx: RequestContext): Promise<IocDomain | null> {
    return domainEntry(ctx, r);
  }

  @FieldResolver(() => IocList, { nullable: true, description: "The entry's list; null if it has since been deleted." })
  iocList(@Root() r: ThreatRow, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(r.iocListId);
  }
}

export const reportResolvers = [
  HitReportResolver,
  DashboardResolver,
  IocRowResolver,
  IocListRowResolver,
  DeviceRowResolver,
  InternalHostRowResolver,
  ThreatRowResolver,
];
