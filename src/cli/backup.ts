import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { loadConfig } from '../config/config';
import { CliFailure, Command, Io, UsageError } from './shared';

export const backup: Command = {
  summary: 'Copy the SQLite database to FILE, consistent while the server runs (MySQL/MariaDB: use mariadb-dump or mysqldump --single-transaction).',
  usage: 'backup FILE [--json]',
  flags: [
    ['FILE', 'Where to write the copy (written beside it first, then renamed into place). DATA_DIR or DATABASE_URL names the source, as for the server.'],
    ['--json', 'Print what was copied as one JSON object.'],
  ],
  examples: ['pcap-defense backup /backups/pcap-defense-$(date +%F).sqlite', 'DATA_DIR=/var/lib/pcap-defense pcap-defense backup /backups/pcd.sqlite --json'],
  async run(argv, io) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
    return backupCommand(path.resolve(positionals[0]), values.json === true, io);
  },
};

/**
 * SQLite's online backup API on a connection of its own: the copy is one snapshot (taken in a single step, a
 * read transaction that writers in WAL mode do not wait for), written beside FILE and renamed into place only
 * once checked, so FILE is never half a database. No migrations run: a backup changes nothing.
 */
async function backupCommand(file: string, json: boolean, io: Io): Promise<number> {
  const config = loadConfig();
  if (config.database.type !== 'sqlite') {
    throw new CliFailure(
      'backup copies the embedded SQLite database. For MySQL/MariaDB dump it consistently while the server runs: ' +
        'mariadb-dump --single-transaction DATABASE > FILE (or mysqldump --single-transaction); restore with mariadb DATABASE < FILE.',
    );
  }
  const source = config.database.file;
  if (source === ':memory:' || !fs.existsSync(source)) throw new CliFailure(`no database at ${source} (DATA_DIR).`);
  if (fs.existsSync(file)) throw new CliFailure(`${file} exists; give a new file name (a backup never overwrites).`);
  if (!fs.existsSync(path.dirname(file))) throw new CliFailure(`the directory ${path.dirname(file)} does not exist.`);
  const started = performance.now();
  const partial = `${file}.partial-${process.pid}`;
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // All remaining pages in one step: one snapshot, not a copy restarted every time the server commits.
    await db.backup(partial, { progress: () => 0x7fffffff });
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw new CliFailure(`backup failed: ${(e as Error).message}`);
  } finally {
    db.close();
  }
  let summary: { uploads: number; flowHits: number; iocLists: number; iocs: number };
  const copy = new Database(partial, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new CliFailure(`the copy failed its check (${String(check)}); nothing was written to ${file}.`);
    // A single file that needs no -wal beside it.
    copy.pragma('journal_mode = DELETE');
    const count = (table: string) => Number(copy.prepare(`SELECT COUNT(*) AS n FROM ${table}`).pluck().get());
    summary = { uploads: count('log_upload'), flowHits: count('flow_hit'), iocLists: count('ioc_list'), iocs: count('ioc') };
  } catch (e) {
    copy.close();
    fs.rmSync(partial, { force: true });
    throw e instanceof CliFailure ? e : new CliFailure(`the copy could not be read back: ${(e as Error).message}`);
  }
  copy.close();
  fs.renameSync(partial, file);
  const bytes = fs.statSync(file).size;
  const durationMs = Math.round(performance.now() - started);
  if (json) io.out(JSON.stringify({ file, bytes, ...summary, durationMs }));
  else
    io.out(
      `Backed up ${source} to ${file}: ${bytes} bytes, ${summary.uploads} uploads, ${summary.flowHits} flow hits, ${summary.iocLists} IOC lists (${durationMs} ms).`,
    );
  return 0;
}
