import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../../src/config/config';

const ROOT = path.resolve(__dirname, '../../..');
const UNIT = path.join(ROOT, 'deploy/pcap-defense.service');
const ENV_EXAMPLE = path.join(ROOT, 'deploy/pcap-defense.env.example');

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasSystemdAnalyze) console.warn('deploy/pcap-defense.service: systemd-analyze verify SKIPPED, systemd-analyze is not installed here');

/** `KEY=value` lines of the example; `#KEY=value` (a setting shown commented out) too when `commented`. */
function envLines(text: string, commented: boolean): Array<[string, string]> {
  const pattern = commented ? /^#?([A-Z][A-Z0-9_]*)=(.*)$/ : /^([A-Z][A-Z0-9_]*)=(.*)$/;
  return text
    .split('\n')
    .map((line) => pattern.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2]]);
}

describe('deploy/: the systemd unit and its environment file', () => {
  (hasSystemdAnalyze ? it : it.skip)('passes systemd-analyze verify with nothing to say', () => {
    const run = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    // verify exits 0 on an unknown or misspelt directive and only warns: any output is a failure here.
    expect({ status: run.status, output: `${run.stdout}${run.stderr}`.trim() }).toEqual({ status: 0, output: '' });
  });

  it('starts what `npm start` starts, with node itself as the main process', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const execStart = /^ExecStart=(.*)$/m.exec(fs.readFileSync(UNIT, 'utf8'))?.[1];
    expect(execStart?.replace(/^\/usr\/bin\/node /, 'node ')).toBe(pkg.scripts.start);
  });

  it('has an environment file example that the server accepts, naming only documented settings', () => {
    const text = fs.readFileSync(ENV_EXAMPLE, 'utf8');
    const unit = fs.readFileSync(UNIT, 'utf8');
    const env = Object.fromEntries([...envLines(unit.replace(/^Environment=/gm, ''), false), ...envLines(text, false)]);
    expect(() => loadConfig(env, '/opt/pcap-defense')).not.toThrow();
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const documented = new Set([...readme.matchAll(/^\| `([A-Z_]+)`(?: \/ `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1], m[2]]).filter(Boolean));
    for (const [key] of envLines(text, true)) expect({ key, documented: documented.has(key) }).toEqual({ key, documented: true });
  });
});
