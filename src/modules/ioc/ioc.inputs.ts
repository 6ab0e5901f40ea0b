import { Field, ID, InputType, Int } from 'type-graphql';
import { GraphQLUpload } from 'graphql-upload-minimal';
import type { FileUpload } from 'graphql-upload-minimal';
import { ImportMode, IocCategory, IocEntryKind, IocListKind, SEVERITY_DESCRIPTION } from './ioc.enums';

@InputType({ description: 'A new IOC list.' })
export class IocListCreateInput {
  @Field({ description: 'Name, unique in the account (case-insensitive), 1-100 characters.' })
  name: string;

  @Field(() => IocListKind, { description: 'BLOCK or ALLOW.' })
  kind: IocListKind;

  @Field(() => IocEntryKind, { nullable: true, description: 'IP (default): addresses and networks; DOMAIN: domain names. Fixed for the life of the list.' })
  entryKind?: IocEntryKind | null;

  @Field(() => Int, { description: SEVERITY_DESCRIPTION })
  severity: number;

  @Field(() => IocCategory, { description: 'Threat type.' })
  category: IocCategory;

  @Field(() => String, { nullable: true, description: 'Source name, e.g. "Spamhaus DROP".' })
  sourceName?: string | null;

  @Field(() => String, { nullable: true, description: 'Reference URL (http or https).' })
  referenceUrl?: string | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Seconds an imported entry matches after a feed first held it (60 to 315,360,000, i.e. 10 years); omitted: no limit.',
  })
  entryLifetimeSeconds?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Seconds an imported entry keeps matching after the last feed that held it (60 to 315,360,000); omitted: none, a REPLACE removes at once.',
  })
  ageingGraceSeconds?: number | null;

  @Field(() => String, { nullable: true, description: 'Free-text description.' })
  description?: string | null;
}

@InputType({ description: 'Changes to an IOC list; omitted fields stay as they are.' })
export class IocListUpdateInput {
  @Field(() => ID, { description: 'The list to change.' })
  id: string;

  @Field(() => String, { nullable: true, description: 'New name.' })
  name?: string | null;

  @Field(() => IocListKind, { nullable: true, description: 'New kind.' })
  kind?: IocListKind | null;

  @Field(() => Int, { nullable: true, description: 'New severity (0-5).' })
  severity?: number | null;

  @Field(() => IocCategory, { nullable: true, description: 'New category.' })
  category?: IocCategory | null;

  @Field(() => String, { nullable: true, description: 'New source name; an empty string clears it.' })
  sourceName?: string | null;

  @Field(() => String, { nullable: true, description: 'New reference URL; an empty string clears it.' })
  referenceUrl?: string | null;

  @Field(() => Int, { nullable: true, description: 'New lifetime of imported entries in seconds (60 to 315,360,000); 0 removes the limit.' })
  entryLifetimeSeconds?: number | null;

  @Field(() => Int, { nullable: true, description: 'New grace period of imported entries in seconds (60 to 315,360,000); 0 removes it.' })
  ageingGraceSeconds?: number | null;

  @Field(() => String, { nullable: true, description: 'New description; an empty string clears it.' })
  description?: string | null;
}

@InputType({ description: 'The IOC list to delete (with its entries). Refused while a policy uses it.' })
export class IocListDeleteInput {
  @Field(() => ID, { description: 'The list to delete.' })
  id: string;
}

@InputType({ description: 'Narrows the IOC lists; all given conditions must hold.' })
export class IocListFilter {
  @Field(() => String, { nullable: true, description: 'Name contains this text (case-insensitive).' })
  nameContains?: string | null;

  @Field(() => [IocListKind], { nullable: true, description: 'Only these kinds.' })
  kinds?: IocListKind[] | null;

  @Field(() => [Int], { nullable: true, description: 'Only these severities.' })
  severities?: number[] | null;

  @Field(() => Int, { nullable: true, description: 'Only lists at least this severe.' })
  minSeverity?: number | null;

  @Field(() => [IocCategory], { nullable: true, description: 'Only these categories.' })
  categories?: IocCategory[] | null;
}

@InputType({ description: 'One entry to add.' })
export class IocEntryInput {
  @Field({
    description:
      'An IPv4/IPv6 address, a CIDR (host bits are cleared: 10.1.2.3/8 is stored as 10.0.0.0/8) or a range a.b.c.d-e.f.g.h (stored as the fewest CIDRs). IPv4 broader than /8 and IPv6 broader than /16 are refused.',
  })
  value: string;

  @Field(() => String, { nullable: true, description: 'Optional comment, up to 500 characters.' })
  comment?: string | null;

  @Field(() => Date, { nullable: true, description: 'Optional expiry; after it the entry never matches.' })
  expiresAt?: Date | null;
}

@InputType({ description: 'Entries to add to a list (at most 1,000; import a feed file for more).' })
export class IocAddInput {
  @Field(() => ID, { description: 'The list.' })
  list: string;

  @Field(() => [IocEntryInput], { description: 'The entries. One invalid entry refuses the whole call.' })
  entries: IocEntryInput[];
}

@InputType({ description: 'Entries to remove, by ID.' })
export class IocRemoveInput {
  @Field(() => [ID], {
    description: "Entry IDs (at most 1,000): of address entries (`Ioc`) or of DOMAIN lists' entries (`IocDomain`). An unknown ID refuses the whole call.",
  })
  ids: string[];
}

@InputType({ description: 'Narrows the entries of a list; all given conditions must hold.' })
export class IocFilter {
  @Field(() => String, { nullable: true, description: 'Only entries that contain this address.' })
  address?: string | null;

  @Field(() => String, { nullable: true, description: 'Only entries that lie inside this network (CIDR).' })
  within?: string | null;

  @Field(() => String, { nullable: true, description: 'Only entries whose comment contains this text (case-insensitive).' })
  commentContains?: string | null;
}

@InputType({ description: 'A feed file to import into a list (GraphQL multipart upload).' })
export class IocListImportInput {
  @Field(() => ID, { description: 'The list to import into.' })
  list: string;

  @Field(() => GraphQLUpload, {
    description:
      'The feed: one address, CIDR or range per line; `#` and `;` comments; Spamhaus DROP, ipsum (IP<TAB>count), maltrail (IP # host) and FireHOL formats are read as they are.',
  })
  file: Promise<FileUpload>;

  @Field(() => ImportMode, { nullable: true, description: 'APPEND (default) or REPLACE.' })
  mode?: ImportMode | null;
}

@InputType({ description: 'Lists to attach to or detach from a policy.' })
export class PolicyIocListsInput {
  @Field(() => ID, { description: 'The policy.' })
  policy: string;

  @Field(() => [ID], { description: 'The IOC lists.' })
  iocLists: string[];
}
