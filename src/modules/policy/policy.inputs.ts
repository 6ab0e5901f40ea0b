import { Field, ID, InputType } from 'type-graphql';

@InputType({ description: 'A new policy.' })
export class PolicyCreateInput {
  @Field({ description: 'Name, unique in the account (case-insensitive), 1-100 characters.' })
  name: string;

  @Field(() => String, { nullable: true, description: 'Free-text description, up to 2,000 characters.' })
  description?: string | null;
}

@InputType({ description: 'Changes to a policy; omitted fields stay as they are.' })
export class PolicyUpdateInput {
  @Field(() => ID, { description: 'The policy to change.' })
  id: string;

  @Field(() => String, { nullable: true, description: 'New name.' })
  name?: string | null;

  @Field(() => String, { nullable: true, description: 'New description; an empty string clears it.' })
  description?: string | null;
}

@InputType({ description: 'The policy to delete. Refused while a device uses it.' })
export class PolicyDeleteInput {
  @Field(() => ID, { description: 'The policy to delete.' })
  id: string;
}

@InputType({ description: 'Narrows the policies list.' })
export class PolicyFilter {
  @Field(() => String, { nullable: true, description: 'Only policies whose name contains this text (case-insensitive).' })
  nameContains?: string | null;
}
