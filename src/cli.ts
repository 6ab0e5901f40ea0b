import 'reflect-metadata';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { DataSource } from 'typeorm';
import { ConfigError, loadConfig } from './config/config';
import { createDataSource, detectFlavor } from './db/data-source';
import { createServices, Services } from './app/services';
import { Role } from './modules/account/account.enums';
import { toGlobalId } from './common/ids/global-id';
import { ImportMode, IocCategory, IocListKind } from './modules/ioc/ioc.enums';
import { IocList } from './modules/ioc/ioc-list.entity';

/** Thrown for wrong usage; printed without a stack, exit code 2. */
class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

/** Opens the configured database (running migrations, as the server does) for one command. */
async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const dataSource: DataSource = createDataSource(await detectFlavor(config.database));
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
    return await work(createServices(dataSource, config));
  } finally {
    await dataSource.destroy();
  }
}

function parseRole(value: string | undefined): Role {
  const role = (value ?? '').toUpperCase() as Role;
  if (!Object.values(Role).includes(role)) throw new UsageError(`--role must be one of ${Object.values(Role).join(', ')}`);
  return role;
}

async function accountByName(services: Services, name: string | undefined) {
  const wanted = name ?? services.config.defaultAccountName;
  const account = await services.accounts.findAccountByName(wanted);
  if (!account) throw new UsageError(`No account named "${wanted}".`);
  return account;
}

function enumValue<T extends string>(values: Record<string, T>, raw: string | undefined, flag: string, fallback: T): T {
  if (raw === undefined) return fallback;
  const v = raw.toUpperCase() as T;
  if (!Object.values(values).includes(v)) throw new UsageError(`${flag} must be one of ${Object.values(values).join(', ')}`);
  return v;
}

