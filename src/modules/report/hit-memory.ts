import { DataSource } from 'typeorm';
import { nextTurn } from '../../common/async/next-turn';
import { sqliteHandle } from '../../db/sqlite-handle';
import { HitSum, hitSumSql, STORE_COLUMNS, StoreKey } from '../flow-hit/flow-hit.columns';
import { triageStatusSql } from '../flow-hit/hit-triage.sql';

/**
 * An in-memory, column-wise copy of each account's flow hits, kept exact by following the hit change log
 * (hit-change.ts), from which reports (hit-memory.report.ts) compute every grouping of a window in one pass of
 * typed arrays.
 *
 * Why: a 30-day hitReport over 290k hits is ten groupings, several of them counting distinct (entry, host),
 * (host, entry) or (list, entry) pairs that no index or roll-up pre-aggregates (more than half of a busy account's
 * pairs occur once). Even from covering indexes, SQL took 1.8-2.7 s for all ten; scanning the same hits in
 * typed arrays takes tens of milliseconds. The database stays the only record: this copy is rebuilt from it at
 * start (in the background; reports use SQL meanwhile) and after it falls behind the change log's retention.
 *
 * Exactness: before each report the store reads the changes committed since the last revision it applied (one
 * indexed query) and applies them: an upload's hits are re-read, a deleted device's hits dropped, a purge's
 * cutoff applied. So a report never misses a committed change, and processes sharing a database (an API
 * server and a separate worker) stay in step. Accounts are loaded while the total stays under `maxHits`; a
 * larger account is reported from SQL.
 *
 * Layout: hits are kept per upload, in blocks of columns (an upload's hits are replaced as one). Internal hosts
 * (device + address), external addresses and matched entries (entry, list, CIDR, severity, category as the
 * hit recorded them) are interned per account, so a hit is about 53 bytes: 4 float64 (first/last seen,
 * packets, bytes), 4 int32 (host, external, entry group, destination port) and 2 bytes (direction, protocol).
 */

/** What the store reads of a hit: the flow_hit columns declared `store` (flow-hit.columns.ts) and the sums it keeps. */
const STORE_SUMS = ['packets', 'bytes'] as const satisfies readonly HitSum[];
/** The columns read, ending with the hit's triage status (not a flow_hit column: it changes without the hit changing). */
const columnsSql = (mysql: boolean) =>
  [...STORE_COLUMNS.map((c) => c.sql), ...STORE_SUMS.map((s) => `${hitSumSql(s)} AS ${s}`), `${triageStatusSql(mysql, 'flow_hit')} AS triage`].join(', ');
/** Each field's position in a row read with columnsSql. */
const AT = Object.fromEntries([...STORE_COLUMNS.map((c) => c.key), ...STORE_SUMS, 'triage'].map((k, i) => [k, i])) as Record<
  StoreKey | (typeof STORE_SUMS)[number] | 'triage',
  number
>;

/** A hit as read for the store: columnsSql's values in their order (arrays: half the cost of objects per row on SQLite). */
type HitRow = Array<string | number | null>;
const { id: ID, uploadId: UPLOAD, deviceId: DEVICE, firstSeenAt: FIRST, lastSeenAt: LAST, direction: DIRECTION, protocol: PROTOCOL } = AT;
const { internalIp: INTERNAL_IP, internalKey: INTERNAL_KEY, externalIp: EXTERNAL_IP, externalKey: EXTERNAL_KEY, destinationPort: PORT } = AT;
const { foundBy: FOUND_BY, foundAt: FOUND_AT, triage: TRIAGE } = AT;
const { packets: PACKETS, bytes: BYTES, iocId: IOC, iocListId: LIST, matchedCidr: CIDR, severity: SEVERITY, category: CATEGORY } = AT;

type Row = Record<string, string | number | null>;

/** Values interned to dense ids. */
export class Interner<T> {
  private readonly ids = new Map<string, number>();
  readonly values: T[] = [];

