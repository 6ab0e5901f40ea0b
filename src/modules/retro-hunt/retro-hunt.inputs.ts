import { Field, ID, InputType } from 'type-graphql';

@InputType({ description: 'What a retro-hunt started by hand re-judges.' })
export class RetroHuntStartInput {
  @Field(() => [ID], {
    nullable: true,
    description: "Only where these lists' entries occur (their policies' devices, unless devices are given); absent: any address.",
  })
  lists?: string[] | null;

  @Field(() => [ID], { nullable: true, description: 'Only uploads of these devices; absent: every device (of the lists’ policies when lists are given).' })
  devices?: string[] | null;

  @Field(() => Date, { nullable: true, description: 'Only uploads received since then; absent: every stored upload.' })
  since?: Date | null;
}
