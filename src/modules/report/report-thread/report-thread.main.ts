// Entry of a report thread (started by report-threads.ts).
import { parentPort } from 'node:worker_threads';
import { serveReports } from './report-thread';

if (!parentPort) throw new Error('report-thread.main runs in a worker thread only');
serveReports(parentPort);