  id(key: string, make: () => T): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(key, id);
      this.values.push(make());
    }
    return id;
  }

  get size(): number {
    return this.values.length;
  }
}

export interface HostInfo {
  deviceId: number;
  ip: string;
  /** Sortable address key (as flow_hit.internal_key), for CIDR filters. */
  key: string;
}

export interface ExternalInfo {
  ip: string;
  key: string;
}

/** A matched entry as hits recorded it: byIoc's group. */
export interface EntryGroup {
  iocId: number;
  listId: number;
  cidr: string;
  severity: number;
  category: string;
}

/** One upload's hits (or part of them), column-wise, in capture order. */
export interface Block {
  uploadId: number;
  n: number;
  minAt: number;
  maxAt: number;
  at: Float64Array;
  last: Float64Array;
  packets: Float64Array;
  bytes: Float64Array;
  host: Int32Array;
  external: Int32Array;
  group: Int32Array;
  /** -1 when the hit has no destination port. */
  port: Int32Array;
  direction: Uint8Array;
  protocol: Uint8Array;
  /** How each hit was found (foundBys) and when: only filtered on, never grouped. */
  foundBy: Uint8Array;
  foundAt: Float64Array;
  /** Each hit's triage status (triages): only filtered on. A triage change re-reads the upload (hit-triage.service.ts). */
  triage: Uint8Array;
}

/** Blocks by identity: a block is never changed once built, so an id names its contents (ids are never reused). */
const blockIds = new WeakMap<Block, number>();
let nextBlockId = 1;
export function blockId(b: Block): number {
  let id = blockIds.get(b);
  if (id === undefined) blockIds.set(b, (id = nextBlockId++));
  return id;
}

/** One account's hits and the tables their ids point into. */
export class AccountHits {
  readonly hosts = new Interner<HostInfo>();
  readonly externals = new Interner<ExternalInfo>();
  readonly groups = new Interner<EntryGroup>();
  readonly directions = new Interner<string>();
  readonly protocols = new Interner<string>();
  readonly foundBys = new Interner<string>();
  readonly triages = new Interner<string>();
  /** Blocks by upload. */
  readonly uploads = new Map<number, Block[]>();
  hits = 0;
  /** Bumped by every change, so a selection computed before it is not reused (hit-memory.report.ts). */
  version = 0;

  constructor(readonly accountId: number) {}

  *blocks(): Iterable<Block> {
    for (const list of this.uploads.values()) yield* list;
  }

  /**
   * The hits as they are now, for one request's groupings: changes applied later do not show in it. Blocks are
   * never changed in place (a change drops or adds whole blocks) and the interned tables only grow, so the
   * snapshot keeps the list of blocks and the version, and shares everything else.
   */
  snapshot(): AccountHits {
    // One list per version, shared by the snapshots taken at it (each request takes one).
    if (this.listed?.version !== this.version) this.listed = { version: this.version, blocks: [...this.blocks()] };
    const blocks = this.listed.blocks;
    return Object.create(this, { version: { value: this.version }, blocks: { value: () => blocks } }) as AccountHits;
  }

  /** The blocks as of a version (snapshot()); every change bumps the version first. */
  private listed: { version: number; blocks: readonly Block[] } | null = null;

  /** Rows (one upload's, or a load batch's) grouped into blocks per upload and added. */
  add(rows: HitRow[]): void {
    this.version++;
    const byUpload = new Map<number, HitRow[]>();
    for (const r of rows) {
      const u = Number(r[UPLOAD]);
      let list = byUpload.get(u);
      if (!list) byUpload.set(u, (list = []));
      list.push(r);
    }
    for (const [uploadId, list] of byUpload) {
      const block = this.block(uploadId, list);
      const existing = this.uploads.get(uploadId);
      if (existing) existing.push(block);
      else this.uploads.set(uploadId, [block]);
      this.hits += block.n;
    }
  }

  /** Replaces an upload's hits. */
  replaceUpload(uploadId: number, rows: HitRow[]): void {
    this.dropUpload(uploadId);
    if (rows.length) this.add(rows);
  }

