import 'reflect-metadata';
import { ConfigError } from '../config/config';
import { backup } from './backup';
import { iocImport } from './ioc-import';
import { keyCreate, keyList, keyRevoke } from './key';
import { parse } from './parse';
import { CliFailure, CliIo, Command, Io, packageVersion, UsageError } from './shared';
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
    "`pcap-defense <command> --help` (or `pcap-defense help <command>`) shows a command's flags and examples; `pcap-defense --version` the version.",
    'key and ioc commands open the database the server uses: DATABASE_URL, or the SQLite file under ./data/;',
    "given --url or PCAP_DEFENSE_URL and an ADMIN key (--key or PCAP_DEFENSE_KEY) they work through that server's API instead.",
    'parse needs no database; upload talks to a server (--url or PCAP_DEFENSE_URL, key by --key or PCAP_DEFENSE_KEY).',
    'parse, upload and ioc import draw a progress bar on stderr when it is a terminal; otherwise only the final summary is printed.',
  );
  return lines.join('\n');
}

/** One command's help: usage, what it does, each flag, examples. */
function commandHelp(c: Command): string {
  const width = Math.max(...c.flags.map(([flag]) => flag.length));
  return [
    `Usage: pcap-defense ${c.usage}`,
    '',
    c.summary,
    '',
    'Flags:',
    ...c.flags.map(([flag, meaning]) => `  ${flag.padEnd(width)}  ${meaning}`),
    '  --help, -h'.padEnd(width + 2) + '  Show this help.',
    '',
    c.examples.length > 1 ? 'Examples:' : 'Example:',
    ...c.examples.map((e) => `  ${e}`),
  ].join('\n');
}

/** The command named by the first words of argv ("key create" before "key"). */
function lookup(argv: string[]): { name: string; command: Command } | null {
  const two = argv.slice(0, 2).join(' ');
  const name = commands[two] ? two : argv[0];
  return commands[name] ? { name, command: commands[name] } : null;
}

/** Help for a command family ("key": its create, list and revoke), or null when no command starts with the word. */
function familyHelp(word: string): string | null {
  const members = Object.entries(commands).filter(([name]) => name.startsWith(`${word} `));
  if (!members.length) return null;
  return [
    'Usage:',
    ...members.map(([, c]) => `  pcap-defense ${c.usage}`),
    '',
    `\`pcap-defense ${word} <command> --help\` shows a command's flags and examples.`,
  ].join('\n');
}

const isHelpFlag = (arg: string) => arg === '--help' || arg === '-h';

/** A --help or -h among the arguments (before a `--`, after which everything is positional). */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some(isHelpFlag);
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
  if (argv.length === 0) {
    io.err(help());
    return 2;
  }
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    io.out(packageVersion());
    return 0;
  }
  // `help`, `help key`, `help key create`, `--help`; and `key create --help`, `key --help`.
  const helpWanted = argv[0] === 'help' || isHelpFlag(argv[0]);
  if (helpWanted || asksForHelp(argv)) {
    const topic = (helpWanted ? argv.slice(1) : argv).filter((a) => !isHelpFlag(a));
    const found = lookup(topic);
    const family = found ? null : familyHelp(topic[0] ?? '');
    if (found) io.out(commandHelp(found.command));
    else if (family) io.out(family);
    else if (topic.length === 0) io.out(help());
    else {
      io.err(`Unknown command "${topic.slice(0, 2).join(' ')}".\n\n${help()}`);
      return 2;
    }
    return 0;
  }
  const found = lookup(argv);
  if (!found) {
    const family = familyHelp(argv[0]);
    io.err(family ? `"${argv[0]}" needs a command.\n\n${family}` : `Unknown command "${argv.slice(0, 2).join(' ')}".\n\n${help()}`);
    return 2;
  }
  const { name, command } = found;
  try {
    return await command.run(argv.slice(name.split(' ').length), io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`pcap-defense ${name}: ${(e as Error).message}\nUsage: pcap-defense ${command.usage}\n(\`pcap-defense ${name} --help\` shows every flag)`);
      return 2;
    }
    if (e instanceof CliFailure) {
      io.err(`pcap-defense ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Entry point used by bin/pcap-defense.js (and by this file run directly: `node -r @swc-node/register src/cli/index.ts`). */
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

if (require.main === module) main();
