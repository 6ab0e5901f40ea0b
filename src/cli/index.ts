import 'reflect-metadata';
import { ConfigError } from '../config/config';
import { backup } from './backup';
import { iocImport } from './ioc-import';
import { keyCreate, keyList, keyRevoke } from './key';
import { parse } from './parse';
import { CliFailure, CliIo, Command, Io, UsageError } from './shared';
import { upload } from './upload';

export type { CliIo } from './shared';

const commands: Record<string, Command> = {
  parse,
  upload,
  'ioc import': iocImport,
  backup,
  'key create': keyCreate,
  'key list': keyList,
  'key revoke': keyRevoke,
};

function help(): string {
  const lines = ['Usage: pcap-defense <command> [options]', '', 'Commands:'];
  for (const c of Object.values(commands)) lines.push(`  ${c.usage}`, `      ${c.summary}`);
  lines.push(
    '',
    'key and ioc commands open the database the server uses: DATABASE_URL, or the SQLite file under ./data/.',
    'parse needs no database; upload talks to a server (--url or PCAP_DEFENSE_URL, key by --key or PCAP_DEFENSE_KEY).',
    'parse, upload and ioc import draw a progress bar on stderr when it is a terminal; otherwise only the final summary is printed.',
  );
  return lines.join('\n');
}

/**
 * Runs one command and resolves to its exit code: 0 done, 1 failed (server refused, unusable file),
 * 2 wrong usage. `io` defaults to the process's streams and environment.
 */
export async function runCli(argv: string[], streams: Partial<CliIo> = {}): Promise<number> {
  const stdout = streams.stdout ?? process.stdout;
  const stderr = streams.stderr ?? process.stderr;
  const io: Io = {
    stdout,
    stderr,
    stdin: streams.stdin ?? process.stdin,
    env: streams.env ?? process.env,
    out: (line) => void stdout.write(`${line}\n`),
    err: (line) => void stderr.write(`${line}\n`),
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(help());
    return argv.length === 0 ? 2 : 0;
  }
  const two = argv.slice(0, 2).join(' ');
  const name = commands[two] ? two : argv[0];
  const command = commands[name];
  if (!command) {
    io.err(`Unknown command "${argv.slice(0, 2).join(' ')}".\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(argv.slice(name.split(' ').length), io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`pcap-defense ${name}: ${(e as Error).message}\nUsage: pcap-defense ${command.usage}`);
      return 2;
    }
    if (e instanceof CliFailure) {
      io.err(`pcap-defense ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Entry point used by bin/pcap-defense.js. */
export function main(): void {
  runCli(process.argv.slice(2)).then(
    (code) => {
      // Let buffered output to a pipe drain before exiting (process.exit does not wait for it).
      process.exitCode = code;
      if (process.stdout.writableLength === 0 || process.stdout.destroyed) process.exit(code);
      else process.stdout.once('drain', () => process.exit(code)).once('error', () => process.exit(code));
    },
    (e) => {
      process.stderr.write(`pcap-defense: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