  dropUpload(uploadId: number): void {
    this.version++;
    for (const b of this.uploads.get(uploadId) ?? []) this.hits -= b.n;
    this.uploads.delete(uploadId);
  }

  /** Keeps the hits `keep` accepts, looking only into blocks `skipBlock` does not pass over. */
  private filter(skipBlock: (b: Block) => boolean, keep: (b: Block, i: number) => boolean): void {
    this.version++;
    for (const [uploadId, list] of this.uploads) {
      const next: Block[] = [];
      for (const b of list) {
        if (skipBlock(b)) {
          next.push(b);
          continue;
        }
        const rows: number[] = [];
        for (let i = 0; i < b.n; i++) if (keep(b, i)) rows.push(i);
        this.hits -= b.n - rows.length;
        if (rows.length === b.n) next.push(b);
        else if (rows.length) next.push(subset(b, rows));
      }
      if (next.length) this.uploads.set(uploadId, next);
      else this.uploads.delete(uploadId);
    }
  }

  purgeBefore(cutoff: number): void {
    this.filter(
      (b) => b.minAt >= cutoff,
      (b, i) => b.at[i] >= cutoff,
    );
  }

  dropDevice(deviceId: number): void {
    const hosts = this.hosts.values;
    this.filter(
      () => false,
      (b, i) => hosts[b.host[i]].deviceId !== deviceId,
    );
  }

  private block(uploadId: number, rows: HitRow[]): Block {
    // In capture order, so a window is one range of each block (hit-memory.report.ts finds it by bisection).
    rows.sort((x, y) => Number(x[FIRST]) - Number(y[FIRST]) || Number(x[ID]) - Number(y[ID]));
    const n = rows.length;
    const b: Block = {
      uploadId,
      n,
      minAt: Infinity,
      maxAt: -Infinity,
      at: column(Float64Array, n),
      last: column(Float64Array, n),
      packets: column(Float64Array, n),
      bytes: column(Float64Array, n),
      host: column(Int32Array, n),
      external: column(Int32Array, n),
      group: column(Int32Array, n),
      port: column(Int32Array, n),
      direction: column(Uint8Array, n),
      protocol: column(Uint8Array, n),
      foundBy: column(Uint8Array, n),
      foundAt: column(Float64Array, n),
      triage: column(Uint8Array, n),
    };
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const at = Number(r[FIRST]);
      b.at[i] = at;
      if (at < b.minAt) b.minAt = at;
      if (at > b.maxAt) b.maxAt = at;
      b.last[i] = Number(r[LAST]);
      b.packets[i] = Number(r[PACKETS]);
      b.bytes[i] = Number(r[BYTES]);
      const deviceId = Number(r[DEVICE]);
      const ip = String(r[INTERNAL_IP]);
      b.host[i] = this.hosts.id(`${deviceId}/${ip}`, () => ({ deviceId, ip, key: String(r[INTERNAL_KEY]) }));
      const ext = String(r[EXTERNAL_IP]);
      b.external[i] = this.externals.id(ext, () => ({ ip: ext, key: String(r[EXTERNAL_KEY]) }));
      const g: EntryGroup = {
        iocId: Number(r[IOC]),
        listId: Number(r[LIST]),
        cidr: String(r[CIDR]),
        severity: Number(r[SEVERITY]),
        category: String(r[CATEGORY]),
      };
      b.group[i] = this.groups.id(`${g.iocId}|${g.listId}|${g.cidr}|${g.severity}|${g.category}`, () => g);
      b.port[i] = r[PORT] == null ? -1 : Number(r[PORT]);
      const dir = String(r[DIRECTION]);
      b.direction[i] = this.directions.id(dir, () => dir);
      const proto = String(r[PROTOCOL]);
      b.protocol[i] = this.protocols.id(proto, () => proto);
      const by = String(r[FOUND_BY]);
      b.foundBy[i] = this.foundBys.id(by, () => by);
      b.foundAt[i] = Number(r[FOUND_AT]);
      const triage = String(r[TRIAGE]);
      b.triage[i] = this.triages.id(triage, () => triage);
    }
    return b;
  }
}

