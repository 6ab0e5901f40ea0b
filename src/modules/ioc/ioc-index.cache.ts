import { DataSource } from 'typeorm';
import { dialectOf } from '../../db/bulk';
import { IocIndex, IocIndexBuilder, IocListInfo } from './matching/ioc-index';
import { DomainIndex, DomainIndexBuilder } from './matching/domain-index';
import { nextTurn } from '../../common/async/next-turn';
import { parseIp } from '../../common/net/ip';
import { ipKey } from './ioc-range';
import { ScopedAllow, ScopedAllows } from './matching/scoped-allows';
import { BuildThreads, BuildThreadsClosedError, BuildThreadsOptions } from './matching/build-thread';

interface CachedIndex {
  fingerprint: string;
  index: IocIndex;
  /** The policy's DOMAIN lists' entries; null when it has no DOMAIN list. */
  domains: DomainIndex | null;
  /** ALLOW entries scoped to a device or an internal host (not in `index`). */
  scoped: ScopedAllows;
  builtInMs: number;
  /** Order in which builds started: a slower, older build never replaces a newer one. */
  seq: number;
}

export interface PolicyIndex {
  index: IocIndex;
  /** The policy's domain matcher (DNS hits); null when it has no DOMAIN list, so uploads skip DNS parsing. */
  domains: DomainIndex | null;
  /** The policy's ALLOW entries scoped to one device or one internal host (ioc-scope.entity.ts); they are not in `index`. */
  scoped: ScopedAllows;
  /** True when this call had to (re)build it. */
  rebuilt: boolean;
  builtInMs: number;
}

/** Rows per SELECT when loading entries: bounded memory per round trip, few round trips. */
const LOAD_PAGE = 50_000;
/** Builds redone when the lists changed while loading, before one is used as it is (and never reused). */
const MAX_BUILD_ATTEMPTS = 3;

/** A build stopped because the cache was closed (shutdown). */
export class IndexCacheClosedError extends Error {
  constructor() {
    super('IOC index cache closed');
    this.name = 'IndexCacheClosedError';
  }
}

/**
 * The matcher index of each policy, kept in memory and rebuilt when its lists change.
 *
 * Freshness without trusting this process's memory: every use first reads the policy's revision and its
 * lists' revisions (one small query). Writers bump those in the same transaction as the change, so a
 * change committed by any process on any node is seen by the next use here, never served stale.
 * Entries that expire make the index rebuild once their expiry passes (validUntil).
 */
export class IocIndexCache {
  private readonly cache = new Map<number, CachedIndex>();
  private readonly building = new Map<string, Promise<CachedIndex>>();
  private seq = 0;
  private closed = false;

  /** Large indexes are built on a worker thread, so the event loop keeps answering meanwhile (build-thread.ts). */
  private readonly threads: BuildThreads;

  constructor(
    private readonly dataSource: DataSource,
    private readonly onBuild: (policyId: number, index: IocIndex, ms: number) => void = () => undefined,
    threads: BuildThreadsOptions = {},
  ) {
    this.threads = new BuildThreads(threads);
  }

  /** Builds a thread has done (tests read it). */
  get threadBuilds(): number {
    return this.threads.threadBuilds;
  }

  /**
   * The policy's index, rebuilt first when a list or the policy changed. `signal` stops the wait (not a
   * build other callers may share): the worker's job is handed back at shutdown without waiting for a rebuild.
   */
  async forPolicy(policyId: number, now = Date.now(), signal?: AbortSignal): Promise<PolicyIndex> {
    const { fingerprint, lists } = await this.fingerprint(policyId);
    const cached = this.cache.get(policyId);
    if (cached && cached.fingerprint === fingerprint && now < validUntil(cached)) {
      return { index: cached.index, domains: cached.domains, scoped: cached.scoped, rebuilt: false, builtInMs: cached.builtInMs };
    }
    // Concurrent uploads (and the warm-up) of one policy share a single build.
    const key = `${policyId}:${fingerprint}`;
    let pending = this.building.get(key);
    if (!pending) {
      const seq = ++this.seq;
      pending = this.build(policyId, fingerprint, lists, now, seq).finally(() => this.building.delete(key));
      // Every waiter may have stopped waiting (signal): a failed build must not become an unhandled rejection.
      pending.catch(() => undefined);
      this.building.set(key, pending);
    }
    const built = signal ? await untilAborted(pending, signal) : await pending;
    const current = this.cache.get(policyId);
    if (!current || current.seq <= built.seq) this.cache.set(policyId, built);
    return { index: built.index, domains: built.domains, scoped: built.scoped, rebuilt: true, builtInMs: built.builtInMs };
  }

