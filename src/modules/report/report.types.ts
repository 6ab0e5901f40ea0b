import { Field, Int, ObjectType } from 'type-graphql';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { Direction, HitKind } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';

@ObjectType({ description: 'Totals over the filter.' })
export class HitTotals {
  @Field(() => Int, { description: 'Flow hits (matched connections).' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets of those connections, both ways.' })
  packets: number;

  @Field(() => SafeInt, { description: 'Bytes of those connections, both ways.' })
  bytes: number;

  @Field(() => Int, { description: 'Distinct internal hosts (per device) involved.' })
  internalHosts: number;

  @Field(() => Int, { description: 'Distinct external addresses involved.' })
  externalAddresses: number;

  @Field(() => Int, { description: 'Devices with hits.' })
  devices: number;
}

@ObjectType({ description: 'Hits of one direction.' })
export class DirectionRow {
  @Field(() => Direction, { description: 'INBOUND or OUTBOUND.' })
  direction: Direction;

  @Field(() => Int, { description: 'Flow hits.' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets, both ways.' })
  packets: number;

  @Field(() => SafeInt, { description: 'Bytes, both ways.' })
  bytes: number;
}

/** Fields every grouped row carries (inherited by the row types; never returned itself, so not in the schema). */
@ObjectType({ description: 'Measures of a group of hits.' })
export abstract class GroupMeasures {
  @Field(() => Int, { description: 'Flow hits.' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets, both ways (DNS hits: the queries).' })
  packets: number;

  @Field(() => Int, { description: 'Distinct internal hosts (per device).' })
  internalHosts: number;

  @Field({ description: 'Capture time of the earliest hit.' })
  firstSeenAt: Date;

  @Field({ description: 'Capture time of the latest packet.' })
  lastSeenAt: Date;
}

@ObjectType({
  description: 'Hits on one IOC entry. `ioc` (IP hits) or `domain` (DNS hits) and `iocList` resolve to the entry and its list (null if since removed).',
})
export class IocRow extends GroupMeasures {
  iocId: number;
  iocListId: number;

  /** Set by ReportService on every row it returns. */
  @Field(() => HitKind, { description: 'IP: an address entry matched by flows; DNS: a domain entry matched by DNS questions.' })
  kind?: HitKind;

  @Field({ description: 'The matched entry as it was when matched, e.g. "185.220.100.0/24", or a domain name for DNS hits.' })
  matchedCidr: string;

  @Field(() => Int, { description: 'Severity of its list when matched.' })
  severity: number;

  @Field(() => IocCategory, { description: 'Category of its list when matched.' })
  category: IocCategory;
}

@ObjectType({ description: 'Hits on one IOC list.' })
export class IocListRow extends GroupMeasures {
  iocListId: number;

  @Field(() => Int, { description: 'Distinct entries of the list that matched.' })
  iocs: number;
}

@ObjectType({ description: 'Hits of one category.' })
export class CategoryRow extends GroupMeasures {
  @Field(() => IocCategory, { description: 'The category.' })
  category: IocCategory;
}

@ObjectType({ description: 'Hits of one severity.' })
export class SeverityRow extends GroupMeasures {
  @Field(() => Int, { description: 'The severity (0-5).' })
  severity: number;
}

@ObjectType({ description: 'Hits of one device.' })
export class DeviceRow extends GroupMeasures {
  deviceId: number;

  @Field(() => Int, { description: 'Distinct IOC entries matched.' })
  iocs: number;
}

@ObjectType({ description: 'An internal host that talked to, or was contacted by, listed addresses.' })
export class InternalHostRow {
  deviceId: number;

  @Field({ description: 'The internal address.' })
  internalIp: string;

  @Field(() => Int, { description: 'Flow hits.' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets, both ways.' })
  packets: number;

  @Field(() => Int, { description: 'Distinct IOC entries matched.' })
  iocs: number;

  @Field(() => Int, { description: 'Worst severity among its hits.' })
  worstSeverity: number;

  @Field({ description: 'Capture time of its earliest hit.' })
  firstSeenAt: Date;

  @Field({ description: 'Capture time of its latest packet.' })
  lastSeenAt: Date;
}

@ObjectType({ description: 'One internal host and one IOC entry: the row analysts triage from.' })
export class ThreatRow {
  deviceId: number;
  iocId: number;
  iocListId: number;

  /** Set by ReportService on every row it returns. */
  @Field(() => HitKind, { description: 'IP: flow hits on an address entry; DNS: DNS hits on a domain entry (the host asked for names it contains).' })
  kind?: HitKind;

  @Field({ description: 'The internal address.' })
  internalIp: string;

  @Field({ description: 'The matched entry as it was when matched (an address or CIDR; a domain name for DNS hits).' })
  matchedCidr: string;

  @Field(() => Int, { description: 'Severity of the list when matched.' })
  severity: number;

  @Field(() => IocCategory, { description: 'Category of the list when matched.' })
  category: IocCategory;

  @Field(() => Int, { description: 'Flow hits.' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets, both ways.' })
  packets: number;

  @Field(() => [Int], { description: 'Destination ports seen (up to 20, ascending); none for DNS hits.' })
  destinationPorts: number[];

  @Field(() => [Direction], { description: 'Directions seen.' })
  directions: Direction[];

  @Field({ description: 'Capture time of the earliest hit.' })
  firstSeenAt: Date;

  @Field({ description: 'Capture time of the latest packet.' })
  lastSeenAt: Date;
}

@ObjectType({ description: 'Hits in one time bucket.' })
export class TimelineBucketRow {
  @Field({ description: 'Start of the bucket (local hour or day start, as an instant).' })
  start: Date;

  @Field({ description: 'Start of the next bucket.' })
  end: Date;

  @Field(() => Int, { description: 'Hits, both directions.' })
  hits: number;

  @Field(() => Int, { description: 'INBOUND hits.' })
  inbound: number;

  @Field(() => Int, { description: 'OUTBOUND hits.' })
  outbound: number;
}

@ObjectType({ description: 'The hits of one kind over the filter (IP: flow hits; DNS: DNS hits).' })
export class KindRow {
  @Field(() => HitKind, { description: 'IP or DNS.' })
  kind: HitKind;

  @Field(() => Int, { description: 'Hits of this kind: flow hits (connections) or DNS hits (one per upload, querying host, name and type).' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets of the flow hits, both ways; for DNS hits, the queries.' })
  packets: number;

  @Field(() => Int, { description: 'Distinct internal hosts (per device) with hits of this kind.' })
  internalHosts: number;

  @Field(() => Int, { description: 'Devices with hits of this kind.' })
  devices: number;

  @Field(() => Date, { nullable: true, description: 'Capture time of the earliest hit (null without hits).' })
  firstSeenAt: Date | null;

  @Field(() => Date, { nullable: true, description: 'Capture time of the latest packet or query (null without hits).' })
  lastSeenAt: Date | null;
}

@ObjectType({ description: 'DNS hits on one queried name.' })
export class DomainRow {
  @Field({ description: 'The name asked for (lowercase, punycode, no trailing dot).' })
  name: string;

  @Field(() => Int, { description: 'DNS hits (one per upload, querying host and type).' })
  hits: number;

  @Field(() => Int, { description: 'Queries for the name.' })
  queries: number;

  @Field(() => Int, { description: 'Distinct internal hosts (per device) that asked.' })
  internalHosts: number;

  @Field(() => Int, { description: 'Devices whose hosts asked.' })
  devices: number;

  @Field(() => Int, { description: 'Domain entries that matched it (the name and its parents can each be listed).' })
  iocs: number;

  @Field(() => Int, { description: 'Worst severity of the lists that matched it.' })
  worstSeverity: number;

  @Field({ description: 'Capture time of its first query.' })
  firstSeenAt: Date;

  @Field({ description: 'Capture time of its last query.' })
  lastSeenAt: Date;
}
