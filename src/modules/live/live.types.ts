import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { Direction } from '../flow-hit/flow-hit.enums';

@InputType({ description: 'Which new hits hitsFound reports. Left out: all of them.' })
export class HitsFoundFilter {
  @Field(() => [ID], { nullable: true, description: 'Only hits of these devices.' })
  devices?: string[] | null;

  @Field(() => Int, { nullable: true, description: 'Only hits of this severity (0-5) or higher.' })
  minSeverity?: number | null;

  @Field(() => [Direction], { nullable: true, description: 'Only hits in these directions.' })
  directions?: Direction[] | null;
}

@ObjectType({ description: 'Hits were found in an upload (by whichever server processed it).' })
export class HitsFoundEvent {
  uploadId: number;

  @Field(() => Int, { description: 'Hits of the upload that pass the filter.' })
  hitCount: number;

  @Field(() => Int, { description: 'The highest severity among them.' })
  maxSeverity: number;
}
