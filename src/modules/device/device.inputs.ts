import { Field, ID, InputType } from 'type-graphql';
import { IpType } from './device.enums';

@InputType({ description: 'A new PCAP device.' })
export class DeviceCreateInput {
  @Field({ description: 'Identifies the device in reports; 1-64 characters, unique in the account (case-insensitive).' })
  nickname: string;

  @Field(() => IpType, { description: 'STATIC (give ipAddress) or DYNAMIC (give domainName).' })
  ipType: IpType;

  @Field(() => String, { nullable: true, description: "STATIC only: the device's public IPv4 or IPv6 address." })
  ipAddress?: string | null;

  @Field(() => String, { nullable: true, description: 'DYNAMIC only: a fully-qualified DNS name (A/AAAA record) kept pointing at the device.' })
  domainName?: string | null;

  @Field(() => ID, { description: "The policy whose IOC lists this device's uploads are matched against." })
  policy: string;

  @Field(() => String, { nullable: true, description: 'Optional note, up to 1,000 characters.' })
  note?: string | null;

  @Field(() => [String], { nullable: true, description: 'CIDRs treated as inside the network for direction, beyond RFC 1918 and fc00::/7.' })
  internalNetworks?: string[] | null;

  @Field(() => Boolean, {
    nullable: true,
    description: "Let the legacy form upload identify this device by the uploader's address (default false).",
  })
  identifyByUploaderIp?: boolean | null;
}

@InputType({ description: "Changes to a device; omitted fields stay as they are. Changing ipType drops the other type's address field." })
export class DeviceUpdateInput {
  @Field(() => ID, { description: 'The device to change.' })
  id: string;

  @Field(() => String, { nullable: true, description: 'New nickname.' })
  nickname?: string | null;

  @Field(() => IpType, { nullable: true, description: 'New IP type.' })
  ipType?: IpType | null;

  @Field(() => String, { nullable: true, description: 'New public IP address (STATIC).' })
  ipAddress?: string | null;

  @Field(() => String, { nullable: true, description: 'New DNS name (DYNAMIC).' })
  domainName?: string | null;

  @Field(() => ID, { nullable: true, description: 'New policy.' })
  policy?: string | null;

  @Field(() => String, { nullable: true, description: 'New note; an empty string clears it.' })
  note?: string | null;

  @Field(() => [String], { nullable: true, description: 'New internal networks (replaces the list; [] clears it).' })
  internalNetworks?: string[] | null;

  @Field(() => Boolean, { nullable: true, description: "Whether the legacy form upload may identify the device by the uploader's address." })
  identifyByUploaderIp?: boolean | null;
}

@InputType({ description: 'The device to delete.' })
export class DeviceDeleteInput {
  @Field(() => ID, { description: 'The device to delete.' })
  id: string;
}

@InputType({ description: 'Narrows the devices list; all given conditions must hold.' })
export class DeviceFilter {
  @Field(() => String, { nullable: true, description: 'Only devices whose nickname contains this text (case-insensitive).' })
  nicknameContains?: string | null;

  @Field(() => String, { nullable: true, description: 'Only STATIC devices with this IP address.' })
  ipAddress?: string | null;

  @Field(() => [ID], { nullable: true, description: 'Only devices using one of these policies.' })
  policies?: string[] | null;
}
