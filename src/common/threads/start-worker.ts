import { Worker } from 'node:worker_threads';

/**
 * A worker thread running `script`: compiled JavaScript directly; TypeScript (tests, `npm run dev`) through
 * @swc-node/register, as the main thread runs it.
 */
export function startWorker(script: string, workerData: unknown): Worker {
  if (!script.endsWith('.ts')) return new Worker(script, { workerData });
  const register = require.resolve('@swc-node/register');
  return new Worker(`require(${JSON.stringify(register)}); require(${JSON.stringify(script)});`, { eval: true, workerData });
}