type ColumnType<A> = { new (buffer: SharedArrayBuffer): A; BYTES_PER_ELEMENT: number };

/**
 * A column of a block, in shared memory: the report threads (report-thread/) read the blocks the main thread
 * builds without a copy (blocks are never changed once built).
 */
function column<A extends Float64Array | Int32Array | Uint8Array>(type: ColumnType<A>, n: number): A {
  return new type(new SharedArrayBuffer(n * type.BYTES_PER_ELEMENT));
}

function subset(b: Block, rows: number[]): Block {
  const pick = <A extends Float64Array | Int32Array | Uint8Array>(a: A): A => {
    const out = column(a.constructor as ColumnType<A>, rows.length);
    for (let j = 0; j < rows.length; j++) out[j] = a[rows[j]];
    return out;
  };
  const at = pick(b.at);
  let minAt = Infinity;
  let maxAt = -Infinity;
  for (const t of at) {
    if (t < minAt) minAt = t;
    if (t > maxAt) maxAt = t;
  }
  return {
    uploadId: b.uploadId,
    n: rows.length,
    minAt,
    maxAt,
    at,
    last: pick(b.last),
    packets: pick(b.packets),
    bytes: pick(b.bytes),
    host: pick(b.host),
    external: pick(b.external),
    group: pick(b.group),
    port: pick(b.port),
    direction: pick(b.direction),
    protocol: pick(b.protocol),
    foundBy: pick(b.foundBy),
    foundAt: pick(b.foundAt),
    triage: pick(b.triage),
  };
}

interface Change {
  revision: number;
  accountId: number | null;
  uploadId: number | null;
  deviceId: number | null;
  purgedBefore: number | null;
}

/** An account being loaded: the changes that arrive meanwhile, applied before it is used. */
interface Loading {
  uploads: Set<number>;
  devices: Set<number>;
  purgedBefore: number;
  restart: boolean;
}

type AccountState =
  | { status: 'ready'; hits: AccountHits }
  | { status: 'loading'; pending: Loading; done: Promise<void> }
  | { status: 'too-big'; checkedAt: number; hits: number };

export interface HitMemoryOptions {
  /** Most hits held over all accounts; 0 turns the store off (every report reads SQL). */
  maxHits: number;
  /**
   * Primary-key span per load statement (default 2000). Each statement and its decoding run in one turn of the
   * event loop: at 1M hits on SQLite, 20,000 held other requests ~110 ms per batch (p50) and loaded in 6.6 s,
   * 2000 held them 8 ms and loaded in 4.3 s (less garbage per batch).
   */
  batch?: number;
  onError?: (err: unknown, what: string) => void;
  /** Called after each batch of a load has been read (the tests commit changes there, mid-load). */
  afterBatch?: () => Promise<void>;
}

const TOO_BIG_RECHECK_MS = 10 * 60_000;

