import { DataSource, In } from 'typeorm';
import { LogUpload } from '../log-upload/log-upload.entity';
import { LogUploadStatus } from '../log-upload/log-upload.enums';

/** Hits were found in an upload (its first run, or a re-run that found some it did not have): what hitsFound subscribers re-read. */
export interface HitsChanged {
  accountId: number;
  uploadId: number;
  /** The hit change's revision (hit-change.ts): one write of the upload's hits. */
  revision: number;
}

type Listener<T> = (value: T) => void;

/** What a queue's next() gives once its subscription has ended. */
const ENDED: unique symbol = Symbol('ended');

/**
 * Events for subscriptions that cross processes: any process may process an upload, so this one learns of it
 * from the database, not from its own worker. While someone listens it polls, every `pollMs`: the upload rows
 * watched (an event when status or progress moved) and the hit change log after its cursor (hit-change.ts, whose
 * revisions commit in order, so nothing committed late is skipped). Nothing is polled while nobody listens.
 */
export class LiveFeed {
  private readonly uploads = new Map<number, Set<Listener<LogUpload>>>();
  private readonly seen = new Map<number, string>();
  private readonly hits = new Map<number, Set<Listener<HitsChanged>>>();
  private cursor: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /**
   * Yields the upload (scoped to the account, and to the key that made it when `apiKeyId` is given: an UPLOADER's)
   * now and at each change, and ends after it is COMPLETED or FAILED.
   */
  async *uploadProgress(accountId: number, uploadId: number | null, apiKeyId: number | null = null, signal?: AbortSignal): AsyncGenerator<LogUpload> {
    const first =
      uploadId == null ? null : await this.dataSource.getRepository(LogUpload).findOneBy({ accountId, id: uploadId, ...(apiKeyId != null && { apiKeyId }) });
    if (!first) return;
    yield first;
    if (finished(first)) return;
    const queue = this.queue<LogUpload>(signal);
    this.add(this.uploads, first.id, queue.push);
    this.seen.set(first.id, signature(first));
    try {
      for (;;) {
        const u = await queue.next();
        if (u === ENDED) return;
        yield u;
        if (finished(u)) return;
      }
    } finally {
      this.remove(this.uploads, first.id, queue.push);
      if (!this.uploads.has(first.id)) this.seen.delete(first.id);
    }
  }

  /** Yields each upload of the account in which hits were found after the call; ends when `signal` aborts. */
  async *hitsChanged(accountId: number, signal?: AbortSignal): AsyncGenerator<HitsChanged> {
    if (this.cursor === null) this.cursor = await this.maxRevision();
    const queue = this.queue<HitsChanged>(signal);
    this.add(this.hits, accountId, queue.push);
    try {
      for (;;) {
        const change = await queue.next();
        if (change === ENDED) return;
        yield change;
      }
    } finally {
      this.remove(this.hits, accountId, queue.push);
    }
  }

  /** How many hitsChanged listeners have their cursor set and are registered (tests wait for them). */
  hitListeners(): number {
    let n = 0;
    for (const set of this.hits.values()) n += set.size;
    return n;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Values pushed by the poll, taken in order; ENDED once `signal` aborts. A generator waiting here cannot be ended by
   * its return() (an async generator's return waits for its pending await): the subscription's end aborts the
   * signal, which ends the wait, and the generator's `finally` then unregisters it at once, not at the next event.
   */
  private queue<T>(signal?: AbortSignal) {
    const items: T[] = [];
    let wake: (() => void) | null = null;
    signal?.addEventListener('abort', () => wake?.(), { once: true });
    return {
      push: (v: T) => {
        items.push(v);
        wake?.();
        wake = null;
      },
      next: async (): Promise<T | typeof ENDED> => {
        while (items.length === 0) {
          if (signal?.aborted) return ENDED;
          await new Promise<void>((r) => (wake = r));
        }
        return items.shift()!;
      },
    };
  }

  private add<K, T>(map: Map<K, Set<Listener<T>>>, key: K, l: Listener<T>): void {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(l);
    this.schedule();
  }

  private remove<K, T>(map: Map<K, Set<Listener<T>>>, key: K, l: Listener<T>): void {
    const set = map.get(key);
    set?.delete(l);
    if (set?.size === 0) map.delete(key);
  }

  private schedule(): void {
    if (this.timer || this.polling || this.closed) return;
    if (this.uploads.size === 0 && this.hits.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.polling = true;
      this.poll()
        .catch(this.onError)
        .finally(() => {
          this.polling = false;
          this.schedule();
        });
    }, this.pollMs);
  }

  private async poll(): Promise<void> {
    if (this.uploads.size > 0) {
      const rows = await this.dataSource.getRepository(LogUpload).findBy({ id: In([...this.uploads.keys()]) });
      for (const u of rows) {
        const sig = signature(u);
        if (this.seen.get(u.id) === sig) continue;
        this.seen.set(u.id, sig);
        for (const l of this.uploads.get(u.id) ?? []) l(u);
      }
    }
    if (this.hits.size > 0) {
      if (this.cursor === null) this.cursor = await this.maxRevision();
      // Writes of an upload's hits that found some it did not have (`found` null: recorded before the column). Not a
      // re-run that found nothing new, a purge of some of its hits, a verdict (TRIAGE), a device's hits deleted.
      const rows = (await this.dataSource.query(
        `SELECT revision, account_id, upload_id FROM hit_change
          WHERE revision > ? AND upload_id IS NOT NULL AND kind IS NULL AND (found IS NULL OR found > 0) ORDER BY revision LIMIT 1000`,
        [this.cursor],
      )) as Array<Record<string, string | number>>;
      for (const r of rows) {
        this.cursor = Math.max(this.cursor, Number(r.revision));
        const accountId = Number(r.account_id);
        for (const l of this.hits.get(accountId) ?? []) l({ accountId, uploadId: Number(r.upload_id), revision: Number(r.revision) });
      }
    } else {
      // Nobody listens for hits: start from the present when someone does.
      this.cursor = null;
    }
  }

  private async maxRevision(): Promise<number> {
    const [row] = (await this.dataSource.query(`SELECT MAX(revision) AS r FROM hit_change`)) as Array<{ r: string | number | null }>;
    return Number(row?.r ?? 0);
  }
}

function finished(u: LogUpload): boolean {
  return u.status === LogUploadStatus.COMPLETED || u.status === LogUploadStatus.FAILED;
}

function signature(u: LogUpload): string {
  return `${u.status}|${u.progressBytes}|${u.progressLines}|${u.attempts}`;
}
