import path from 'node:path';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, NonEmptyArray } from 'type-graphql';
import { NodeResolver } from '../common/node/node.resolver';
import { connectionResolvers } from '../common/pagination/connection';
import { authChecker } from '../modules/auth/auth.checker';
import { AccountResolver, ApiKeyResolver } from '../modules/account/account.resolver';
import { DeviceResolver } from '../modules/device/device.resolver';
import { PolicyResolver } from '../modules/policy/policy.resolver';
import { IocListResolver, IocLookupResolver, IocResolver } from '../modules/ioc/ioc.resolver';
import { LogUploadResolver } from '../modules/log-upload/log-upload.resolver';
import { FlowHitResolver } from '../modules/flow-hit/flow-hit.resolver';
import { DnsHitResolver, FlowHitDnsHitResolver, LogUploadDnsHitsResolver } from '../modules/dns-hit/dns-hit.resolver';
import { reportResolvers } from '../modules/report/report.resolver';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- type-graphql's resolvers option takes Function
export const resolvers: NonEmptyArray<Function> = [
  NodeResolver,
  AccountResolver,
  ApiKeyResolver,
  PolicyResolver,
  DeviceResolver,
  IocListResolver,
  IocResolver,
  IocLookupResolver,
  LogUploadResolver,
  FlowHitResolver,
  DnsHitResolver,
  LogUploadDnsHitsResolver,
  FlowHitDnsHitResolver,
  ...reportResolvers,
  ...connectionResolvers,
];

export const SCHEMA_FILE = path.resolve(__dirname, '../../schema/schema.graphql');

/**
 * Validation is the services' job (failures are returned as userErrors), so type-graphql's
 * class-validator integration is off.
 */
export async function createSchema(): Promise<GraphQLSchema> {
  const schema = await buildSchema({ resolvers, authChecker, validate: false });
  // type-graphql has no option for the root types' descriptions; analysts see them first in Sandbox.
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  if (query)
    query.description = 'Read your account\'s devices, policies, IOC lists, uploads and hit reports. Every request needs "Authorization: Bearer <key>".';
  if (mutation) mutation.description = 'Change your account. Expected failures come back as `userErrors` in each payload; nothing is changed then.';
  return schema;
}

/** The committed SDL: sorted so that moving code around does not churn the file. */
export function printSchemaFile(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
