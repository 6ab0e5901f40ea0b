// Entry of a parse thread (started by parse-pool.ts).
import { parentPort } from 'node:worker_threads';
import { serveParseJobs } from './parse-thread';

if (!parentPort) throw new Error('parse-thread.main runs in a worker thread only');
serveParseJobs(parentPort);
