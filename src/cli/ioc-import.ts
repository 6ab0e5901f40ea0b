import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { toGlobalId } from '../common/ids/global-id';
import { ImportMode, IocCategory, IocListKind } from '../modules/ioc/ioc.enums';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { ProgressBar } from '../common/progress/progress-bar';
import { accountByName, Command, enumValue, UsageError, withServices } from './shared';

export const iocImport: Command = {
  summary: 'Import a feed file into an IOC list (created when --create is given and it does not exist).',
  usage:
    'ioc import FILE --list NAME [--mode APPEND|REPLACE] [--create --kind BLOCK|ALLOW --severity 0-5 --category CATEGORY --source NAME] [--account NAME] [--json]',
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
      const progress = new ProgressBar(io.stderr, { label: path.basename(file), total: stat.size });
      let result;
      try {
        result = await services.feedImport.importFile(account.id, list.id, { path: file, bytes: stat.size }, mode, (_lines, bytes) => progress.update(bytes));
      } finally {
        progress.finish();
      }
      if (!result.ok) throw new UsageError(result.errors.map((e) => e.message).join('; '));
      const r = result.value;
      if (values.json) {
        const { list: after, ...counts } = r;
        io.out(JSON.stringify({ list: { id: toGlobalId('IocList', after.id), name: after.name, entryCount: after.entryCount }, ...counts }));
      } else {
        io.out(
          `${list.name}: ${r.linesRead} lines, ${r.added} added, ${r.duplicates} duplicates, ${r.skipped} skipped` +
            `${r.removed ? `, ${r.removed} replaced` : ''}; ${r.list.entryCount} entries now (${r.durationMs} ms)`,
        );
        for (const s of r.skippedLines.slice(0, 20)) io.err(`  line ${s.lineNumber}: ${s.reason}: ${s.text}`);
      }
      return 0;
    });
  },
};
