import { Field, ObjectType } from 'type-graphql';
import { Connection } from '../../common/pagination/connection';
import { createPayload, UserError } from '../../common/graphql/user-error.type';
import { UserErrorData } from '../../common/errors/user-error';
import { IocSource, IocSourceFetch } from './ioc-source.entity';

export const IocSourceConnection = Connection(IocSource, 'IocSource', 'IOC source', 'IOC sources');
export const IocSourceFetchConnection = Connection(IocSourceFetch, 'IocSourceFetch', 'fetch', 'fetches');
export const IocSourceCreatePayload = createPayload('IocSourceCreatePayload', 'iocSource', () => IocSource, 'The new source (due at once).');
export const IocSourceUpdatePayload = createPayload('IocSourceUpdatePayload', 'iocSource', () => IocSource, 'The source as changed.');
export const IocSourceDeletePayload = createPayload(
  'IocSourceDeletePayload',
  'iocSource',
  () => IocSource,
  'The deleted source, as it was (its list keeps its entries).',
);

@ObjectType({ description: 'Result of `iocSourceFetchNow`.' })
export class IocSourceFetchNowPayload {
  @Field(() => IocSource, { nullable: true, description: 'The source after the fetch. Null when userErrors is not empty.' })
  iocSource: IocSource | null;

  @Field(() => IocSourceFetch, { nullable: true, description: 'What the fetch did (also first in iocSource.fetches). Null when userErrors is not empty.' })
  fetch: IocSourceFetch | null;

  @Field(() => [UserError], { description: 'Why nothing was fetched; empty otherwise (a failed fetch is a fetch: see fetch.outcome).' })
  userErrors: UserErrorData[];
}
