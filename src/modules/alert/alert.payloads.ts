import { Field, ObjectType } from 'type-graphql';
import { Connection } from '../../common/pagination/connection';
import { createPayload, UserError } from '../../common/graphql/user-error.type';
import { UserErrorData } from '../../common/errors/user-error';
import { AlertDestination } from './alert-destination.entity';
import { AlertDelivery } from './alert-delivery.entity';
import { AlertRule } from './alert-rule.entity';

export const AlertDeliveryConnection = Connection(AlertDelivery, 'AlertDelivery', 'alert delivery', 'alert deliveries');
export const AlertRuleCreatePayload = createPayload('AlertRuleCreatePayload', 'alertRule', () => AlertRule, 'The new rule.');
export const AlertRuleUpdatePayload = createPayload('AlertRuleUpdatePayload', 'alertRule', () => AlertRule, 'The rule as changed.');
export const AlertRuleDeletePayload = createPayload('AlertRuleDeletePayload', 'alertRule', () => AlertRule, 'The deleted rule, as it was.');
export const AlertDestinationDeletePayload = createPayload(
  'AlertDestinationDeletePayload',
  'alertDestination',
  () => AlertDestination,
  'The deleted destination, as it was.',
);

@ObjectType({ description: 'Result of `alertDestinationCreate`.' })
export class AlertDestinationCreatePayload {
  @Field(() => AlertDestination, { nullable: true, description: 'The new destination. Null when userErrors is not empty.' })
  alertDestination: AlertDestination | null;

  @Field(() => String, {
    nullable: true,
    description: "A webhook's signing secret (HMAC-SHA256 key): shown here once, never again. Null for other kinds.",
  })
  secret: string | null;

  @Field(() => [UserError], { description: 'Why the mutation did nothing; empty on success.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'Result of `alertDestinationUpdate`.' })
export class AlertDestinationUpdatePayload {
  @Field(() => AlertDestination, { nullable: true, description: 'The destination as changed. Null when userErrors is not empty.' })
  alertDestination: AlertDestination | null;

  @Field(() => String, { nullable: true, description: "A webhook's new signing secret when rotateSecret was asked: shown here once, never again." })
  secret: string | null;

  @Field(() => [UserError], { description: 'Why the mutation did nothing; empty on success.' })
  userErrors: UserErrorData[];
}

@ObjectType({ description: 'Result of `alertDestinationTest`.' })
export class AlertDestinationTestPayload {
  @Field(() => AlertDestination, { nullable: true, description: 'The destination, marked failing or not by the test. Null when userErrors is not empty.' })
  alertDestination: AlertDestination | null;

  @Field({ description: 'Whether the destination accepted the sample alert.' })
  delivered: boolean;

  @Field(() => String, { nullable: true, description: 'Why it did not.' })
  error: string | null;

  @Field(() => [UserError], { description: 'Why the mutation did nothing; empty on success.' })
  userErrors: UserErrorData[];
}
