import { ResourceLimits, Worker } from 'node:worker_threads';

/**
 * A worker thread running `script`: compiled JavaScript directly; TypeScript (tests, `npm run dev`) through
 * @swc-node/register, as the main thread runs it.
 */
export function startWorker(script: string, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  if (!script.endsWith('.ts')) return new Worker(script, { workerData, resourceLimits });
  const register = require.resolve('@swc-node/register');
  return new Worker(`require(${JSON.stringify(register)}); require(${JSON.stringify(script)});`, { eval: true, workerData, resourceLimits });
}
