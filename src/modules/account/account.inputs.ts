import { Field, ID, InputType } from 'type-graphql';
import { Role } from './account.enums';

@InputType({ description: 'A new API key.' })
export class ApiKeyCreateInput {
  @Field({ description: 'A label for the key (1-100 characters), e.g. the capture host that will use it.' })
  name: string;

  @Field(() => Role, { description: 'What the key may do.' })
  role: Role;

  @Field(() => ID, {
    nullable: true,
    description: 'UPLOADER keys only: bind the key to this device, so the legacy form upload (`/logupload`) needs no other way to find it.',
  })
  device?: string | null;
}

@InputType({ description: 'The API key to revoke.' })
export class ApiKeyRevokeInput {
  @Field(() => ID, { description: 'Global ID of the key.' })
  id: string;
}
