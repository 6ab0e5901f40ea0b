import { Field, Int, ObjectType } from 'type-graphql';
import { Connection } from '../../common/pagination/connection';
import { SafeInt } from '../../common/graphql/safe-int.scalar';
import { createPayload, UserError } from '../../common/graphql/user-error.type';
import { UserErrorData } from '../../common/errors/user-error';
import { Device } from '../device/device.entity';
import { Policy } from '../policy/policy.entity';
import { AddressScope, FeedSkipCode, ImportMode, LookupVerdict } from './ioc.enums';
import { Ioc } from './ioc.entity';
import { IocList } from './ioc-list.entity';
import { IocDomain } from './ioc-domain.entity';

export const IocListConnection = Connection(IocList, 'IocList', 'IOC list', 'IOC lists');
export const IocConnection = Connection(Ioc, 'Ioc', 'IOC entry', 'IOC entries');
export const IocDomainConnection = Connection(IocDomain, 'IocDomain', 'domain entry', 'domain entries');
export const IocListCreatePayload = createPayload('IocListCreatePayload', 'iocList', () => IocList, 'The new list.');
export const IocListUpdatePayload = createPayload('IocListUpdatePayload', 'iocList', () => IocList, 'The list as changed.');
export const IocListDeletePayload = createPayload('IocListDeletePayload', 'iocList', () => IocList, 'The deleted list, as it was.');
export const PolicyAttachIocListsPayload = createPayload('PolicyAttachIocListsPayload', 'policy', () => Policy, 'The policy with its lists.');
export const PolicyDetachIocListsPayload = createPayload('PolicyDetachIocListsPayload', 'policy', () => Policy, 'The policy with its lists.');

@ObjectType({ description: 'Result of `iocAdd`.' })
export class IocAddPayload {
  @Field(() => IocList, { nullable: true, description: 'The list, with its new entry count. Null when userErrors is not empty.' })
  iocList: IocList | null;

  @Field(() => Int, { description: 'Entries added.' })
  added: number;

  @Field(() => Int, { description: 'Entries given twice in this call or already in the list (not added again).' })
  duplicates: number;

  @Field(() => [Ioc], { description: "The list's entries for the given values (new and existing), in address order." })
  iocs: Ioc[];

  @Field(() => [IocDomain], { description: "DOMAIN lists: the list's entries for the given names (new and existing), in name order; empty for IP lists." })
  domains: IocDomain[];