export class HitMemory {
  private readonly accounts = new Map<number, AccountState>();
  /** The last change applied; null before the first sync. */
  private revision: number | null = null;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** The newest purge cutoff seen: rows loaded later that predate it are dropped (they are being deleted). */
  private purgedBefore = -Infinity;
  private closed = false;
  private readonly columns: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: HitMemoryOptions,
  ) {
    this.columns = columnsSql(dataSource.options.type !== 'better-sqlite3');
  }

  get enabled(): boolean {
    return this.options.maxHits > 0 && !this.closed;
  }

  /** Hits held, over all ready accounts. */
  get heldHits(): number {
    let total = 0;
    for (const s of this.accounts.values()) if (s.status === 'ready') total += s.hits.hits;
    return total;
  }

  close(): void {
    this.closed = true;
    this.accounts.clear();
  }

  /**
   * The account's hits as of every change committed before this call, or null when they are not held (not
   * loaded yet: a load starts in the background; too many hits; the store is off). Null means: read SQL.
   */
  async view(accountId: number): Promise<AccountHits | null> {
    if (!this.enabled) return null;
    try {
      await this.sync();
    } catch (err) {
      this.options.onError?.(err, 'sync');
      return null;
    }
    const s = this.accounts.get(accountId);
    if (s?.status === 'ready') return s.hits;
    if (!s || (s.status === 'too-big' && Date.now() - s.checkedAt > TOO_BIG_RECHECK_MS))
      void this.load(accountId).catch((err) => this.options.onError?.(err, 'load'));
    return null;
  }

  /** Loads an account (if not held) and resolves once reports on it read memory, or it is too big. */
  async warm(accountId: number): Promise<void> {
    if (!this.enabled) return;
    const s = this.accounts.get(accountId);
    if (s?.status === 'ready') return;
    if (s?.status === 'loading') return s.done;
    return this.load(accountId);
  }

  /** Applies every change committed since the last one applied. Concurrent callers share one queued run. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    const after = this.running ?? Promise.resolve();
    const run: Promise<void> = after
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        this.running = run;
        return this.applyChanges();
      })
      .finally(() => {
        if (this.running === run) this.running = null;
      });
    this.queued = run;
    return run;
  }

  private async applyChanges(): Promise<void> {
    if (this.revision === null) {
      const [row] = (await this.dataSource.query('SELECT revision FROM hit_revision WHERE id = 1')) as Row[];
      this.revision = Number(row?.revision ?? 0);
      return;
    }
    for (;;) {
      const rows = (await this.dataSource.query(
        'SELECT revision, account_id, upload_id, device_id, purged_before, recorded_at FROM hit_change WHERE revision > ? ORDER BY revision LIMIT 500',
        [this.revision],
      )) as Row[];
      if (rows.length === 0) return;
      if (Number(rows[0].revision) !== this.revision + 1) {
        // The log was pruned past us (idle for over hit-change.ts HIT_CHANGE_KEEP_MS): start over from the database.
        this.accounts.clear();
        this.revision = Number(rows[rows.length - 1].revision);
        continue;
      }
      for (const r of rows) {
        await this.apply({
          revision: Number(r.revision),
          accountId: r.account_id == null ? null : Number(r.account_id),
          uploadId: r.upload_id == null ? null : Number(r.upload_id),
          deviceId: r.device_id == null ? null : Number(r.device_id),
          purgedBefore: r.purged_before == null ? null : Number(r.purged_before),
        });
        this.revision = Number(r.revision);
      }
      if (rows.length < 500) return;
    }
  }

  private async apply(c: Change): Promise<void> {
    if (c.purgedBefore !== null) {
      this.purgedBefore = Math.max(this.purgedBefore, c.purgedBefore);
      for (const s of this.accounts.values()) {
        if (s.status === 'ready') s.hits.purgeBefore(c.purgedBefore);
        else if (s.status === 'loading') s.pending.purgedBefore = Math.max(s.pending.purgedBefore, c.purgedBefore);
      }
      return;
    }
    if (c.accountId === null) return;
    const s = this.accounts.get(c.accountId);
    if (!s || s.status === 'too-big') return;
    if (s.status === 'loading') {
      if (c.uploadId !== null) s.pending.uploads.add(c.uploadId);
      else if (c.deviceId !== null) s.pending.devices.add(c.deviceId);
      else s.pending.restart = true;
      return;
    }
    if (c.uploadId !== null) s.hits.replaceUpload(c.uploadId, await this.uploadRows(c.accountId, c.uploadId));
    else if (c.deviceId !== null) s.hits.dropDevice(c.deviceId);
    else this.accounts.delete(c.accountId);
    const state = this.accounts.get(c.accountId);
    if (state?.status === 'ready' && this.heldHits > this.options.maxHits)
      this.accounts.set(c.accountId, { status: 'too-big', checkedAt: Date.now(), hits: state.hits.hits });
  }

  private async uploadRows(accountId: number, uploadId: number): Promise<HitRow[]> {
    return this.hitRows(`SELECT ${this.columns} FROM flow_hit WHERE upload_id = ? AND account_id = ?`, [uploadId, accountId]);
  }

  /**
   * Hits as arrays in the order of columnsSql, without those a purge already announced. SQLite: a raw-mode statement on the
   * service's connection, in a transaction so it takes its turn (sqlite-serializer.ts), as the export does.
   */
  private async hitRows(sql: string, params: unknown[]): Promise<HitRow[]> {
    let rows: HitRow[];
    const db = sqliteHandle(this.dataSource);
    if (db) {
      this.dataSource.logger.logQuery(sql, params);
      rows = await this.dataSource.transaction(
        async () =>
          db
            .prepare(sql)
            .raw(true)
            .all(...params) as HitRow[],
      );
    } else {
      rows = ((await this.dataSource.query(sql, params)) as Row[]).map((r) => Object.values(r));
    }
    return rows.filter((r) => Number(r[FIRST]) >= this.purgedBefore);
  }

  private load(accountId: number): Promise<void> {
    const existing = this.accounts.get(accountId);
    if (existing?.status === 'loading') return existing.done;
    const pending: Loading = { uploads: new Set(), devices: new Set(), purgedBefore: -Infinity, restart: false };
    const done = this.loadInto(accountId, pending);
    this.accounts.set(accountId, { status: 'loading', pending, done });
    return done.catch((err) => {
      if (this.accounts.get(accountId)?.status === 'loading') this.accounts.delete(accountId);
      throw err;
    });
  }

  private async loadInto(accountId: number, pending: Loading): Promise<void> {
    await nextTurn();
    // Every change after this revision is applied to what the batches below read (state) or queued (pending).
    await this.sync();
    const [count] = (await this.dataSource.query('SELECT COUNT(*) AS n FROM flow_hit WHERE account_id = ?', [accountId])) as Row[];
    const total = Number(count?.n ?? 0);
    if (this.heldHits + total > this.options.maxHits) {
      this.accounts.set(accountId, { status: 'too-big', checkedAt: Date.now(), hits: total });
      return;
    }
    const hits = new AccountHits(accountId);
    const [range] = (await this.dataSource.query('SELECT MIN(id) AS lo, MAX(id) AS hi FROM flow_hit WHERE account_id = ?', [accountId])) as Row[];
    const batch = this.options.batch ?? 2_000;
    if (range?.lo != null) {
      // By primary-key ranges (not OFFSET/LIMIT on another index): each batch is a range read of the table.
      // `account_id + 0` keeps the planners off the (account, ...) indexes, which would walk the account's every
      // hit for each batch (SQLite did: 39 s for 1M hits instead of a few).
      for (let lo = Number(range.lo); lo <= Number(range.hi); lo += batch) {
        if (this.closed) return;
        hits.add(await this.hitRows(`SELECT ${this.columns} FROM flow_hit WHERE id >= ? AND id < ? AND account_id + 0 = ?`, [lo, lo + batch, accountId]));
        await this.options.afterBatch?.();
        // A turn for the event loop between batches: requests go on (on SQL) while this loads.
        await nextTurn();
      }
    }
    // Changes committed during the load, applied until none is left; the hand-over to `ready` is synchronous
    // with the last check, so no change falls between.
    for (;;) {
      await this.sync();
      if (pending.restart) {
        this.accounts.delete(accountId);
        return this.load(accountId);
      }
      if (pending.uploads.size === 0 && pending.devices.size === 0 && pending.purgedBefore === -Infinity) break;
      const uploads = [...pending.uploads];
      const devices = [...pending.devices];
      const cutoff = pending.purgedBefore;
      pending.uploads.clear();
      pending.devices.clear();
      pending.purgedBefore = -Infinity;
      if (cutoff > -Infinity) hits.purgeBefore(cutoff);
      for (const d of devices) hits.dropDevice(d);
      for (const u of uploads) hits.replaceUpload(u, await this.uploadRows(accountId, u));
    }
    if (this.closed) return;
    this.accounts.set(accountId, { status: 'ready', hits });
  }
}
