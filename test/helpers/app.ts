import request from 'supertest';
import { DataSource } from 'typeorm';
import { GraphQLSchema } from 'graphql';
import { loadConfig, AppConfig } from '../../src/config/config';
import { createDataSource } from '../../src/db/data-source';
import { createHttpApp, HttpApp } from '../../src/app/http-app';
import { createLogger, silentLogger } from '../../src/app/logger';
import { createServices, ServiceOptions, Services } from '../../src/app/services';
import { createSchema } from '../../src/graphql/schema';
import { Role } from '../../src/modules/account/account.enums';
import { createTestDatabase, Driver } from './db';

let schemaPromise: Promise<GraphQLSchema> | null = null;
const schemaOnce = () => (schemaPromise ??= createSchema());

export interface GqlResult<T = any> {
  status: number;
  data: T;
  errors?: Array<{ message: string; extensions?: { code?: string }; path?: string[] }>;
  body: any;
}

export interface TestApp {
  driver: Driver;
  config: AppConfig;
  dataSource: DataSource;
  services: Services;
  http: HttpApp;
  /** Secrets of account A's keys per role, and of account B's admin. */
  keys: { admin: string; analyst: string; uploader: string; otherAdmin: string };
  accountId: number;
  otherAccountId: number;
  gql<T = any>(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

/**
 * The whole HTTP pipeline (express, Apollo, auth) over a fresh database, with two accounts:
 * A (keys for every role) and B (an admin), so every test can check that B's objects look missing to A.
 */
export async function createTestApp(driver: Driver, env: Record<string, string> = {}, options: ServiceOptions = {}): Promise<TestApp> {
  const db = await createTestDatabase(driver);
  // The event-loop lag check stays off unless a test turns it on: tests assert behaviour, and a shared CI machine
  // stalls the test process now and then (test/reliability/report-admission.test.ts covers the check).
  const config: AppConfig = { ...loadConfig({ NODE_ENV: 'test', REPORT_MAX_EVENT_LOOP_LAG_MS: '0', ...env }), database: db.config };
  const dataSource = createDataSource(db.config);
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  const services = createServices(dataSource, config, options);
  const boot = await services.accounts.bootstrap('account-a');
  if (!boot) throw new Error('bootstrap did not create the first account');
  const accountId = boot.apiKey.accountId;
  const key = async (account: number, role: Role) => {
    const created = await services.accounts.createApiKey(account, { name: `test ${role}`, role });
    if (!created.ok) throw new Error('key creation failed');
    return created.value.secret;
  };
  const other = await services.accounts.createAccount('account-b');
  if (!other.ok) throw new Error('second account failed');
  // As the server does at start: reports read the in-memory store from the first query (it follows every
  // change from here on), unless REPORT_MEMORY_MAX_HITS=0 sends them to SQL.
  await services.reportMemory.warm(accountId);
  await services.reportMemory.warm(other.value.id);
  // TEST_LOG=1 shows masked errors while debugging; options.logger (e.g. captureLog) serves both services and HTTP.
  const http = await createHttpApp(await schemaOnce(), services, options.logger ?? (process.env.TEST_LOG ? createLogger('error') : silentLogger()));
  const keys = {
    admin: boot.secret,
    analyst: await key(accountId, Role.ANALYST),
    uploader: await key(accountId, Role.UPLOADER),
    otherAdmin: await key(other.value.id, Role.ADMIN),
  };
  return {
    driver,
    config,
    dataSource,
    services,
    http,
    keys,
    accountId,
    otherAccountId: other.value.id,
    async gql(query, variables = {}, key = keys.admin) {
      const req = request(http.app).post('/graphql').set('content-type', 'application/json');
      if (key) req.set('authorization', `Bearer ${key}`);
      const res = await req.send({ query, variables });
      return { status: res.status, data: res.body?.data, errors: res.body?.errors, body: res.body };
    },
    async close() {
      services.reportMemory.close();
      services.admission.close();
      services.exportAdmission.close();
      await services.indexWarmer.stop();
      await services.parsers?.close();
      await services.reportThreads?.close();
      await http.apollo.stop();
      await services.databaseProbe.close();
      await services.analytics?.close();
      if (dataSource.isInitialized) await dataSource.destroy();
      await db.drop();
    },
  };
}

/** Fails the test with the GraphQL errors when there are any, and returns `data`. */
export function ok<T>(result: GqlResult<T>): T {
  if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/** A GraphQL multipart request (graphql-multipart-request-spec) with one file at `variables.<filePath>`. */
export async function gqlUpload(
  t: TestApp,
  query: string,
  variables: Record<string, unknown>,
  filePath: string,
  file: Buffer | string,
  options: { key?: string | null; filename?: string; preflight?: boolean } = {},
): Promise<GqlResult> {
  const req = request(t.http.app).post('/graphql');
  const key = options.key === undefined ? t.keys.admin : options.key;
  if (key) req.set('authorization', `Bearer ${key}`);
  if (options.preflight !== false) req.set('apollo-require-preflight', 'true');
  const res = await req
    .field('operations', JSON.stringify({ query, variables }))
    .field('map', JSON.stringify({ 0: [`variables.${filePath}`] }))
    .attach('0', typeof file === 'string' ? Buffer.from(file) : file, options.filename ?? 'upload.txt');
  return { status: res.status, data: res.body?.data, errors: res.body?.errors, body: res.body };
}
