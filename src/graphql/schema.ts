import path from 'node:path';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, NonEmptyArray } from 'type-graphql';
import { NodeResolver } from '../common/node/node.resolver';
import { connectionResolvers } from '../common/pagination/connection';
import { authChecker } from '../modules/auth/auth.checker';
import { AccountResolver } from '../modules/account/account.resolver';
import { DeviceResolver } from '../modules/device/device.resolver';
import { PolicyResolver } from '../modules/policy/policy.resolver';

// eslint-disable-next-line @typescript-eslint/ban-types
export const resolvers: NonEmptyArray<Function> = [NodeResolver, AccountResolver, PolicyResolver, DeviceResolver, ...connectionResolvers];

export const SCHEMA_FILE = path.resolve(__dirname, '../../schema/schema.graphql');

/**
 * Validation is the services' job (failures are returned as userErrors), so type-graphql's
 * class-validator integration is off.
 */
export async function createSchema(): Promise<GraphQLSchema> {
  return buildSchema({ resolvers, authChecker, validate: false });
}

/** The committed SDL: sorted so that moving code around does not churn the file. */
export function printSchemaFile(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