  /** True when the policy's index is built and current as of now (one fingerprint query; builds nothing). */
  async isFresh(policyId: number, now = Date.now()): Promise<boolean> {
    const { fingerprint } = await this.fingerprint(policyId);
    const cached = this.cache.get(policyId);
    return !!cached && cached.fingerprint === fingerprint && now < validUntil(cached);
  }

  /** Shutdown: builds in progress stop at their next page (IndexCacheClosedError) and no new one starts. */
  close(): void {
    this.closed = true;
    this.threads.close();
  }

  /** `build` (on a thread or in place), or IndexCacheClosedError when the cache closed meanwhile. */
  private async finish<T>(build: () => Promise<T>): Promise<T> {
    if (this.closed) throw new IndexCacheClosedError();
    let built: T;
    try {
      built = await build();
    } catch (err) {
      throw err instanceof BuildThreadsClosedError ? new IndexCacheClosedError() : err;
    }
    if (this.closed) throw new IndexCacheClosedError();
    return built;
  }

  /** Drops a policy's index (it is rebuilt on next use). */
  evict(policyId: number): void {
    this.cache.delete(policyId);
  }

  private async fingerprint(policyId: number): Promise<{ fingerprint: string; lists: KindedList[] }> {
    const rows: Array<{
      prev: number | string;
      id: number | string | null;
      rev: number | string | null;
      kind: string;
      severity: number | string;
      category: string;
      entry_kind: string | null;
    }> = await this.dataSource.query(
      `SELECT p.revision AS prev, l.id AS id, l.revision AS rev, l.kind AS kind, l.severity AS severity, l.category AS category, l.entry_kind AS entry_kind
           FROM policy p
           LEFT JOIN policy_ioc_list pil ON pil.policy_id = p.id
           LEFT JOIN ioc_list l ON l.id = pil.ioc_list_id
          WHERE p.id = ?
          ORDER BY l.id`,
      [policyId],
    );
    const lists: KindedList[] = rows
      .filter((r) => r.id != null)
      .map((r) => ({
        id: Number(r.id),
        kind: r.kind as IocListInfo['kind'],
        severity: Number(r.severity),
        category: r.category,
        domains: r.entry_kind === 'DOMAIN',
      }));
    const fingerprint = `${rows[0]?.prev ?? 'none'}|${rows
      .filter((r) => r.id != null)
      .map((r) => `${r.id}:${r.rev}`)
      .join(',')}`;
    return { fingerprint, lists };
  }

