import { Field, Int, ObjectType } from 'type-graphql';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { Direction } from '../flow-hit/flow-hit.enums';
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

  @Field(() => SafeInt, { description: 'Packets, both ways.' })
  packets: number;

  @Field(() => Int, { description: 'Distinct internal hosts (per device).' })
  internalHosts: number;

  @Field({ description: 'Capture time of the earliest hit.' })
  firstSeenAt: Date;

  @Field({ description: 'Capture time of the latest packet.' })
  lastSeenAt: Date;
}

@ObjectType({ description: 'Hits on one IOC entry. `ioc` and `iocList` resolve to the entry and its list (null if since removed).' })
export class IocRow extends GroupMeasures {
  iocId: number;
  iocListId: number;

  @Field({ description: 'The matched entry as it was when matched, e.g. "185.220.100.0/24".' })
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

  @Field({ description: 'The internal address.' })
  internalIp: string;

  @Field({ description: 'The matched entry as it was when matched.' })
  matchedCidr: string;

  @Field(() => Int, { description: 'Severity of the list when matched.' })
  severity: number;

  @Field(() => IocCategory, { description: 'Category of the list when matched.' })
  category: IocCategory;

  @Field(() => Int, { description: 'Flow hits.' })
  hits: number;

  @Field(() => SafeInt, { description: 'Packets, both ways.' })
  packets: number;

  @Field(() => [Int], { description: 'Destination ports seen (up to 20, ascending).' })
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
