import { DataSource } from 'typeorm';
import { loadConfig } from '../config/config';
import { createDataSource, detectFlavor } from '../db/data-source';
import { migrate } from '../db/migrate';
import { createServices, Services } from '../app/services';
import { Role } from '../modules/account/account.enums';
import { Metrics } from '../app/metrics';

/** Thrown for wrong usage; printed without a stack, exit code 2. */
export class UsageError extends Error {}

/** Thrown when the command was used right but did not succeed (server refused, file unusable); exit code 1. */
export class CliFailure extends Error {}

/** Where a run reads and writes; tests pass their own streams and environment. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Only PCAP_DEFENSE_KEY and PCAP_DEFENSE_URL are read from it (database settings go through loadConfig). */
  env: Record<string, string | undefined>;
}

export interface Io extends CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}

/** Opens the configured database (running migrations, as the server does) for one command. */
export async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const dataSource: DataSource = createDataSource(await detectFlavor(config.database));
  await dataSource.initialize();
  try {
    // Under the same lock as the server's: a command run while servers start must not migrate alongside them.
    await migrate(dataSource);
    // A registry of its own without process collectors: a command is not scraped.
    return await work(createServices(dataSource, config, { metrics: new Metrics() }));
  } finally {
    await dataSource.destroy();
  }
}

export function parseRole(value: string | undefined): Role {
  const role = (value ?? '').toUpperCase() as Role;
  if (!Object.values(Role).includes(role)) throw new UsageError(`--role must be one of ${Object.values(Role).join(', ')}`);
  return role;
}

export async function accountByName(services: Services, name: string | undefined) {
  const wanted = name ?? services.config.defaultAccountName;
  const account = await services.accounts.findAccountByName(wanted);
  if (!account) throw new UsageError(`No account named "${wanted}".`);
  return account;
}

export function enumValue<T extends string>(values: Record<string, T>, raw: string | undefined, flag: string, fallback: T): T {
  if (raw === undefined) return fallback;
  const v = raw.toUpperCase() as T;
  if (!Object.values(values).includes(v)) throw new UsageError(`${flag} must be one of ${Object.values(values).join(', ')}`);
  return v;
}
