import fs from 'node:fs';
import path from 'node:path';
import { runCaptured } from '../../helpers/cli';

const ROOT = path.resolve(__dirname, '../../..');
const COMMANDS = ['parse', 'upload', 'ioc import', 'backup', 'key create', 'key list', 'key revoke'];

describe('CLI help and version', () => {
  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V', 'version']) expect(await runCaptured([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('--help and help list every command on stdout and exit 0; no arguments prints the list on stderr and exits 2', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = await runCaptured(argv);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      for (const c of COMMANDS) expect(r.stdout).toContain(`\n  ${c} `);
    }
    const bare = await runCaptured([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toContain('Usage: pcap-defense <command> [options]');
  });

  it.each(COMMANDS)('"%s --help" (and "help" before it) print its usage, every flag it accepts and an example, and exit 0', async (command) => {
    const words = command.split(' ');
    const viaFlag = await runCaptured([...words, '--help']);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stderr).toBe('');
    expect(viaFlag.stdout).toMatch(new RegExp(`^Usage: pcap-defense ${command} `));
    expect(viaFlag.stdout).toMatch(/\nFlags:\n/);
    expect(viaFlag.stdout).toMatch(new RegExp(`\\nExamples?:\\n  (\\S+=\\S+ )*pcap-defense ${command}`));
    // Every --flag of the usage line is explained.
    const usage = /^Usage: (.*)$/m.exec(viaFlag.stdout)![1];
    const flags = new Set(usage.match(/--[a-z-]+/g));
    for (const flag of flags) expect(viaFlag.stdout).toMatch(new RegExp(`\\n  ${flag}\\b`));
    expect(await runCaptured(['help', ...words])).toEqual(viaFlag);
    // Anywhere among the arguments, and before any other check (no database is opened, no usage error).
    expect(await runCaptured([...words, 'FILE', '--bogus', '-h'])).toEqual(viaFlag);
  });

  it('help for a command family lists its commands; an unknown command is a usage error', async () => {
    const family = await runCaptured(['key', '--help']);
    expect(family.code).toBe(0);
    expect(family.stdout).toMatch(/^Usage:\n  pcap-defense key create .*\n  pcap-defense key list .*\n  pcap-defense key revoke /);
    const bare = await runCaptured(['key']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^"key" needs a command\./);
    const unknown = await runCaptured(['help', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^Unknown command "nope"\./);
    // After `--` a "-h" is an argument, not a request for help.
    const positional = await runCaptured(['parse', '--', '-h']);
    expect(positional.code).toBe(2);
    expect(positional.stdout).toBe('');
    expect(positional.stderr).toMatch(/^pcap-defense parse: cannot read -h\n/);
  });
});
