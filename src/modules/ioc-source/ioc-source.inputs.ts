import { Field, ID, InputType, Int } from 'type-graphql';
import { IocSourceFormat } from './ioc-source.enums';

@InputType({ description: 'A header sent with every fetch of a source (e.g. an API key). Its value is stored and never shown again.' })
export class IocSourceHeaderInput {
  @Field({ description: 'Header name, e.g. "Authorization".' })
  name: string;

  @Field({ description: 'Header value: a secret, never returned by the API nor logged.' })
  value: string;
}

@InputType({ description: 'A new threat-intel source.' })
export class IocSourceCreateInput {
  @Field(() => ID, { description: 'The list the feed replaces on each fetch.' })
  list: string;

  @Field({ description: 'Feed URL (http or https, no credentials in it: use a header).' })
  url: string;

  @Field(() => IocSourceFormat, { nullable: true, description: 'How the body is parsed; AUTO (the default) detects.' })
  format?: IocSourceFormat | null;

  @Field(() => Int, { description: 'Seconds between fetches (at least IOC_SOURCE_MIN_EVERY_S, at most 30 days).' })
  everySeconds: number;

  @Field(() => [IocSourceHeaderInput], { nullable: true, description: 'Headers sent with each request.' })
  headers?: IocSourceHeaderInput[] | null;
}

@InputType({ description: 'Changes to a source; omitted fields stay as they are.' })
export class IocSourceUpdateInput {
  @Field(() => ID, { description: 'The source to change.' })
  id: string;

  @Field(() => String, { nullable: true, description: 'New URL (the next fetch is unconditional).' })
  url?: string | null;

  @Field(() => IocSourceFormat, { nullable: true, description: 'New format.' })
  format?: IocSourceFormat | null;

  @Field(() => Int, { nullable: true, description: 'New schedule, in seconds.' })
  everySeconds?: number | null;

  @Field(() => [IocSourceHeaderInput], { nullable: true, description: 'Replaces every stored header (an empty list removes them all).' })
  headers?: IocSourceHeaderInput[] | null;
}

@InputType({ description: 'Names a source.' })
export class IocSourceIdInput {
  @Field(() => ID, { description: 'The source.' })
  id: string;
}
