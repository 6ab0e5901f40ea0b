import { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, Kind, OperationDefinitionNode } from 'graphql';
import type { AppConfig } from '../config/config';
import type { GiveWay } from '../common/threads/give-way';
import { comeBackLaterError } from '../graphql/errors';
import { REPORT_FIELDS } from './rate-limit';

export type OverloadReason = 'queue_full' | 'queue_timeout' | 'event_loop_lag';

/** How often the lag probe ticks, and how long a measured stall keeps counting as "now". */
const PROBE_MS = 20;
const LAG_WINDOW_MS = 1_000;

export class Overloaded extends Error {
  constructor(
    readonly reason: OverloadReason,
    readonly retryAfterSeconds: number,
  ) {
    super(`The server is busy computing other reports; nothing was computed. Retry in ${retryAfterSeconds} s.`);
    this.name = 'Overloaded';
  }
}

/**
 * Admission control for report work (hitReport, dashboard, flowHits; an instance of its own admits export downloads): first a bounded wait while an upload parses (`giveWay`), then at most `concurrency` computed at once,
 * at most `queue` waiting (each at most `queueTimeoutMs`), and none waiting while the event loop has stalled
 * past `maxLagMs` in the last second. Beyond that a request is refused at once (503 + Retry-After) instead of piling up behind
 * the others: a queue without bound only turns load into latency for everyone, /readyz and uploads included.
 */
export class ReportAdmission {
  private running = 0;
  private readonly waiting: Array<{ admit: () => void; timer: NodeJS.Timeout }> = [];
  private readonly probe: NodeJS.Timeout | null = null;
  private lastTick = performance.now();
  /** [time, lag] of recent stalls, oldest first; only stalls over PROBE_MS are kept. */
  private stalls: Array<[number, number]> = [];

  constructor(
    private readonly config: AppConfig['admission'],
    private readonly onRefused: (reason: OverloadReason) => void = () => undefined,
    /** Work a request gives way to before it is admitted (uploads parsing, REPORT_GIVE_WAY_MS): at most `maxWaitMs`; `onWaited` hears each wait. */
    private readonly giveWay?: { signal: GiveWay; maxWaitMs: number; onWaited?: (ms: number) => void },
  ) {
    if (config.maxLagMs > 0) {
      this.probe = setInterval(() => this.tick(), PROBE_MS);
      this.probe.unref();
    }
  }

  /** The longest event-loop stall measured in the last second, in ms (0 when the probe is off). */
  get lagMs(): number {
    this.tick();
    let max = 0;
    for (const [, lag] of this.stalls) if (lag > max) max = lag;
    return max;
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a slot; resolves to its release (call once), or throws Overloaded. */
  async acquire(): Promise<() => void> {
    if (this.giveWay && this.giveWay.signal.active > 0) {
      const t0 = performance.now();
      await this.giveWay.signal.whenClear(this.giveWay.maxWaitMs);
      this.giveWay.onWaited?.(performance.now() - t0);
    }
    if (this.running < this.config.concurrency) {
      const release = this.slot();
      // Started in a later turn (the check phase) as well: the requests that arrived with this one then see the
      // slot taken and queue here, where the bounds apply, instead of unseen in the socket buffers while
      // synchronous reports run back to back.
      await new Promise((resolve) => setImmediate(resolve));
      return release;
    }
    // Only a request that would wait is refused for lag: a lone client whose last report stalled the loop is
    // still served, while under load the queue stops growing as soon as the loop falls behind.
    if (this.config.maxLagMs > 0 && this.lagMs > this.config.maxLagMs) throw this.refuse('event_loop_lag');
    if (this.waiting.length >= this.config.queue) throw this.refuse('queue_full');
    await new Promise<void>((resolve, reject) => {
      const entry = {
        admit: resolve,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(this.refuse('queue_timeout'));
        }, this.config.queueTimeoutMs),
      };
      this.waiting.push(entry);
    });
    // release() handed its slot over to this request (running was not decremented).
    return this.releaser();
  }

  close(): void {
    if (this.probe) clearInterval(this.probe);
  }

  private slot(): () => void {
    this.running++;
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The next report starts in a later turn of the event loop, not in this one's microtasks: handed over at
      // once, a queue of reports would run back to back with no timer or socket served in between.
      if (next) {
        clearTimeout(next.timer);
        setImmediate(next.admit);
      } else this.running--;
    };
  }

  private refuse(reason: OverloadReason): Overloaded {
    this.onRefused(reason);
    return new Overloaded(reason, this.config.retryAfterSeconds);
  }

  /** A timer that fires late measures the stall that delayed it. */
  private tick(): void {
    const now = performance.now();
    const lag = now - this.lastTick - PROBE_MS;
    // Called from the getter as well: only a whole interval late counts as a stall.
    if (lag > PROBE_MS) this.stalls.push([now, lag]);
    if (now - this.lastTick >= PROBE_MS) this.lastTick = now;
    while (this.stalls.length > 0 && now - this.stalls[0][0] > LAG_WINDOW_MS) this.stalls.shift();
  }

  /**
   * GraphQL queries that select a report field take a slot before any resolver runs and give it back once
   * the answer is sent. Apollo runs every plugin's didResolveOperation at once: when another one refuses the
   * request (429 over the rate limit), the answer may be sent before the slot is granted, so a slot granted
   * after the answer is given back at once.
   */
  plugin(): ApolloServerPlugin {
    return {
      requestDidStart: async () => {
        let release: (() => void) | null = null;
        let answered = false;
        return {
          didResolveOperation: async ({ operation }) => {
            if (!operation || operation.operation !== 'query' || !selectsReport(operation)) return;
            try {
              release = await this.acquire();
            } catch (err) {
              if (err instanceof Overloaded) throw overloadedError(err);
              throw err;
            }
            if (answered) release();
          },
          willSendResponse: async () => {
            answered = true;
            release?.();
          },
        };
      },
    };
  }
}

/** Root fields only, fragments included: a report nested under another field is not a root report. */
function selectsReport(operation: OperationDefinitionNode): boolean {
  for (const s of operation.selectionSet.selections) {
    if (s.kind === Kind.FIELD && REPORT_FIELDS.has(s.name.value)) return true;
    // Inline fragments and named fragments at the root: count them as reports (cheap to over-count here).
    if (s.kind !== Kind.FIELD) return true;
  }
  return false;
}

export function overloadedError(err: Overloaded): GraphQLError {
  return comeBackLaterError(err.message, 'OVERLOADED', 503, err.retryAfterSeconds, { reason: err.reason });
}
