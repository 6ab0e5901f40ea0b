import { Field, ObjectType } from 'type-graphql';
import { UserError } from '../../common/graphql/user-error.type';
import { UserErrorData } from '../../common/errors/user-error';
import { createPayload } from '../../common/graphql/user-error.type';
import { Connection } from '../../common/pagination/connection';
import { Account } from './account.entity';
import { Role } from './account.enums';
import { ApiKey } from './api-key.entity';

@ObjectType({ description: 'Who is calling: the account and the API key of this request.' })
export class Viewer {
  @Field(() => Account, { description: 'Your account.' })
  account: Account;

  @Field(() => ApiKey, { description: 'The API key this request was made with.' })
  apiKey: ApiKey;

  @Field(() => Role, { description: 'What this key may do.' })
  role: Role;
}

@ObjectType({ description: 'Result of `apiKeyCreate`. The secret is shown here once and never again.' })
export class ApiKeyCreatePayload {
  @Field(() => ApiKey, { nullable: true, description: 'The new key. Null when userErrors is not empty.' })
  apiKey: ApiKey | null;

  @Field(() => String, { nullable: true, description: 'The secret to send as "Authorization: Bearer <secret>". Store it now: only its hash is kept.' })
  secret: string | null;

  @Field(() => [UserError], { description: 'Why no key was created; empty on success.' })
  userErrors: UserErrorData[];
}

export const ApiKeyConnection = Connection(ApiKey, 'ApiKey', 'API key', 'API keys');
export const ApiKeyRevokePayload = createPayload('ApiKeyRevokePayload', 'apiKey', () => ApiKey, 'The revoked key.');
