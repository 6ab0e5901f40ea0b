import { Field, ID, InputType, Int } from 'type-graphql';
import { Direction, TimeRangePreset } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';

@InputType({
  description: 'Which DNS hits to list. A window is required: `from`+`to` or a `preset`, on capture time (first query). All given conditions must hold.',
})
export class DnsHitFilter {
  @Field(() => Date, { nullable: true, description: 'Start of the window (inclusive), on capture time. Give with `to`, or use `preset`.' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'End of the window (exclusive).' })
  to?: Date | null;

  @Field(() => TimeRangePreset, { nullable: true, description: 'A window ending now, instead of from/to.' })
  preset?: TimeRangePreset | null;

  @Field(() => [ID], { nullable: true, description: 'Only hits from these devices.' })
  devices?: string[] | null;

  @Field(() => [Direction], { nullable: true, description: 'Only these directions.' })
  directions?: Direction[] | null;

  @Field(() => Int, { nullable: true, description: 'Only hits at least this severe (0-5).' })
  minSeverity?: number | null;

  @Field(() => [ID], { nullable: true, description: 'Only hits on these IOC lists.' })
  iocLists?: string[] | null;

  @Field(() => [IocCategory], { nullable: true, description: 'Only hits on lists of these categories.' })
  categories?: IocCategory[] | null;

  @Field(() => String, { nullable: true, description: 'Only questions for this name or a name under it (case and a trailing dot are ignored).' })
  name?: string | null;
}
