import type { MessagePort } from 'node:worker_threads';
import { AccountHits, Block } from '../hit-memory';
import { MemoryExecutor } from '../groupings/memory.executor';
import { GiveWay } from '../../../common/threads/give-way';
import { lowerThreadPriority } from '../../../common/threads/thread-priority';
import type { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import type { FromReportThread, InternedTable, ReportCall, SnapshotMessage, ToReportThread } from './report-thread.messages';

/** An account as the thread holds it: its interned tables and the blocks of the last snapshot it was sent. */
interface Mirror {
  hits: AccountHits;
  blocks: Map<number, Block>;
}

interface OpenRequest {
  executor: MemoryExecutor;
  filter: ResolvedHitFilter;
  /** Ms its calls have waited for uploads so far (at most the give-way's bound in all). */
  waited: number;
}

/** A request nobody closed (its server request failed before its groupings ran) is dropped after this long. */
const ABANDONED_MS = 60_000;

export interface ReportThreadHooks {
  /** Before each call; `forget` drops the call's request first (tests: the thread no longer holds it). */
  beforeCall?: () => 'forget' | void;
}

/**
 * The body of a report thread: holds a mirror of each account the main thread sent it (report-threads.ts keeps
 * the two in step), opens one snapshot per report request, and runs the request's groupings, threats and timeline
 * with the memory executor, one per turn of its own event loop, as the main thread would.
 */
export function serveReports(port: MessagePort, hooks: ReportThreadHooks = {}): void {
  const mirrors = new Map<number, Mirror>();
  const requests = new Map<number, OpenRequest & { at: number }>();
  const broken = new Map<number, string>();
  let giveWay: { signal: GiveWay; maxWaitMs: number } | null = null;
  const post = (m: FromReportThread) => port.postMessage(m);

  const open = (m: SnapshotMessage): void => {
    let mirror = mirrors.get(m.accountId);
    if (!mirror || m.fresh) mirrors.set(m.accountId, (mirror = { hits: new AccountHits(m.accountId), blocks: new Map() }));
    const { hits } = mirror;
    // One push each (a spread of a million values would overflow the stack).
    for (const [table, values] of Object.entries(m.tails) as Array<[InternedTable, unknown[]]>) {
      const into = hits[table].values as unknown[];
      for (const v of values) into.push(v);
    }
    const blocks: Block[] = [];
    const held = new Map<number, Block>();
    for (const b of m.blocks) {
      const block = typeof b === 'number' ? mirror.blocks.get(b) : b.block;
      const id = typeof b === 'number' ? b : b.id;
      if (!block) throw new Error(`report thread: block ${id} of account ${m.accountId} was never sent`);
      blocks.push(block);
      held.set(id, block);
    }
    // The main thread forgets the same blocks (report-threads.ts): the next snapshot sends what this one lacks.
    mirror.blocks = held;
    const snapshot = Object.create(hits, { version: { value: m.version }, hits: { value: m.hits }, blocks: { value: () => blocks } }) as AccountHits;
    requests.set(m.request, { executor: new MemoryExecutor(snapshot), filter: m.filter, waited: 0, at: Date.now() });
  };

  const run = (r: OpenRequest, what: ReportCall): Promise<unknown[]> => {
    switch (what.kind) {
      case 'group':
        return r.executor.group(what.grouping, r.filter, what.options);
      case 'threats':
        return r.executor.threats(r.filter, what.first);
      case 'timeline':
        return r.executor.timeline(r.filter, what.bucket, what.zone);
    }
  };

  port.on('message', (m: ToReportThread) => {
    const now = Date.now();
    for (const [id, r] of requests) if (now - r.at > ABANDONED_MS) requests.delete(id);
    if (m.type === 'giveWay') {
      giveWay = { signal: new GiveWay(m.buffer), maxWaitMs: m.maxWaitMs };
      return;
    }
    if (m.type === 'priority') {
      lowerThreadPriority(m.nice);
      return;
    }
    if (m.type === 'open') {
      try {
        open(m);
      } catch (err) {
        // Its calls answer with the reason.
        broken.set(m.request, (err as Error).message);
      }
      return;
    }
    if (m.type === 'close') {
      requests.delete(m.request);
      broken.delete(m.request);
      return;
    }
    if (hooks.beforeCall?.() === 'forget') requests.delete(m.request);
    const r = requests.get(m.request);
    if (!r)
      return post({
        type: 'failed',
        call: m.call,
        gone: !broken.has(m.request),
        message: broken.get(m.request) ?? `report thread: request ${m.request} is not open`,
      });
    // An upload parsing now comes first: the call waits for it, the request a bounded time in all.
    let waitedMs = 0;
    if (giveWay && r.waited < giveWay.maxWaitMs) {
      waitedMs = giveWay.signal.wait(giveWay.maxWaitMs - r.waited);
      r.waited += waitedMs;
    }
    r.at = Date.now();
    run(r, m.what).then(
      (rows) => post({ type: 'result', call: m.call, rows, waitedMs }),
      (err: Error) => post({ type: 'failed', call: m.call, message: err.message, stack: err.stack }),
    );
  });
}
