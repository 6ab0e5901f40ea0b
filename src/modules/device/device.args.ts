import { ArgsType, Field } from 'type-graphql';
import { PageArgs } from '../../common/pagination/connection';
import { DeviceFilter } from './device.inputs';

@ArgsType()
export class DevicesArgs extends PageArgs {
  @Field(() => DeviceFilter, { nullable: true, description: 'Narrows the list.' })
  filter?: DeviceFilter | null;
}