  /**
   * Loads the lists page by page, then reads the fingerprint again: pages are separate statements, so a
   * change committed meanwhile could leave a mix of before and after. Then it builds again from the new
   * revisions; after MAX_BUILD_ATTEMPTS (lists changing non-stop) the last build serves this call only.
   */
  private async build(policyId: number, fingerprint: string, lists: KindedList[], now: number, seq: number): Promise<CachedIndex> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      const scoped = await this.loadScoped(lists, now);
      const index = await this.load(lists, now, scoped.entryIds);
      const domains = await this.loadDomains(lists, now);
      const after = await this.fingerprint(policyId);
      if (after.fingerprint === fingerprint || attempt === MAX_BUILD_ATTEMPTS) {
        const builtInMs = performance.now() - started;
        this.onBuild(policyId, index, builtInMs);
        // An unstable build gets a fingerprint no use will match: it is rebuilt on next use.
        return { fingerprint: after.fingerprint === fingerprint ? fingerprint : `unstable:${seq}`, index, domains, scoped: scoped.allows, builtInMs, seq };
      }
      fingerprint = after.fingerprint;
      lists = after.lists;
    }
  }

  /**
   * The ALLOW lists' scoped entries (ioc_scope): few, read in one statement per list. Their IDs are left out of the
   * index (they do not allow in the whole policy).
   */
  private async loadScoped(lists: KindedList[], now: number): Promise<{ allows: ScopedAllows; entryIds: Set<number> }> {
    const allows: ScopedAllow[] = [];
    const entryIds = new Set<number>();
    for (const list of lists) {
      if (list.kind !== 'ALLOW' || list.domains) continue;
      const rows: Array<{
        id: number | string;
        range_start: string;
        range_end: string;
        expires_at: number | string | null;
        device_id: number | string;
        internal_host: string;
      }> = await this.dataSource.query(
        `SELECT i.id, i.range_start, i.range_end, i.expires_at, s.device_id, s.internal_host
             FROM ioc_scope s JOIN ioc i ON i.id = s.ioc_id
            WHERE s.list_id = ?`,
        [list.id],
      );
      for (const r of rows) {
        entryIds.add(Number(r.id));
        const host = r.internal_host ? parseIp(r.internal_host) : null;
        // A host that does not read back allows nothing (never the whole device); its entry stays out of the index.
        if (r.internal_host && !host) continue;
        allows.push({
          entryId: Number(r.id),
          listId: list.id,
          start: r.range_start,
          end: r.range_end,
          deviceId: Number(r.device_id),
          hostKey: host ? ipKey(host) : null,
          expiresAt: r.expires_at == null ? null : Number(r.expires_at),
        });
      }
    }
    return { allows: new ScopedAllows(allows, now), entryIds };
  }

  private async load(lists: IocListInfo[], now: number, skip: ReadonlySet<number>): Promise<IocIndex> {
    const builder = new IocIndexBuilder(lists, { now });
    for (const list of lists) {
      // Keyset pages along the (list_id, id) index: memory stays bounded and no page sorts the list (without
      // that index SQLite sorted every page: 13.4 s for 1M entries). Between pages the event loop gets a turn:
      // better-sqlite3 answers synchronously, so a rebuild would otherwise freeze the server for seconds.
      const page = dialectOf(this.dataSource.manager) === 'sqlite' ? 10_000 : LOAD_PAGE;
      let after = 0;
      for (;;) {
        if (this.closed) throw new IndexCacheClosedError();
        const rows: Array<{ id: number | string; family: number | string; prefix: number | string; range_start: string; expires_at: number | string | null }> =
          await this.dataSource.query(`SELECT id, family, prefix, range_start, expires_at FROM ioc WHERE list_id = ? AND id > ? ORDER BY id LIMIT ${page}`, [
            list.id,
            after,
          ]);
        for (const r of rows) {
          const id = Number(r.id);
          if (skip.size && skip.has(id)) continue;
          const expires = r.expires_at == null ? null : Number(r.expires_at);
          if (Number(r.family) === 4) builder.addV4(id, list.id, parseInt(r.range_start.slice(24), 16), Number(r.prefix), expires);
          else builder.addV6(id, list.id, BigInt(`0x${r.range_start}`), Number(r.prefix), expires);
        }
        if (rows.length < page) break;
        after = Number(rows[rows.length - 1].id);
        await nextTurn();
      }
    }
    return this.finish(() => this.threads.ioc(builder));
  }

  /** The DOMAIN lists' entries, in keyset pages along ioc_domain's (list_id, id) index as load() does; null: no DOMAIN list. */
  private async loadDomains(lists: KindedList[], now: number): Promise<DomainIndex | null> {
    const domainLists = lists.filter((l) => l.domains);
    if (domainLists.length === 0) return null;
    const builder = new DomainIndexBuilder(domainLists, { now, packed: true });
    const page = dialectOf(this.dataSource.manager) === 'sqlite' ? 10_000 : LOAD_PAGE;
    for (const list of domainLists) {
      let after = 0;
      for (;;) {
        if (this.closed) throw new IndexCacheClosedError();
        const rows: Array<{ id: number | string; name: string; expires_at: number | string | null }> = await this.dataSource.query(
          `SELECT id, name, expires_at FROM ioc_domain WHERE list_id = ? AND id > ? ORDER BY id LIMIT ${page}`,
          [list.id, after],
        );
        for (const r of rows) builder.add({ id: Number(r.id), listId: list.id, name: r.name, expiresAt: r.expires_at == null ? null : Number(r.expires_at) });
        if (rows.length < page) break;
        after = Number(rows[rows.length - 1].id);
        await nextTurn();
      }
    }
    return this.finish(() => this.threads.domains(builder));
  }
}

/** A list of the policy, and whether it is a DOMAIN list (entries in ioc_domain, not ioc). */
interface KindedList extends IocListInfo {
  readonly domains: boolean;
}

/** The earlier expiry of the two matchers: the cached pair is rebuilt after it. */
function validUntil(cached: CachedIndex): number {
  return Math.min(cached.index.validUntil, cached.domains?.validUntil ?? Infinity, cached.scoped.validUntil);
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
