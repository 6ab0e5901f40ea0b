import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { Direction, HitKind } from '../flow-hit/flow-hit.enums';

@InputType({ description: "Which of the upload's hits count: an event is sent when some pass. Left out: all of them." })
export class HitsFoundFilter {
  @Field(() => [ID], { nullable: true, description: 'Only hits of these devices.' })
  devices?: string[] | null;

  @Field(() => Int, { nullable: true, description: 'Only hits of this severity (0-5) or higher.' })
  minSeverity?: number | null;

  @Field(() => [Direction], {
    nullable: true,
    description: "Only hits in these directions (a DNS hit's is the querying host's: OUTBOUND when it is inside).",
  })
  directions?: Direction[] | null;

  @Field(() => [HitKind], {
    nullable: true,
    description: 'Only hits of these kinds: IP (connections with a listed address), DNS (questions for a listed name). Left out: both.',
  })
  kinds?: HitKind[] | null;
}

@ObjectType({ description: 'Hits were found in an upload (by whichever server processed it).' })
export class HitsFoundEvent {
  uploadId: number;

  @Field(() => Int, { description: 'All the hits the upload has that pass the filter (those found before too), of both kinds: ipHitCount + dnsHitCount.' })
  hitCount: number;

  @Field(() => Int, { description: 'Of them, IP hits (flow hits: one per connection with a listed address).' })
  ipHitCount: number;

  @Field(() => Int, { description: 'Of them, DNS hits (one per querying host, name and question type; see dnsHits).' })
  dnsHitCount: number;

  @Field(() => Int, { description: 'The highest severity among them.' })
  maxSeverity: number;
}
