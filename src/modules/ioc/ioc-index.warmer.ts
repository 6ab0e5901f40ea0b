import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { IocIndexCache } from './ioc-index.cache';

/** Told after a committed change that makes matcher indexes stale; the services call it, the warmer listens. */
export interface IndexChanges {
  /** Entries, kind, severity or category of these lists changed. */
  listsChanged(listIds: number[]): void;
  /** These policies' lists changed, or a device now uses them. */
  policiesChanged(policyIds: number[]): void;
}

export const NO_INDEX_CHANGES: IndexChanges = { listsChanged: () => undefined, policiesChanged: () => undefined };

export interface WarmerOptions {
  /** Quiet time after the last change before a warm-up starts: a burst of edits costs one rebuild. */
  debounceMs: number;
}

/**
 * Rebuilds, in the background, the matcher index of the policies a committed change made stale (and at
 * start, of every policy a device uses), so the first upload after a change does not pay the rebuild.
 * Only an optimisation: the cache checks revisions on every use and rebuilds whatever is stale, so a
 * warm-up that fails, is late or is skipped changes no result. One warm-up at a time; changes arriving
 * meanwhile are gathered for the next. Idle until start(), so the CLI never builds anything.
 */
export class IocIndexWarmer implements IndexChanges {
  private readonly lists = new Set<number>();
  private readonly policies = new Set<number>();
  private allInUse = false;
  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly dataSource: DataSource,
    private readonly cache: IocIndexCache,
    private readonly logger: Logger,
    private readonly options: WarmerOptions = { debounceMs: 100 },
  ) {}

  /** Warms every policy a device uses, then follows changes. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.allInUse = true;
    this.kick();
  }

  listsChanged(listIds: number[]): void {
    if (!this.accepting()) return;
    for (const id of listIds) this.lists.add(id);
    this.schedule();
  }

  policiesChanged(policyIds: number[]): void {
    if (!this.accepting()) return;
    for (const id of policyIds) this.policies.add(id);
    this.schedule();
  }

  /** Resolves once nothing is scheduled or building (tests and the benchmark wait on it). */
  idle(): Promise<void> {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Shutdown: drops what is scheduled and stops a build in progress at its next page (closes the cache). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clearPending();
    this.cache.close();
    await this.running;
    this.notifyIdle();
  }

  private accepting(): boolean {
    return this.started && !this.stopped;
  }

  private busy(): boolean {
    return this.timer !== null || this.running !== null || this.hasPending();
  }

  private hasPending(): boolean {
    return this.allInUse || this.lists.size > 0 || this.policies.size > 0;
  }

  private clearPending(): void {
    this.allInUse = false;
    this.lists.clear();
    this.policies.clear();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, this.options.debounceMs);
    // A pending warm-up never keeps the process alive.
    this.timer.unref();
  }

  /** Starts a warm-up unless one runs (that one takes the new work when it ends). */
  private kick(): void {
    if (this.running || this.stopped || !this.hasPending()) {
      if (!this.busy()) this.notifyIdle();
      return;
    }
    this.running = this.drain()
      .catch((err) => this.logger.error({ event: 'ioc_index.warm_failed', err }, 'IOC index warm-up failed'))
      .finally(() => {
        this.running = null;
        if (this.timer === null) this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.hasPending()) {
      const all = this.allInUse;
      const lists = [...this.lists];
      const policies = [...this.policies];
      this.clearPending();
      for (const policyId of await this.policiesToWarm(all, lists, policies)) {
        if (this.stopped) return;
        const started = performance.now();
        try {
          const { rebuilt } = await this.cache.forPolicy(policyId);
          if (rebuilt) {
            this.logger.info({ event: 'ioc_index.warmed', policy: policyId, durationMs: Math.round(performance.now() - started) }, 'IOC index warmed');
          }
        } catch (err) {
          if (this.stopped) return;
          // The next upload of this policy builds it instead (and reports its own error if it fails too).
          this.logger.warn({ event: 'ioc_index.warm_failed', policy: policyId, err }, 'IOC index warm-up failed');
        }
      }
    }
  }

  /** Policies with at least one device among those named or using the lists named; all of them with `all`. */
  private async policiesToWarm(all: boolean, lists: number[], policies: number[]): Promise<number[]> {
    const ids = new Set<number>();
    const add = (rows: Array<{ id: number | string }>) => rows.forEach((r) => ids.add(Number(r.id)));
    if (all) add(await this.dataSource.query(`SELECT DISTINCT policy_id AS id FROM device`));
    for (let i = 0; !all && i < lists.length; i += 500) {
      const chunk = lists.slice(i, i + 500);
      add(
        await this.dataSource.query(
          `SELECT DISTINCT pil.policy_id AS id FROM policy_ioc_list pil
            WHERE pil.ioc_list_id IN (${chunk.map(() => '?').join(', ')}) AND EXISTS (SELECT 1 FROM device d WHERE d.policy_id = pil.policy_id)`,
          chunk,
        ),
      );
    }
    for (let i = 0; !all && i < policies.length; i += 500) {
      const chunk = policies.slice(i, i + 500);
      add(await this.dataSource.query(`SELECT DISTINCT policy_id AS id FROM device WHERE policy_id IN (${chunk.map(() => '?').join(', ')})`, chunk));
    }
    return [...ids].sort((a, b) => a - b);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
