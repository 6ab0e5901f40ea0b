import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { toGlobalId } from '../common/ids/global-id';
import { Role } from '../modules/account/account.enums';
import { ImportMode, IocCategory, IocListKind } from '../modules/ioc/ioc.enums';
import { IocList } from '../modules/ioc/ioc-list.entity';
import type { FeedImportResult } from '../modules/ioc/feed-import.service';
import { ProgressBar } from '../common/progress/progress-bar';
import { Page, postFileGraphql, requestGraphql, UserErrorView, userErrorText } from './client';
import type { Services } from '../app/services';
import { checkRemoteAccount, CliFailure, Command, enumValue, Io, remoteTarget, RemoteTarget, resolveAccount, UsageError, withServices } from './shared';
import { retryWhenBusy } from '../db/retry-when-busy';

interface ImportOptions {
  list?: string;
  mode?: string;
  create?: boolean;
  kind?: string;
  severity?: string;
  category?: string;
  source?: string;
  account?: string;
  'create-account'?: boolean;
  json?: boolean;
}

/** What an import did, as both ways of running it print it: the service's result with the API's view of the list and skipped lines. */
interface ImportSummary extends Omit<FeedImportResult, 'list' | 'skippedLines'> {
  list: { id: string; name: string; entryCount: number };
  skippedLines: Array<{ lineNumber: number; text: string; code: string; reason: string }>;
}

export const iocImport: Command = {
  summary: 'Import a feed file into an IOC list (created when --create is given and it does not exist).',
  usage:
    'ioc import FILE --list NAME [--mode APPEND|REPLACE] [--create --kind BLOCK|ALLOW --severity 0-5 --category CATEGORY --source NAME] [--account NAME [--create-account]] [--url URL --key KEY] [--json]',
  flags: [
    ['FILE', 'The feed: one address, CIDR or range per line; Spamhaus DROP, ipsum, maltrail and FireHOL files are read as they are.'],
    ['--list NAME', 'The IOC list to import into (its name, case-insensitive). Required.'],
    ['--mode MODE', 'APPEND (default) adds entries; REPLACE makes the list exactly the file, in one transaction.'],
    ['--create', 'Create the list when it does not exist, with the next four flags.'],
    ['--kind KIND', 'With --create: BLOCK (default) or ALLOW.'],
    ['--severity N', 'With --create: 0-5 (default 3).'],
    ['--category CATEGORY', `With --create: ${Object.values(IocCategory).join(', ')} (default OTHER).`],
    ['--source NAME', 'With --create: where the feed comes from, e.g. "Spamhaus DROP".'],
    ['--account NAME', 'The account (default: the default account). One that does not exist is refused.'],
    ['--create-account', 'Create the --account when it does not exist (database only).'],
    ['--url URL', "Import through the server's GraphQL API at URL (or set PCAP_DEFENSE_URL) instead of opening the database."],
    ['--key KEY', 'The ADMIN API key for --url (or set PCAP_DEFENSE_KEY).'],
    ['--json', 'Print the summary as one JSON object.'],
  ],
  examples: [
    'pcap-defense ioc import ipsum.txt --list ipsum --create --category REPUTATION --severity 3',
    'pcap-defense ioc import drop.txt --list "Spamhaus DROP" --mode REPLACE --url https://pcd.example.org/graphql --key "$ADMIN_KEY"',
  ],
  async run(argv, io) {
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
        'create-account': { type: 'boolean' },
        json: { type: 'boolean' },
        url: { type: 'string' },
        key: { type: 'string' },
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
    const target = remoteTarget(values, io, Role.ADMIN);
    let summary: ImportSummary;
    try {
      summary = target ? await importRemote(target, file, stat.size, values, io) : await importLocal(file, stat.size, values, io);
    } catch (e) {
      // A script reading --json gets the refusal as JSON too (and exit code 1).
      if (e instanceof ImportRefused && values.json) io.out(JSON.stringify({ refused: true, userErrors: e.userErrors }));
      throw e;
    }
    printSummary(summary, values.json, io);
    return 0;
  },
};

const newList = (values: ImportOptions) => ({
  name: values.list!,
  kind: enumValue(IocListKind, values.kind, '--kind', IocListKind.BLOCK),
  severity: values.severity === undefined ? 3 : Number(values.severity),
  category: enumValue(IocCategory, values.category, '--category', IocCategory.OTHER),
  sourceName: values.source ?? null,
});

/**
 * The server or the service refused the import (a REPLACE with an empty file, a file that is not a feed, a list of
 * domains): used right, did not succeed, exit code 1, nothing imported.
 */
class ImportRefused extends CliFailure {
  constructor(readonly userErrors: ReadonlyArray<{ code: string; field: readonly string[] | null; message: string }>) {
    super(userErrors.map((e) => e.message).join('; '));
  }
}

const missingList = (values: ImportOptions) => new UsageError(`No IOC list named "${values.list}" (add --create to make it).`);

async function importLocal(file: string, size: number, values: ImportOptions, io: Io): Promise<ImportSummary> {
  const mode = enumValue(ImportMode, values.mode, '--mode', ImportMode.APPEND);
  // A server on the same SQLite file may commit in the middle: the import is tried again (retryWhenBusy).
  return withServices((services) => retryWhenBusy(() => importWith(services, file, size, mode, values, io)));
}

