import { ArgsType, Field } from 'type-graphql';
import { PageArgs } from '../../common/pagination/connection';
import { PolicyFilter } from './policy.inputs';

@ArgsType()
export class PoliciesArgs extends PageArgs {
  @Field(() => PolicyFilter, { nullable: true, description: 'Narrows the list.' })
  filter?: PolicyFilter | null;
}
