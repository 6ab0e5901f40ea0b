import { Field, InputType, Int } from 'type-graphql';
import { HitWindowFilter } from '../flow-hit/hit-filter.inputs';

@InputType({
  description: 'Which DNS hits to list. A window is required: `from`+`to` or a `preset`, on capture time (first query). All given conditions must hold.',
})
export class DnsHitFilter extends HitWindowFilter {
  @Field(() => String, { nullable: true, description: 'Only questions for this name or a name under it (case and a trailing dot are ignored).' })
  name?: string | null;

  @Field(() => [Int], { nullable: true, description: 'Only these severities.' })
  severities?: number[] | null;

  @Field(() => String, { nullable: true, description: 'Only questions asked by this internal host (one address).' })
  internalAddress?: string | null;
}