async function importWith(services: Services, file: string, size: number, mode: ImportMode, values: ImportOptions, io: Io): Promise<ImportSummary> {
  const account = await resolveAccount(services, values.account, { create: values['create-account'], canCreate: true });
  let list = await services.dataSource.getRepository(IocList).findOneBy({ accountId: account.id, nameKey: values.list!.trim().toLowerCase() });
  if (!list) {
    if (!values.create) throw missingList(values);
    const created = await services.iocLists.create(account.id, newList(values));
    if (!created.ok) throw new UsageError(created.errors.map((e) => e.message).join('; '));
    list = created.value;
  }
  const progress = new ProgressBar(io.stderr, { label: path.basename(file), total: size });
  let result;
  try {
    result = await services.feedImport.importFile(account.id, list.id, { path: file, bytes: size }, mode, (_lines, bytes) => progress.update(bytes));
  } finally {
    progress.finish();
  }
  if (!result.ok) throw new ImportRefused(result.errors.map((e) => ({ code: e.code, field: e.field ?? null, message: e.message })));
  const { list: after, ...counts } = result.value;
  return { list: { id: toGlobalId('IocList', after.id), name: after.name, entryCount: after.entryCount }, ...counts };
}

const LIST_FIELDS = 'id name entryCount';
const SUMMARY_FIELDS =
  'mode bytes linesRead added duplicates duplicatesInFile duplicatesInList skipped normalized removed skippedLines { lineNumber text code reason } durationMs';

/** The same import through the API: the list found (or made) by name, the file sent by iocListImport. */
async function importRemote(target: RemoteTarget, file: string, size: number, values: ImportOptions, io: Io): Promise<ImportSummary> {
  const mode = enumValue(ImportMode, values.mode, '--mode', ImportMode.APPEND);
  const wanted = newList(values);
  const { viewer } = await requestGraphql<{ viewer: { account: { name: string }; role: Role } }>(
    target,
    'query CliViewer { viewer { account { name } role } }',
  );
  if (viewer.role !== Role.ADMIN) throw new UsageError(`the key given is an ${viewer.role} key; importing a feed needs an ADMIN key`);
  checkRemoteAccount(viewer.account.name, values.account, values['create-account']);

  // Names are unique per account, case-insensitive: the filter narrows, the exact comparison decides.
  const nameKey = values.list!.trim().toLowerCase();
  let list: ImportSummary['list'] | null = null;
  let after: string | null = null;
  do {
    const { iocLists: page }: { iocLists: Page<ImportSummary['list']> } = await requestGraphql(
      target,
      `query CliIocLists($name: String!, $after: String) { iocLists(first: 100, after: $after, filter: { nameContains: $name }) { edges { node { ${LIST_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
      { name: values.list!.trim(), after },
    );
    list = page.edges.map((e) => e.node).find((l) => l.name.trim().toLowerCase() === nameKey) ?? null;
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (!list && after);
  if (!list) {
    if (!values.create) throw missingList(values);
    const { iocListCreate: created } = await requestGraphql<{ iocListCreate: { iocList: ImportSummary['list'] | null; userErrors: UserErrorView[] } }>(
      target,
      `mutation CliIocListCreate($input: IocListCreateInput!) { iocListCreate(input: $input) { iocList { ${LIST_FIELDS} } userErrors { code field message } } }`,
      { input: wanted },
    );
    if (!created.iocList) throw new UsageError(userErrorText(created.userErrors));
    list = created.iocList;
  }

  const operations = JSON.stringify({
    query: `mutation CliIocListImport($input: IocListImportInput!) { iocListImport(input: $input) { iocList { ${LIST_FIELDS} } summary { ${SUMMARY_FIELDS} } userErrors { code field message } } }`,
    variables: { input: { list: list.id, mode, file: null } },
  });
  const map = JSON.stringify({ 0: ['variables.input.file'] });
  // The bar follows the bytes sent; the server then imports the file and answers when it is done.
  const progress = new ProgressBar(io.stderr, { label: path.basename(file), total: size });
  const { iocListImport: payload } = await postFileGraphql<{
    iocListImport: { iocList: ImportSummary['list'] | null; summary: Omit<ImportSummary, 'list'> | null; userErrors: UserErrorView[] };
  }>(target, operations, map, { name: path.basename(file), type: 'text/plain', path: file, size }, progress);
  if (!payload.iocList || !payload.summary) throw new ImportRefused(payload.userErrors);
  return { list: payload.iocList, ...payload.summary };
}

function printSummary(r: ImportSummary, json: boolean | undefined, io: Io): void {
  if (json) {
    io.out(JSON.stringify(r));
    return;
  }
  io.out(
    `${r.list.name}: ${r.linesRead} lines, ${r.added} added, ${r.duplicates} duplicates, ${r.skipped} skipped` +
      `${r.removed ? `, ${r.removed} replaced` : ''}; ${r.list.entryCount} entries now (${r.durationMs} ms)`,
  );
  for (const s of r.skippedLines.slice(0, 20)) io.err(`  line ${s.lineNumber}: ${s.reason}: ${s.text}`);
}
