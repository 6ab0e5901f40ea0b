import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SCHEMA_FILE } from '../../../src/graphql/schema';

// graphql-schema-linter as CI runs it: its own CLI, configured by graphql-schema-linter.config.js.
const ROOT = path.resolve(__dirname, '../../..');
const LINTER = require.resolve('graphql-schema-linter/lib/cli.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS config file, read as the linter reads it
const config = require(path.join(ROOT, 'graphql-schema-linter.config.js')) as { rules: string[]; disabled: Record<string, string> };

interface LintError {
  message: string;
  rule: string;
  location: { line: number };
}

function lint(args: string[], input?: string): { status: number | null; errors: LintError[]; stderr: string } {
  const run = spawnSync(process.execPath, [LINTER, '--format', 'json', ...args], { cwd: ROOT, input, encoding: 'utf8' });
  let errors: LintError[] = [];
  try {
    errors = (JSON.parse(run.stdout) as { errors: LintError[] }).errors;
  } catch {
    // status and stderr say what went wrong
  }
  return { status: run.status, errors, stderr: run.stderr };
}

describe('graphql-schema-linter', () => {
  it('finds nothing in schema/schema.graphql', () => {
    const result = lint([]);
    expect(result.errors.map((e) => `${e.location.line}: ${e.message} (${e.rule})`)).toEqual([]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('runs every rule of the pinned version except the disabled ones, each with a reason', () => {
    const ruleFiles = fs.readdirSync(path.join(path.dirname(LINTER), 'rules')).filter((f) => f.endsWith('.js'));
    const builtIn = ruleFiles.map((f) => f.replace(/\.js$/, '').replace(/_/g, '-')).sort();
    const disabled = Object.keys(config.disabled);
    expect([...config.rules, ...disabled].sort()).toEqual(builtIn);
    expect(config.rules.filter((r) => disabled.includes(r))).toEqual([]);
    for (const reason of Object.values(config.disabled)) expect(reason.length).toBeGreaterThan(10);
  });

  it('reports what its rules forbid, with this configuration', () => {
    const sdl = `${fs.readFileSync(SCHEMA_FILE, 'utf8')}\ntype orphan_type {\n  Bad_field: Int\n}\n`;
    const result = lint(['--stdin'], sdl);
    expect(result.status).toBe(1);
    expect(result.errors.map((e) => e.rule).sort()).toEqual(
      ['defined-types-are-used', 'fields-are-camel-cased', 'fields-have-descriptions', 'types-are-capitalized', 'types-have-descriptions'].sort(),
    );
  });
});
