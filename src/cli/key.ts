import { parseArgs } from 'node:util';
import { idOfType, toGlobalId } from '../common/ids/global-id';
import { Role } from '../modules/account/account.enums';
import { ApiKey } from '../modules/account/api-key.entity';
import { Page, requestGraphql, UserErrorView, userErrorText } from './client';
import { alignedTable, checkRemoteAccount, Command, Io, parseRole, remoteTarget, RemoteTarget, resolveAccount, UsageError, withServices } from './shared';

// Every key command works on the database (the default) or, given --url or PCAP_DEFENSE_URL and an ADMIN key,
// through the API; both print the same.
const REMOTE_FLAGS: Array<[string, string]> = [
  ['--url URL', "Work through the server's GraphQL API at URL (or set PCAP_DEFENSE_URL) instead of opening the database."],
  ['--key KEY', 'The ADMIN API key for --url (or set PCAP_DEFENSE_KEY). Through the API a key works in its own account only.'],
];
const REMOTE_OPTIONS = { url: { type: 'string' }, key: { type: 'string' } } as const;

/** A key as the commands print it, from the database or from the API. */
interface KeyView {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const KEY_FIELDS = 'id name role prefix createdAt lastUsedAt revokedAt';

const VIEWER_QUERY = 'query CliViewer { viewer { account { name } role } }';

/** The account of the key given for the server (checked against --account), refused when the key is not ADMIN. */
async function remoteAccount(target: RemoteTarget, account: string | undefined, create: boolean | undefined): Promise<string> {
  const { viewer } = await requestGraphql<{ viewer: { account: { name: string }; role: Role } }>(target, VIEWER_QUERY);
  if (viewer.role !== Role.ADMIN) throw new UsageError(`the key given is an ${viewer.role} key; managing API keys needs an ADMIN key`);
  checkRemoteAccount(viewer.account.name, account, create);
  return viewer.account.name;
}

function printCreated(io: Io, json: boolean | undefined, created: { id: string; account: string; name: string; role: Role; secret: string }): void {
  if (json) {
    io.out(JSON.stringify(created));
  } else {
    io.err(`Created ${created.role} key "${created.name}" for account "${created.account}". Store the secret now; it is not shown again.`);
    io.out(created.secret);
  }
}

export const keyCreate: Command = {
  summary: 'Create an API key and print its secret (shown once).',
  usage: 'key create --role ADMIN|ANALYST|UPLOADER [--name LABEL] [--account NAME [--create-account]] [--url URL --key KEY] [--json]',
  flags: [
    ['--role ROLE', 'What the key may do: ADMIN (everything), ANALYST (read), UPLOADER (send captures). Required.'],
    ['--name LABEL', 'A label for the key, e.g. the capture host that will use it (default "CLI <role> key").'],
    ['--account NAME', 'The account (default: the default account, made if the server has not started yet). One that does not exist is refused.'],
    ['--create-account', 'Create the --account when it does not exist (database only).'],
    ...REMOTE_FLAGS,
    ['--json', 'Print {id, account, name, role, secret} as one JSON object instead of the secret alone.'],
  ],
  examples: [
    'pcap-defense key create --role UPLOADER --name "hq capture host"',
    'pcap-defense key create --role ANALYST --account "branch office" --create-account --json',
    'pcap-defense key create --role UPLOADER --url https://pcd.example.org/graphql --key "$ADMIN_KEY"',
  ],
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        role: { type: 'string' },
        name: { type: 'string' },
        account: { type: 'string' },
        'create-account': { type: 'boolean' },
        json: { type: 'boolean' },
        ...REMOTE_OPTIONS,
      },
    });
    const role = parseRole(values.role);
    const name = values.name ?? `CLI ${role.toLowerCase()} key`;
    const target = remoteTarget(values, io, Role.ADMIN);
    if (target) {
      const account = await remoteAccount(target, values.account, values['create-account']);
      const { apiKeyCreate: payload } = await requestGraphql<{
        apiKeyCreate: { apiKey: { id: string; name: string } | null; secret: string | null; userErrors: UserErrorView[] };
      }>(
        target,
        'mutation CliApiKeyCreate($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { apiKey { id name } secret userErrors { code field message } } }',
        { input: { name, role } },
      );
      if (!payload.apiKey || !payload.secret) throw new UsageError(userErrorText(payload.userErrors));
      printCreated(io, values.json, { id: payload.apiKey.id, account, name: payload.apiKey.name, role, secret: payload.secret });
      return 0;
    }
    return withServices(async (services) => {
      const account = await resolveAccount(services, values.account, { create: values['create-account'], createDefault: true, canCreate: true });
      const result = await services.accounts.createApiKey(account.id, { name, role });
      if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
      const { apiKey, secret } = result.value;
      printCreated(io, values.json, { id: toGlobalId('ApiKey', apiKey.id), account: account.name, name: apiKey.name, role, secret });
      return 0;
    });
  },
};

