import { parseArgs } from 'node:util';
import { toGlobalId } from '../common/ids/global-id';
import { accountByName, Command, parseRole, UsageError, withServices } from './shared';

export const keyCreate: Command = {
  summary: 'Create an API key and print its secret (shown once).',
  usage: 'key create --role ADMIN|ANALYST|UPLOADER [--name LABEL] [--account NAME [--create-account]] [--json]',
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: { role: { type: 'string' }, name: { type: 'string' }, account: { type: 'string' }, 'create-account': { type: 'boolean' }, json: { type: 'boolean' } },
    });
    const role = parseRole(values.role);
    return withServices(async (services) => {
      const accountName = values.account ?? services.config.defaultAccountName;
      let account = await services.accounts.findAccountByName(accountName);
      // A mistyped --account must not quietly become a new, empty account with a working key. Only the
      // default one is made without asking: it is the account the server creates on its first start.
      if (!account && values.account !== undefined && !values['create-account']) {
        const { accounts, total } = await services.accounts.listAccounts(20);
        const names = accounts.map((a) => `"${a.name}"`).join(', ') + (total > accounts.length ? ` and ${total - accounts.length} more` : '');
        throw new UsageError(
          `No account named "${accountName}". ${total ? `The accounts are: ${names}.` : 'There are no accounts yet.'} ` +
            'Give one of them, or add --create-account to create this one.',
        );
      }
      if (!account) {
        const created = await services.accounts.createAccount(accountName);
        if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
        account = created.value;
      }
      const result = await services.accounts.createApiKey(account.id, { name: values.name ?? `CLI ${role.toLowerCase()} key`, role });
      if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
      const { apiKey, secret } = result.value;
      if (values.json) {
        io.out(JSON.stringify({ id: toGlobalId('ApiKey', apiKey.id), account: account.name, name: apiKey.name, role, secret }));
      } else {
        io.err(`Created ${role} key "${apiKey.name}" for account "${account.name}". Store the secret now; it is not shown again.`);
        io.out(secret);
      }
      return 0;
    });
  },
};

export const keyList: Command = {
  summary: 'List the API keys of an account (never their secrets).',
  usage: 'key list [--account NAME] [--json]',
  async run(argv, io) {
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
      if (values.json) io.out(JSON.stringify(view));
      else for (const k of view) io.out([k.id, k.role, k.prefix, k.revokedAt ? 'revoked' : 'active', k.name].join('\t'));
      return 0;
    });
  },
};

export const keyRevoke: Command = {
  summary: 'Revoke an API key by its ID (from `key list`).',
  usage: 'key revoke ID [--account NAME]',
  async run(argv, io) {
    const { values, positionals } = parseArgs({ args: argv, options: { account: { type: 'string' } }, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('give exactly one key ID');
    const { idOfType } = await import('../common/ids/global-id');
    return withServices(async (services) => {
      const account = await accountByName(services, values.account);
      const result = await services.accounts.revokeApiKey(account.id, idOfType(positionals[0], 'ApiKey'));
      if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
      io.err(`Revoked key "${result.value.name}".`);
      return 0;
    });
  },
};
