import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { runCli } from '../../src/cli';

/** A stream that keeps what the CLI writes; `tty` makes it look like a terminal (progress bars draw), `slow` makes the writer wait for 'drain'. */
export type Sink = Writable & { text: string; isTTY?: boolean; columns?: number };

export function sink(options: { tty?: boolean; slow?: boolean } = {}): Sink {
  const w = new Writable({
    highWaterMark: options.slow ? 1024 : 16 * 1024,
    write(chunk, _enc, done) {
      w.text += chunk.toString();
      if (options.slow) setImmediate(done);
      else done();
    },
  }) as Sink;
  w.text = '';
  if (options.tty) Object.assign(w, { isTTY: true, columns: 120 });
  return w;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured output. */
export async function runCaptured(
  argv: string[],
  options: { env?: Record<string, string>; stdin?: Readable; stdout?: Sink; stderr?: Sink } = {},
): Promise<CliRun> {
  const stdout = options.stdout ?? sink();
  const stderr = options.stderr ?? sink();
  const code = await runCli(argv, { stdout, stderr, stdin: options.stdin, env: options.env ?? {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The project root: where child processes of the CLI run. */
export const ROOT = path.resolve(__dirname, '../..');

/**
 * Node's arguments that run the CLI's TypeScript source in a child process (`node ...CLI_SOURCE args`, cwd ROOT):
 * tests exercise the code as it is, not a build that may be older (bin/pcap-defense.js runs dist/).
 */
export const CLI_SOURCE = ['-r', '@swc-node/register', path.join(ROOT, 'src/cli/index.ts')];
