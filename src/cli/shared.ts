import fs from 'node:fs';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/config';
import { createDataSource, detectFlavor } from '../db/data-source';
import { migrate } from '../db/migrate';
import { createServices, Services } from '../app/services';
import { Role } from '../modules/account/account.enums';
import { Account } from '../modules/account/account.entity';
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
  /** Each flag (or positional) with what it does, for `<command> --help`. */
  flags: Array<[flag: string, meaning: string]>;
  /** Whole command lines to copy. */
  examples: string[];
  run(argv: string[], io: Io): Promise<number>;
}

/** The version in package.json, found from this file in the source tree and in dist/ alike. */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pcap-defense' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json of pcap-defense above ${__dirname}`);
  }
}

/** Where a command that can work through the API sends its requests: a GraphQL endpoint and an API key. */
export interface RemoteTarget {
  url: string;
  key: string;
}

/**
 * The server to talk to, when one is named (`--url` or PCAP_DEFENSE_URL); null to open the database instead.
 * A named server needs a key (`--key` or PCAP_DEFENSE_KEY) with the role the command needs.
 */
export function remoteTarget(values: { url?: string; key?: string }, io: Io, role: Role): RemoteTarget | null {
  const url = values.url ?? io.env.PCAP_DEFENSE_URL;
  if (url === undefined || url === '') {
    if (values.key !== undefined) throw new UsageError('--key is for a server: give --url URL or set PCAP_DEFENSE_URL too');
    return null;
  }
  const key = values.key ?? io.env.PCAP_DEFENSE_KEY;
  if (!key) throw new UsageError(`give --key KEY or set PCAP_DEFENSE_KEY (an ${role} API key) to use the server at ${url}`);
  return { url: httpUrl(url), key };
}

/** The URL as given, when it is http(s). */
export function httpUrl(url: string): string {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`--url must be an http(s) URL such as http://localhost:4000/graphql, not "${url}"`);
  return url;
}

/** Columns padded to their widest cell, for a person at a terminal (scripts get tab-separated lines). */
export function alignedTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)];
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

/**
 * The account a command works in: `--account NAME`, or the default account when it is not given. A name that
 * does not exist is refused, naming the accounts that do, unless `create` (the command's --create-account) is
 * set; a mistyped --account must not quietly become a new, empty account. `createDefault` makes the default
 * account when it is missing, as the server's first start does (only `key create`: a first key needs it).
 */
export async function resolveAccount(
  services: Services,
  name: string | undefined,
  options: { create?: boolean; createDefault?: boolean; canCreate: boolean },
): Promise<Account> {
  if (options.create && name === undefined) throw new UsageError('--create-account needs --account NAME');
  const wanted = name ?? services.config.defaultAccountName;
  const account = await services.accounts.findAccountByName(wanted);
  if (account) return account;
  if ((name !== undefined && options.create) || (name === undefined && options.createDefault)) {
    const created = await services.accounts.createAccount(wanted);
    if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
    return created.value;
  }
  const { accounts, total } = await services.accounts.listAccounts(20);
  const names = accounts.map((a) => `"${a.name}"`).join(', ') + (total > accounts.length ? ` and ${total - accounts.length} more` : '');
  throw new UsageError(
    `No account named "${wanted}". ${total ? `The accounts are: ${names}.` : 'There are no accounts yet.'} ` +
      (options.canCreate ? 'Give one of them, or add --create-account to create this one.' : 'Give one of them.'),
  );
}

/**
 * Over the API a key works in its own account only: an --account that names another one is refused (there is
 * no creating accounts through the API either; that needs the database, as the first key does).
 */
export function checkRemoteAccount(keyAccount: string, name: string | undefined, create: boolean | undefined): void {
  if (name !== undefined && name.trim() !== keyAccount) {
    throw new UsageError(
      `No account named "${name}" for this key: it belongs to account "${keyAccount}", and through the API a key works only in its own account. ` +
        'Give a key of that account, or run the command where the database is reachable (without --url and PCAP_DEFENSE_URL).',
    );
  }
  if (create && name === undefined) throw new UsageError('--create-account needs --account NAME');
}

export function enumValue<T extends string>(values: Record<string, T>, raw: string | undefined, flag: string, fallback: T): T {
  if (raw === undefined) return fallback;
  const v = raw.toUpperCase() as T;
  if (!Object.values(values).includes(v)) throw new UsageError(`${flag} must be one of ${Object.values(values).join(', ')}`);
  return v;
}