const keyView = (k: ApiKey): KeyView => ({
  id: toGlobalId('ApiKey', k.id),
  name: k.name,
  role: k.role,
  prefix: k.prefix,
  createdAt: k.createdAt.toISOString(),
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  revokedAt: k.revokedAt?.toISOString() ?? null,
});

/** "2026-12-04T16:03:17.123Z" -> "2026-12-04 16:03" (UTC), for the table. */
const minute = (iso: string | null) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '-');

export const keyList: Command = {
  summary: 'List the API keys of an account (never their secrets).',
  usage: 'key list [--account NAME] [--url URL --key KEY] [--json]',
  flags: [
    ['--account NAME', 'The account (default: the default account).'],
    ...REMOTE_FLAGS,
    ['--json', 'Print the keys as one JSON array (id, name, role, prefix, createdAt, lastUsedAt, revokedAt).'],
  ],
  examples: [
    'pcap-defense key list',
    'pcap-defense key list --account "branch office" --json',
    'PCAP_DEFENSE_URL=https://pcd.example.org/graphql PCAP_DEFENSE_KEY="$ADMIN_KEY" pcap-defense key list',
  ],
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: { account: { type: 'string' }, json: { type: 'boolean' }, ...REMOTE_OPTIONS } });
    const target = remoteTarget(values, io, Role.ADMIN);
    const view: KeyView[] = [];
    if (target) {
      await remoteAccount(target, values.account, false);
      let after: string | null = null;
      do {
        const { apiKeys: page }: { apiKeys: Page<KeyView> } = await requestGraphql(
          target,
          `query CliApiKeys($after: String) { apiKeys(first: 100, after: $after) { edges { node { ${KEY_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
          { after },
        );
        view.push(...page.edges.map((e) => e.node));
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after);
    } else {
      await withServices(async (services) => {
        const account = await resolveAccount(services, values.account, { canCreate: false });
        let after: string | null = null;
        do {
          const page = await services.accounts.listApiKeys(account.id, { first: 100, after });
          view.push(...page.edges.map((e) => keyView(e.node)));
          after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        } while (after);
      });
    }
    const status = (k: KeyView) => (k.revokedAt ? 'revoked' : 'active');
    if (values.json) io.out(JSON.stringify(view));
    else if ((io.stdout as { isTTY?: boolean }).isTTY) {
      // A person reads columns; anything else (a pipe, a file) keeps the tab-separated lines scripts split.
      const rows = view.map((k) => [k.id, k.role, k.prefix, status(k), minute(k.createdAt), minute(k.lastUsedAt), k.name]);
      for (const line of alignedTable(['ID', 'ROLE', 'PREFIX', 'STATUS', 'CREATED (UTC)', 'LAST USED', 'NAME'], rows)) io.out(line);
      if (view.length === 0) io.err('No API keys.');
    } else for (const k of view) io.out([k.id, k.role, k.prefix, status(k), k.name].join('\t'));
    return 0;
  },
};

export const keyRevoke: Command = {
  summary: 'Revoke an API key by its ID (from `key list`).',
  usage: 'key revoke ID [--account NAME] [--url URL --key KEY]',
  flags: [
    ['ID', "The key's ID, the first column of `key list`."],
    ['--account NAME', 'The account the key belongs to (default: the default account).'],
    ...REMOTE_FLAGS,
  ],
  examples: ['pcap-defense key revoke QXBpS2V5OjM=', 'pcap-defense key revoke QXBpS2V5OjM= --url https://pcd.example.org/graphql --key "$ADMIN_KEY"'],
  async run(argv, io) {
    const { values, positionals } = parseArgs({ args: argv, options: { account: { type: 'string' }, ...REMOTE_OPTIONS }, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('give exactly one key ID');
    const target = remoteTarget(values, io, Role.ADMIN);
    if (target) {
      await remoteAccount(target, values.account, false);
      const { apiKeyRevoke: payload } = await requestGraphql<{ apiKeyRevoke: { apiKey: { name: string } | null; userErrors: UserErrorView[] } }>(
        target,
        'mutation CliApiKeyRevoke($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) { apiKey { name } userErrors { code field message } } }',
        { input: { id: positionals[0] } },
      );
      if (!payload.apiKey) throw new UsageError(userErrorText(payload.userErrors));
      io.err(`Revoked key "${payload.apiKey.name}".`);
      return 0;
    }
    return withServices(async (services) => {
      const account = await resolveAccount(services, values.account, { canCreate: false });
      const result = await services.accounts.revokeApiKey(account.id, idOfType(positionals[0], 'ApiKey'));
      if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
      io.err(`Revoked key "${result.value.name}".`);
      return 0;
    });
  },
};