  @Field(() => [UserError], { description: 'Why nothing was added; empty on success.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'Result of `iocRemove`.' })
export class IocRemovePayload {
  @Field(() => [Ioc], { description: 'The removed address entries, as they were.' })
  removed: Ioc[];

  @Field(() => [IocDomain], { description: 'The removed entries of DOMAIN lists, as they were.' })
  removedDomains: IocDomain[];

  @Field(() => [UserError], { description: 'Why nothing was removed; empty on success.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'A line of a feed that was not imported.' })
export class IocSkippedLine {
  @Field(() => Int, { description: '1-based line number in the file.' })
  lineNumber: number;

  @Field({ description: 'The line (long lines are cut).' })
  text: string;

  @Field(() => FeedSkipCode, { description: 'Why it was skipped.' })
  code: FeedSkipCode;

  @Field({ description: 'Why it was skipped, for people (e.g. "\'C91.196.152.28\' is not an IP address or CIDR").' })
  reason: string;
}

@ObjectType({ description: 'What an import did.' })
export class IocImportSummary {
  @Field(() => ImportMode, { description: 'APPEND or REPLACE.' })
  mode: ImportMode;

  @Field(() => SafeInt, { description: 'Bytes read.' })
  bytes: number;

  @Field(() => Int, { description: 'Lines read, blank and comment lines included.' })
  linesRead: number;

  @Field(() => Int, { description: 'Entries added to the list.' })
  added: number;

  @Field(() => Int, { description: 'Entries not added because they repeat within the file or were already in the list.' })
  duplicates: number;

  @Field(() => Int, { description: 'Entries that repeat an earlier line of the file.' })
  duplicatesInFile: number;

  @Field(() => Int, { description: 'Entries the list already held: left as they are, IDs unchanged (APPEND and REPLACE).' })
  duplicatesInList: number;

  @Field(() => Int, { description: 'Lines that are not an address, CIDR or range (or too broad).' })
  skipped: number;

  @Field(() => Int, { description: 'Entry lines whose host bits were cleared (10.1.2.3/8 became 10.0.0.0/8).' })
  normalized: number;

  @Field(() => Int, { description: 'Entries removed because the file no longer has them (REPLACE).' })
  removed: number;

  @Field(() => [IocSkippedLine], { description: 'The first 100 skipped lines, with line number, text and reason.' })
  skippedLines: IocSkippedLine[];

  @Field(() => Int, { description: 'Time taken, in milliseconds.' })
  durationMs: number;
}

@ObjectType({ description: 'Result of `iocListImport`.' })
export class IocListImportPayload {
  @Field(() => IocList, { nullable: true, description: 'The list after the import. Null when userErrors is not empty.' })
  iocList: IocList | null;

  @Field(() => IocImportSummary, { nullable: true, description: 'Counts and skipped lines. Null when userErrors is not empty.' })
  summary: IocImportSummary | null;

  @Field(() => [UserError], { description: 'Why nothing was imported; empty on success.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'An entry that contains the looked-up address.' })
export class IocLookupMatch {
  @Field(() => Ioc, { description: 'The entry (its comment and expiry included).' })
  ioc: Ioc;

  @Field(() => IocList, { description: 'Its list: kind, severity, category, source.' })
  iocList: IocList;

  @Field({ description: 'False when the entry has expired (it no longer matches).' })
  active: boolean;
}

@ObjectType({ description: 'A domain entry that contains the looked-up name (the name itself or a parent of it).' })
export class IocDomainLookupMatch {
  @Field(() => IocDomain, { description: 'The entry (its comment and expiry included).' })
  domain: IocDomain;

  @Field(() => IocList, { description: 'Its list: kind, severity, category, source.' })
  iocList: IocList;

  @Field({ description: 'False when the entry has expired (it no longer matches).' })
  active: boolean;
}

@ObjectType({ description: 'A policy that includes a matching list, with its verdict and the devices that use it.' })
export class IocLookupPolicy {
  @Field(() => Policy, { description: 'The policy.' })
  policy: Policy;

  @Field(() => LookupVerdict, { description: 'What uploads of its devices would make of the address.' })
  verdict: LookupVerdict;

  @Field(() => [Device], { description: 'Devices using the policy.' })
  devices: Device[];
}

@ObjectType({ description: '"Why is this address flagged?": every entry in your account that contains it.' })
export class IocLookup {
  @Field({ description: 'The address, canonical (IPv4-mapped IPv6 is shown as IPv4).' })
  address: string;

  @Field({
    description: 'What kind of address it is, in words, e.g. "a public address" or "a private (RFC 1918) address" (`addressScope` is the same as an enum).',
  })
  scope: string;

  @Field(() => AddressScope, { description: 'What kind of address it is, as an enum a client can branch on (`scope` says it in words).' })
  addressScope: AddressScope;

  @Field({
    description:
      'Whether uploads match this address at all: internal and local-scope addresses (private, loopback, link-local, multicast, ...) never are, so bogon lists do not flag LAN chatter.',
  })
  matchable: boolean;

  @Field(() => String, { nullable: true, description: 'Why uploads never match this address (its scope); null when matchable.' })
  notMatchableReason: string | null;

  @Field(() => [IocLookupMatch], { description: 'Containing entries, most specific first.' })
  matches: IocLookupMatch[];

  @Field(() => String, {
    nullable: true,
    description: 'When a domain name was looked up: the name as entries are compared (lowercase ASCII, punycode, no trailing dot); null for an address.',
  })
  domain: string | null;

  @Field(() => [IocDomainLookupMatch], {
    description: 'When a domain name was looked up: the DOMAIN-list entries that contain it (the name or a parent), most specific first; empty for an address.',
  })
  domainMatches: IocDomainLookupMatch[];

  @Field(() => [IocLookupPolicy], { description: 'Policies that include a list with a containing entry.' })
  policies: IocLookupPolicy[];
}
