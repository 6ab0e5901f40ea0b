import { ArgsType, Field } from 'type-graphql';
import { PageArgs } from '../../common/pagination/connection';
import { LogUploadFilter } from './log-upload.inputs';

@ArgsType()
export class LogUploadsArgs extends PageArgs {
  @Field(() => LogUploadFilter, { nullable: true, description: 'Narrows the list.' })
  filter?: LogUploadFilter | null;
}
