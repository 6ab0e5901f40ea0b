import { ArgsType, Field, ID } from 'type-graphql';
import { PageArgs } from '../../common/pagination/connection';
import { IocFilter, IocListFilter } from './ioc.inputs';

@ArgsType()
export class IocListsArgs extends PageArgs {
  @Field(() => IocListFilter, { nullable: true, description: 'Narrows the list.' })
  filter?: IocListFilter | null;
}

@ArgsType()
export class IocEntriesArgs extends PageArgs {
  @Field(() => IocFilter, { nullable: true, description: 'Narrows the entries.' })
  filter?: IocFilter | null;
}

@ArgsType()
export class IocsArgs extends IocEntriesArgs {
  @Field(() => ID, { description: 'The list whose entries to return.' })
  list: string;
}

@ArgsType()
export class IocDomainsArgs extends PageArgs {
  @Field(() => String, { nullable: true, description: 'Only names containing this text (case-insensitive), e.g. a parent domain.' })
  nameContains?: string | null;
}