const commands: Record<string, Command> = {
  'ioc import': {
    summary: 'Import a feed file into an IOC list (created when --create is given and it does not exist).',
    usage:
      'ioc import FILE --list NAME [--mode APPEND|REPLACE] [--create --kind BLOCK|ALLOW --severity 0-5 --category CATEGORY --source NAME] [--account NAME] [--json]',
    async run(argv) {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          list: { type: 'string' },
          mode: { type: 'string' },
          create: { type: 'boolean' },
          kind: { type: 'string' },
          severity: { type: 'string' },
          category: { type: 'string' },
          source: { type: 'string' },
          account: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
      if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
      if (!values.list) throw new UsageError('--list NAME is required');
      const file = positionals[0];
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch {
        throw new UsageError(`cannot read ${file}`);
      }
      const mode = enumValue(ImportMode, values.mode, '--mode', ImportMode.APPEND);
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        let list = await services.dataSource.getRepository(IocList).findOneBy({ accountId: account.id, nameKey: values.list!.trim().toLowerCase() });
        if (!list) {
          if (!values.create) throw new UsageError(`No IOC list named "${values.list}" (add --create to make it).`);
          const created = await services.iocLists.create(account.id, {
            name: values.list,
            kind: enumValue(IocListKind, values.kind, '--kind', IocListKind.BLOCK),
            severity: values.severity === undefined ? 3 : Number(values.severity),
            category: enumValue(IocCategory, values.category, '--category', IocCategory.OTHER),
            sourceName: values.source ?? null,
          });
          if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
          list = created.value;
        }
        const result = await services.feedImport.importFile(account.id, list.id, { path: file, bytes: stat.size }, mode);
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        const r = result.value;
        if (values.json) {
          const { list: after, ...counts } = r;
          out(JSON.stringify({ list: { id: toGlobalId('IocList', after.id), name: after.name, entryCount: after.entryCount }, ...counts }));
        } else {
          out(
            `${list.name}: ${r.linesRead} lines, ${r.added} added, ${r.duplicates} duplicates, ${r.skipped} skipped` +
              `${r.removed ? `, ${r.removed} replaced` : ''}; ${r.list.entryCount} entries now (${r.durationMs} ms)`,
          );
          for (const s of r.skippedLines.slice(0, 20)) err(`  line ${s.lineNumber}: ${s.reason}: ${s.text}`);
        }
        return 0;
      });
    },
  },
  'key create': {
    summary: 'Create an API key and print its secret (shown once).',
    usage: 'key create --role ADMIN|ANALYST|UPLOADER [--name LABEL] [--account NAME] [--json]',
    async run(argv) {
      const { values } = parseArgs({
        args: argv,
        options: { role: { type: 'string' }, name: { type: 'string' }, account: { type: 'string' }, json: { type: 'boolean' } },
      });
      const role = parseRole(values.role);
      return withServices(async (services) => {
        const accountName = values.account ?? services.config.defaultAccountName;
        let account = await services.accounts.findAccountByName(accountName);
        if (!account) {
          const created = await services.accounts.createAccount(accountName);
          if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
          account = created.value;
        }
        const result = await services.accounts.createApiKey(account.id, { name: values.name ?? `CLI ${role.toLowerCase()} key`, role });
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        const { apiKey, secret } = result.value;
        if (values.json) {
          out(JSON.stringify({ id: toGlobalId('ApiKey', apiKey.id), account: account.name, name: apiKey.name, role, secret }));
        } else {
          err(`Created ${role} key "${apiKey.name}" for account "${account.name}". Store the secret now; it is not shown again.`);
          out(secret);
        }
        return 0;
      });
    },
  },
  'key list': {
    summary: 'List the API keys of an account (never their secrets).',
    usage: 'key list [--account NAME] [--json]',
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: { account: { type: 'string' }, json: { type: 'boolean' } } });
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        const rows = [];
        let after: string | null = null;
        do {
          const page = await services.accounts.listApiKeys(account.id, { first: 100, after });
          rows.push(...page.edges.map((e) => e.node));
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
        const view = rows.map((k) => ({
          id: toGlobalId('ApiKey', k.id),
          name: k.name,
          role: k.role,
          prefix: k.prefix,
          createdAt: k.createdAt.toISOString(),
          lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
          revokedAt: k.revokedAt?.toISOString() ?? null,
        }));
        if (values.json) out(JSON.stringify(view));
        else for (const k of view) out([k.id, k.role, k.prefix, k.revokedAt ? 'revoked' : 'active', k.name].join('\t'));
        return 0;
      });
    },
  },
  'key revoke': {
    summary: 'Revoke an API key by its ID (from `key list`).',
    usage: 'key revoke ID [--account NAME]',
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, options: { account: { type: 'string' } }, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError('give exactly one key ID');
      const { idOfType } = await import('./common/ids/global-id');
      return withServices(async (services) => {
        const account = await accountByName(services, values.account);
        const result = await services.accounts.revokeApiKey(account.id, idOfType(positionals[0], 'ApiKey'));
        if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
        err(`Revoked key "${result.value.name}".`);
        return 0;
      });
    },
  },
};

function help(): string {
  const lines = ['Usage: pcap-defense <command> [options]', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${c.usage}`, `      ${c.summary}`);
  lines.push('', 'The database is the one the server uses: DATABASE_URL, or the SQLite file under ./data/.');
  return lines.join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    out(help());
    return argv.length === 0 ? 2 : 0;
  }
  const two = argv.slice(0, 2).join(' ');
  const name = commands[two] ? two : argv[0];
  const command = commands[name];
  if (!command) {
    err(`Unknown command "${argv.slice(0, 2).join(' ')}".\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(argv.slice(name.split(' ').length));
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`pcap-defense ${name}: ${(e as Error).message}\nUsage: pcap-defense ${command.usage}`);
      return 2;
    }
    throw e;
  }
}

/** Entry point used by bin/pcap-defense.js. */
export function main(): void {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      err(`pcap-defense: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
