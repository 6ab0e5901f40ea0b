// Entry of an index build thread (started by build-thread.ts for one build).
import { parentPort } from 'node:worker_threads';
import { serveBuildJob } from './build-thread';

if (!parentPort) throw new Error('build-thread.main runs in a worker thread only');
serveBuildJob(parentPort);
