import path from 'node:path';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, NonEmptyArray, PubSub } from 'type-graphql';
import { NodeResolver } from '../common/node/node.resolver';
import { connectionResolvers } from '../common/pagination/connection';
import { authChecker } from '../modules/auth/auth.checker';
import { AccountResolver, ApiKeyResolver } from '../modules/account/account.resolver';
import { DeviceResolver } from '../modules/device/device.resolver';
import { PolicyResolver } from '../modules/policy/policy.resolver';
import { IocDomainResolver, IocListResolver, IocLookupResolver, IocResolver, IocScopeResolver } from '../modules/ioc/ioc.resolver';
import { IocSourceFetchResolver, IocSourceResolver } from '../modules/ioc-source/ioc-source.resolver';
import { LogUploadResolver } from '../modules/log-upload/log-upload.resolver';
import { FlowHitResolver } from '../modules/flow-hit/flow-hit.resolver';
import { DnsHitResolver, FlowHitDnsHitResolver, LogUploadDnsHitsResolver } from '../modules/dns-hit/dns-hit.resolver';
import { reportResolvers } from '../modules/report/report.resolver';
import { AlertDeliveryResolver, AlertDestinationResolver, AlertResolver, AlertRuleResolver } from '../modules/alert/alert.resolver';
import { LiveResolver } from '../modules/live/live.resolver';
import { FlowHitTriageResolver, HitTriageResolver } from '../modules/flow-hit/hit-triage.resolver';
import { FlowHitFoundResolver, RetroHuntResolver } from '../modules/retro-hunt/retro-hunt.resolver';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- type-graphql's resolvers option takes Function
export const resolvers: NonEmptyArray<Function> = [
  NodeResolver,
  AccountResolver,
  ApiKeyResolver,
  PolicyResolver,
  DeviceResolver,
  IocListResolver,
  IocResolver,
  IocScopeResolver,
  IocDomainResolver,
  IocSourceResolver,
  IocSourceFetchResolver,
  IocLookupResolver,
  LogUploadResolver,
  FlowHitResolver,
  RetroHuntResolver,
  FlowHitFoundResolver,
  FlowHitTriageResolver,
  HitTriageResolver,
  DnsHitResolver,
  LogUploadDnsHitsResolver,
  FlowHitDnsHitResolver,
  ...reportResolvers,
  AlertDestinationResolver,
  AlertRuleResolver,
  AlertDeliveryResolver,
  AlertResolver,
  LiveResolver,
  ...connectionResolvers,
];

const UNUSED_PUBSUB: PubSub = {
  publish: () => {
    throw new Error('subscriptions subscribe through the LiveFeed');
  },
  subscribe: () => {
    throw new Error('subscriptions subscribe through the LiveFeed');
  },
};

export const SCHEMA_FILE = path.resolve(__dirname, '../../schema/schema.graphql');

/**
 * Validation is the services' job (failures are returned as userErrors), so type-graphql's
 * class-validator integration is off.
 */
export async function createSchema(): Promise<GraphQLSchema> {
  // type-graphql asks for a pubSub whenever there are subscriptions; ours each bring their own `subscribe` (over the
  // process's LiveFeed, which reads the database: events cross processes), so this one never carries an event.
  const schema = await buildSchema({ resolvers, authChecker, validate: false, pubSub: UNUSED_PUBSUB });
  // type-graphql has no option for the root types' descriptions; analysts see them first in Sandbox.
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  if (query)
    query.description = 'Read your account\'s devices, policies, IOC lists, uploads and hit reports. Every request needs "Authorization: Bearer <key>".';
  const subscription = schema.getSubscriptionType();
  if (subscription)
    subscription.description = 'Live updates over the graphql-ws protocol at /graphql, authenticated with { apiKey } in the connection parameters.';
  if (mutation) mutation.description = 'Change your account. Expected failures come back as `userErrors` in each payload; nothing is changed then.';
  return schema;
}

/** The committed SDL: sorted so that moving code around does not churn the file. */
export function printSchemaFile(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
