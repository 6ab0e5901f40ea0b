import fs from 'node:fs';
import { DataSource, EntityManager } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { bulkLoad, dialectOf } from '../../db/bulk';
import { ImportMode, IocEntryKind } from './ioc.enums';
import { importDomainFeed } from './domain-feed-import';
import { Ageing, ageingOf, effectiveExpiry, SightingUpdates } from './ageing';
import { IocList } from './ioc-list.entity';
import { lockList, MAX_COMMENT, touchList } from './ioc.service';
import { clip } from '../../common/text';
import { IndexChanges, NO_INDEX_CHANGES } from './ioc-index.warmer';
import { FeedImportTally, FeedSkippedLine } from './feed/feed-import-tally';
import { FeedLine, FeedNotTextError, readFeedLines } from './feed/feed-reader';
import { compareRange, FeedEntrySet } from './feed/feed-entry-set';
import { sqliteHandle } from '../../db/sqlite-handle';
import { beginImmediate } from '../../db/sqlite-serializer';
import type { Statement } from 'better-sqlite3';
import { nextTurn } from '../../common/async/next-turn';
import type { KeyRange } from '../log-upload/address-set';
import { expiriesPastTheCheck, requestRetroHunt } from '../retro-hunt/retro-hunt.request';

/**
 * Past this many changed entries an import's retro-hunt re-judges every upload of the devices the list reaches
 * (any address) rather than storing each changed range: a first import of a million-entry feed changes them all.
 */
const MAX_HUNT_RANGES = 50_000;

export interface FeedImportResult {
  list: IocList;
  mode: ImportMode;
  bytes: number;
  linesRead: number;
  added: number;
  /** Repeats within the file plus entries the list already held (APPEND). */
  duplicates: number;
  duplicatesInFile: number;
  duplicatesInList: number;
  skipped: number;
  normalized: number;
  skippedLines: FeedSkippedLine[];
  /** Entries removed by REPLACE because the file no longer has them. */
  removed: number;
  durationMs: number;
}

export interface FeedSource {
  /** A file on disk (a spooled upload, or the CLI's argument). */
  path: string;
  bytes: number;
}

/** Lines and file bytes read so far (the CLI draws its bar from them). */
export type ImportProgress = (linesRead: number, bytesRead: number) => void;

/** Lines between two progress calls. */
const PROGRESS_LINES = 5_000;

/** Asked inside the transaction before anything is written; a message refuses the import (nothing changes). */
export type ImportGuard = (counts: { current: number; incoming: number; mode: ImportMode }) => string | null;

export interface FeedImportOptions {
  /** Lines read so far. */
  onProgress?: (lines: number) => void;
  /** Refuses, say, a REPLACE that would drop most of a list (a feed that suddenly lost its entries). */
  guard?: ImportGuard;
  /**
   * Run in the import's transaction once the list is locked, before anything is written; what it throws rolls the
   * import back and reaches the caller. A source checks there that it still exists and still holds its lease.
   */
  beforeWrite?: (em: EntityManager) => Promise<void>;
  /** Where the lines are gathered, when the reader also adds to it directly (importFile's plain address lines). */
  collected?: Collection;
}

/** A feed's tally and entries as it is read. */
interface Collection {
  tally: FeedImportTally;
  entries: FeedEntrySet;
}

function newCollection(): Collection {
  return { tally: new FeedImportTally({ dedupe: false }), entries: new FeedEntrySet() };
}

/** What an import read of its file, for a refusal that names it. */
export interface FileRead {
  lines: number;
  skipped: number;
  skippedLines: readonly FeedSkippedLine[];
}

/**
 * A REPLACE with a file that holds no entry would empty the list and re-judge its past hits: that is what a failed
 * download looks like (an HTML error page, an empty or truncated file, a feed of another kind), so it is refused
 * while the list holds entries. The message names what the file held. (A list is emptied by deleting it.)
 */
export function emptyReplaceRefusal(mode: ImportMode, current: number, incoming: number, read: FileRead): string | null {
  if (mode !== ImportMode.REPLACE || incoming > 0 || current === 0) return null;
  const first = read.skippedLines[0];
  const lines = `${read.lines} line${read.lines === 1 ? '' : 's'} read, ${read.skipped} skipped`;
  return (
    `Refused: the file holds no entry this list can take (${lines}${first ? `; line ${first.lineNumber}: ${first.reason}` : ''}), ` +
    `and a REPLACE with it would remove all ${current} entries of the list. Nothing was imported.`
  );
}

/** The import was refused by its guard; nothing changed. */
export class ImportHeldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportHeldError';
  }
}

/** The import was refused for what its file holds (emptyReplaceRefusal); nothing changed. */
class ImportRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportRefusedError';
  }
}

/** The userError of an import its guard held or its file refused (nothing changed), or null for any other error. */
function refusalOf(err: unknown): Outcome<never> | null {
  if (err instanceof ImportHeldError) return failure(userError(UserErrorCode.INVALID_STATE, ['input', 'file'], `Held: ${err.message}. Nothing was imported.`));
  if (err instanceof ImportRefusedError) return failure(userError(UserErrorCode.INVALID, ['input', 'file'], err.message));
  return null;
}

/** The hunt's cause for entries whose expiry the import moved behind the expiry check's clock (expiriesPastTheCheck). */
function pastNote(n: number): string {
  return n ? `, ${n} expiring at a time the expiry check has passed` : '';
}

/**
 * Rows per INSERT batch and rows read per page of the list (SQLite's reads and writes hold the event loop). A
 * multiple of SQLITE_ROWS: a batch's rows all go in full statements.
 */
const INSERT_BATCH = 2_048;
const PAGE = 5_000;
/**
 * The same on MySQL, where both are asynchronous: rows per LOAD DATA, and rows per page. Each page query costs
 * far more than its rows: walking a 1M-entry list took 5.4-5.7 s in pages of 5,000, 2.5-2.9 s in pages of 50,000.
 */
const LOAD_BATCH = 10_000;
const MYSQL_PAGE = 50_000;
/** Rows per page of the list by driver; tests shrink them to cross many page boundaries. */
export const importPages = { sqlite: PAGE, mysql: MYSQL_PAGE };
/** IDs per statement of the first-sighting UPDATE a plain REPLACE ends with. */
const UPDATE_IDS = 50_000;
/** Work between two yields to the event loop while the transaction runs. */
const SLICE_MS = 15;

interface ExistingRow {
  id: number;
  start: string;
  end: string;
  expiresAt: number | null;
  firstSeen: number | null;
}

/** A list's first page of rows, and the page after (start, ID), in the walk's order; parameters end with the page size. */
const FIRST_PAGE = `SELECT id, range_start, range_end, expires_at, first_seen_in_source FROM ioc WHERE list_id = ? AND id <= ? ORDER BY range_start ASC, id ASC LIMIT ?`;
const NEXT_PAGE =
  `SELECT id, range_start, range_end, expires_at, first_seen_in_source FROM ioc WHERE list_id = ? AND range_start >= ? AND (range_start > ? OR id > ?) AND id <= ? ` +
  `ORDER BY range_start ASC, id ASC LIMIT ?`;

type RawObject = {
  id: number | string;
  range_start: string;
  range_end: string;
  expires_at: number | string | null;
  first_seen_in_source: number | string | null;
};
/** A page row as an array, in FIRST_PAGE's column order (SQLite's raw rows: no object with keys per row). */
type RawRow = [id: number | string, start: string, end: string, expiresAt: number | string | null, firstSeen: number | string | null];

/** Rows already in start order, each run of one start put in end-descending order. */
function byRange(rows: ExistingRow[]): ExistingRow[] {
  for (let i = 0; i < rows.length;) {
    let j = i + 1;
    while (j < rows.length && rows[j].start === rows[i].start) j++;
    if (j - i > 1) rows.splice(i, j - i, ...rows.slice(i, j).sort((x, y) => (x.end === y.end ? 0 : x.end > y.end ? -1 : 1)));
    i = j;
  }
  return rows;
}

/**
 * A list's rows in `(rangeStart ASC, rangeEnd DESC)` order, the order FeedEntrySet yields, a page at a time
 * (awaited only when a page runs out). Pages follow the `(list_id, range_start)` index, whose entries end in
 * the row ID on both databases, so each page is one index range (ordering by range_end in SQL would sort
 * every remaining row on MySQL); rows that share a start are ordered here, a group never split across
 * pages. Rows with an ID above `maxId` (inserted by this import) are left out.
 */
class ExistingRows {
  private rows: ExistingRow[] = [];
  private at = 0;
  private pending: ExistingRow[] = [];
  private after: { start: string; id: number } | null = null;
  private exhausted = false;

  constructor(
    private readonly em: EntityManager,
    private readonly listId: number,
    private readonly maxId: number,
    private readonly pageSize: number,
  ) {
    if (maxId <= 0) this.exhausted = true;
    const handle = sqliteHandle(em.connection);
    // Prepared once for the walk, rows as arrays: 1M rows in 1.4-1.6 s, against 1.9-2.2 s as objects.
    this.sqlite = handle && { first: handle.prepare(FIRST_PAGE).raw(true), next: handle.prepare(NEXT_PAGE).raw(true) };
  }

  private readonly sqlite: { first: Statement; next: Statement } | null;

  /** The current row, or null past the last; call `fill()` first when `needsFill`. */
  get current(): ExistingRow | null {
    return this.at < this.rows.length ? this.rows[this.at] : null;
  }

  get needsFill(): boolean {
    return this.at >= this.rows.length && !(this.exhausted && this.pending.length === 0);
  }

  next(): void {
    this.at++;
    this.visited++;
  }

  /** Rows stepped past so far. */
  visited = 0;

  async fill(): Promise<void> {
    while (this.at >= this.rows.length) {
      if (this.exhausted) {
        this.rows = byRange(this.pending);
        this.pending = [];
        this.at = 0;
        return;
      }
      const page = await this.page();
      if (page.length < this.pageSize) this.exhausted = true;
      const rows = this.pending;
      for (const r of page)
        rows.push({
          id: Number(r[0]),
          start: r[1],
          end: r[2],
          expiresAt: r[3] == null ? null : Number(r[3]),
          firstSeen: r[4] == null ? null : Number(r[4]),
        });
      // Hold back the last start's rows: the next page may hold more of them.
      let cut = rows.length;
      if (!this.exhausted) while (cut > 0 && rows[cut - 1].start === rows[rows.length - 1].start) cut--;
      this.pending = rows.slice(cut);
      this.rows = byRange(rows.slice(0, cut));
      this.at = 0;
    }
  }

  private async page(): Promise<RawRow[]> {
    const { em, listId, maxId, after, pageSize, sqlite } = this;
    const params = after ? [listId, after.start, after.start, after.id, maxId, pageSize] : [listId, maxId, pageSize];
    const page = sqlite
      ? ((after ? sqlite.next : sqlite.first).all(...params) as RawRow[])
      : ((await em.query(after ? NEXT_PAGE : FIRST_PAGE, params)) as RawObject[]).map((r): RawRow => [
          r.id,
          r.range_start,
          r.range_end,
          r.expires_at,
          r.first_seen_in_source,
        ]);
    if (page.length > 0) this.after = { start: page[page.length - 1][1], id: Number(page[page.length - 1][0]) };
    return page;
  }
}

/**
 * Rows per prepared multi-row INSERT on SQLite: 1,792 parameters (7 a row), well under its limit of 32,766. A 1M-row
 * sorted insert took 2.1-2.5 s in statements of 256 rows against 2.4-2.9 s in statements of 64 (both with the values
 * passed as arguments).
 */
const SQLITE_ROWS = 256;

/** The columns of an import's rows that differ from row to row; the rest hold one value per import (RowConstants). */
const ROW_COLUMNS = ['cidr', 'family', 'prefix', 'range_start', 'range_end', 'comment', 'expires_at'] as const;

/** The columns every row of one import shares: its list and account, and the instant it records as created and seen. */
type RowConstants = {
  list_id: number;
  account_id: number;
  created_at: number;
  first_seen_in_source: number;
  last_seen_in_source: number;
};

/**
 * Writes rows given as one flat array of values, ROW_COLUMNS.length a row (no short-lived array per row, a million of
 * them in a 1M-entry import); the shared columns are written once per statement, not
 * bound (SQLite) or formatted (MySQL) per row. On SQLite, prepared statements on its handle, the shared values in
 * their text: one of SQLITE_ROWS rows for full groups and one of a single row for the rest (fewer statement steps per
 * row). better-sqlite3 reads values passed as arguments directly, but an array's through one V8 API call per element
 * (`arr->Get` in its binder), so the values are spread into the call (at 64 rows a statement the two were within this
 * machine's noise: 2.4-2.9 s for a 1M-row insert spread, 2.7-2.8 s as an array). On MySQL, bulkLoad (LOAD DATA LOCAL
 * INFILE with a SET clause, else INSERTs).
 */
function rowWriter(em: EntityManager, constants: RowConstants): (values: unknown[]) => Promise<number> {
  const width = ROW_COLUMNS.length;
  const handle = sqliteHandle(em.connection);
  if (handle) {
    // The shared values go into the statement's text: integers only (bulkLoad checks its SET values the same way).
    const shared = Object.entries(constants);
    for (const [column, value] of shared) if (!Number.isSafeInteger(value)) throw new TypeError(`rowWriter: ${column} = ${value} is not an integer`);
    const cols = [...ROW_COLUMNS, ...shared.map(([c]) => c)].map((c) => `"${c}"`).join(', ');
    const tuple = `(${ROW_COLUMNS.map(() => '?').join(', ')}, ${shared.map(([, v]) => v).join(', ')})`;
    const one = handle.prepare(`INSERT OR IGNORE INTO "ioc" (${cols}) VALUES ${tuple}`);
    const many = handle.prepare(`INSERT OR IGNORE INTO "ioc" (${cols}) VALUES ${tuple}${`, ${tuple}`.repeat(SQLITE_ROWS - 1)}`);
    const full = SQLITE_ROWS * width;
    return async (values) => {
      let n = 0;
      let i = 0;
      for (; i + full <= values.length; i += full) n += many.run(...values.slice(i, i + full)).changes;
      for (; i < values.length; i += width) n += one.run(...values.slice(i, i + width)).changes;
      return n;
    };
  }
  return (values) => {
    const rows: unknown[][] = [];
    for (let i = 0; i < values.length; i += width) rows.push(values.slice(i, i + width));
    return bulkLoad(em, 'ioc', ROW_COLUMNS, rows, constants);
  };
}

/**
 * Imports a feed into a list: the file is parsed and its entries sorted first (outside the transaction),
 * then one transaction merges them with the list's rows read in the same order. APPEND inserts what the
 * list lacks (entries it holds count as duplicates); REPLACE also deletes what the feed no longer has, so
 * entries it keeps keep their IDs and flow hits stay linked. A failure at any point (a file that is not
 * text, a database error) rolls back, leaving the old entries in place. Dirty lines never abort: they are
 * counted and sampled with their line numbers. The event loop gets a turn every few milliseconds.
 */
export class FeedImportService {
  constructor(
    private readonly dataSource: DataSource,
    /** Told after commit when a change makes matcher indexes stale (background rebuild). */
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
  ) {}

  async importFile(
    accountId: number,
    listId: number | null,
    source: FeedSource,
    mode: ImportMode,
    onProgress?: ImportProgress,
    options: Pick<FeedImportOptions, 'guard' | 'beforeWrite'> = {},
  ): Promise<Outcome<FeedImportResult>> {
    const kind =
      listId == null ? null : await this.dataSource.getRepository(IocList).findOne({ select: { entryKind: true }, where: { id: listId, accountId } });
    if (kind?.entryKind === IocEntryKind.DOMAIN) return this.importDomainFile(accountId, listId, source, mode, onProgress, options);
    const input = fs.createReadStream(source.path, { highWaterMark: 64 * 1024 });
    // Plain address lines (most of a big feed) go straight into the entry set, without a string or object each.
    const collected = newCollection();
    const lines = readFeedLines(input, {
      onPlainIpv4: (network, prefix, normalized) => {
        collected.tally.recordPlainEntry(normalized);
        collected.entries.addV4(network, prefix);
        if (onProgress && collected.tally.lineCount % PROGRESS_LINES === 0) onProgress(collected.tally.lineCount, input.bytesRead);
      },
      onPlainIpv6: (network, prefix, normalized) => {
        collected.tally.recordPlainEntry(normalized);
        collected.entries.addV6(network, prefix);
        if (onProgress && collected.tally.lineCount % PROGRESS_LINES === 0) onProgress(collected.tally.lineCount, input.bytesRead);
      },
    });
    return this.importLines(accountId, listId, lines, source.bytes, mode, {
      ...options,
      onProgress: onProgress && ((lines) => onProgress(lines, input.bytesRead)),
      collected,
    });
  }

  /** DOMAIN lists (#18): their own reader and writer, in one transaction. */
  private async importDomainFile(
    accountId: number,
    listId: number | null,
    source: FeedSource,
    mode: ImportMode,
    onProgress?: ImportProgress,
    { guard, beforeWrite }: Pick<FeedImportOptions, 'guard' | 'beforeWrite'> = {},
  ): Promise<Outcome<FeedImportResult>> {
    const started = performance.now();
    // Before any expiry this import moves (expiriesPastTheCheck).
    const since = Date.now();
    let outcome: Outcome<FeedImportResult>;
    try {
      outcome = await beginImmediate(() =>
        this.dataSource.transaction(async (em) => {
          const list = await lockList(em, accountId, listId);
          if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
          await beforeWrite?.(em);
          // The guard sees the list's count before this import and the file's distinct names; a refusal
          // throws, and the transaction takes back the names already inserted.
          const current = list.entryCount;
          const d = await importDomainFeed(em, list, source.path, mode, onProgress, MAX_HUNT_RANGES, (incoming, read) => {
            const empty = emptyReplaceRefusal(mode, current, incoming, read);
            if (empty) throw new ImportRefusedError(empty);
            const refusal = guard?.({ current, incoming, mode });
            if (refusal) throw new ImportHeldError(refusal);
          });
          // Expiries it moved to a time the expiry check has passed already: no expiry hunt will cover them.
          const past = await expiriesPastTheCheck(em, 'ioc_domain', list.id, since);
          if (d.changedNames) for (const name of past) d.changedNames.push(name);
          // The names added and removed re-judge the stored uploads that asked them (retro-hunt, #17, #18).
          if (d.added + d.removed + d.revived + past.length > 0) {
            const cause = `Import into list ${list.id}: ${d.added} entries added, ${d.removed} removed${d.revived ? `, ${d.revived} matching again or aged out` : ''}${pastNote(past.length)}.`;
            await requestRetroHunt(
              em,
              accountId,
              d.changedNames ? { target: { lists: [list.id] }, domains: d.changedNames, cause } : { target: { lists: [list.id], anyAddress: true }, cause },
            );
          }
          return success({
            list,
            mode,
            bytes: source.bytes,
            linesRead: d.linesRead,
            added: d.added,
            duplicates: d.duplicatesInFile + d.duplicatesInList,
            duplicatesInFile: d.duplicatesInFile,
            duplicatesInList: d.duplicatesInList,
            skipped: d.skipped,
            normalized: 0,
            skippedLines: d.skippedLines,
            removed: d.removed,
            durationMs: Math.round(performance.now() - started),
          });
        }),
      );
    } catch (err) {
      if (err instanceof FeedNotTextError) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'file'], `Refused: ${err.message}. Nothing was imported.`));
      }
      const refused = refusalOf(err);
      if (refused) return refused;
      throw err;
    }
    if (outcome.ok) this.changes.listsChanged([outcome.value.list.id]);
    return outcome;
  }

  /**
   * The import of any parsed feed (a text file's lines, or records of a structured format numbered as
   * lines): every entrance (GraphQL, CLI, scheduled sources) ends here, so list changes have one writer.
   */
  async importLines(
    accountId: number,
    listId: number | null,
    lines: AsyncIterable<FeedLine>,
    bytes: number,
    mode: ImportMode,
    options: FeedImportOptions = {},
  ): Promise<Outcome<FeedImportResult>> {
    const started = performance.now();
    // Before any expiry this import moves (expiriesPastTheCheck).
    const since = Date.now();
    const notFound = () => failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
    if (listId == null || !(await this.dataSource.getRepository(IocList).existsBy({ id: listId, accountId }))) return notFound();
    let parsed: { tally: FeedImportTally; entries: FeedEntrySet };
    try {
      parsed = await collect(lines, options.onProgress, options.collected);
    } catch (err) {
      if (err instanceof FeedNotTextError) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'file'], `Refused: ${err.message}. Nothing was imported.`));
      }
      throw err;
    }
    const { tally, entries } = parsed;
    let outcome: Outcome<FeedImportResult>;
    try {
      outcome = await beginImmediate(() =>
        this.dataSource.transaction(async (em) => {
          const list = await lockList(em, accountId, listId);
          if (!list) return notFound();
          await options.beforeWrite?.(em);
          if (list.entryKind === IocEntryKind.DOMAIN) {
            return failure(userError(UserErrorCode.INVALID, ['input', 'list'], 'This list holds domains; these records name IP addresses and networks.'));
          }
          // The tally is complete once the file is collected: one summary for the refusal and the result.
          const summary = tally.summary();
          const empty = emptyReplaceRefusal(mode, list.entryCount, entries.distinct, summary);
          if (empty) throw new ImportRefusedError(empty);
          const refusal = options.guard?.({ current: list.entryCount, incoming: entries.distinct, mode });
          if (refusal) throw new ImportHeldError(refusal);
          const changed: KeyRange[] = [];
          const ageing = ageingOf(list);
          const { inserted, kept, removed, seen, expiriesMoved, seenAt } = await merge(
            em,
            accountId,
            list.id,
            entries,
            mode === ImportMode.REPLACE,
            ageing,
            changed,
          );
          // Expiries it moved to a time the expiry check has passed already: no expiry hunt will cover them.
          const past = await expiriesPastTheCheck(em, 'ioc', list.id, since);
          for (const r of past) if (changed.length <= MAX_HUNT_RANGES) changed.push(r);
          // The entries added and removed re-judge the stored uploads they meet (retro-hunt, #17).
          if (changed.length) {
            const cause = `Import into list ${list.id}: ${inserted} entries added, ${removed} removed${pastNote(past.length)}.`;
            await requestRetroHunt(
              em,
              accountId,
              changed.length > MAX_HUNT_RANGES
                ? { target: { lists: [list.id], anyAddress: true }, cause }
                : { target: { lists: [list.id] }, ranges: changed, cause },
            );
          }
          if (seenAt != null) {
            list.entriesSeenAt = new Date(seenAt);
            await em.getRepository(IocList).update({ id: list.id }, { entriesSeenAt: list.entriesSeenAt });
          }
          // The walk saw every row of the locked list: the count is exact without a COUNT(*) over it.
          // REPLACE bumps the revision even when nothing changed.
          await touchList(
            em,
            list,
            seen - removed + inserted - list.entryCount,
            false,
            true,
            mode === ImportMode.REPLACE || inserted > 0 || removed > 0 || expiriesMoved,
          );
          const duplicatesInList = kept + (entries.distinct - kept - inserted);
          return success({
            list,
            mode,
            bytes,
            linesRead: summary.lines,
            added: inserted,
            duplicates: entries.duplicates + duplicatesInList,
            duplicatesInFile: entries.duplicates,
            duplicatesInList,
            skipped: summary.skipped,
            normalized: summary.normalized,
            skippedLines: [...summary.skippedLines],
            removed,
            durationMs: Math.round(performance.now() - started),
          });
        }),
      );
    } catch (err) {
      const refused = refusalOf(err);
      if (refused) return refused;
      throw err;
    }
    // REPLACE bumps the revision even when nothing changed: warm on every import.
    if (outcome.ok) this.changes.listsChanged([outcome.value.list.id]);
    return outcome;
  }
}

/** Parses and gathers every entry (the tally counts lines and skips; the entry set dedupes by sorting). */
async function collect(lines: AsyncIterable<FeedLine>, onProgress?: (lines: number) => void, into: Collection = newCollection()): Promise<Collection> {
  const { tally, entries } = into;
  let n = 0;
  let reported = 0;
  let slice = performance.now();
  for await (const line of lines) {
    for (const entry of tally.record(line)) entries.add(entry.cidr, entry.comment == null ? null : clip(entry.comment, MAX_COMMENT), entry.expiresAt ?? null);
    if (++n % 1024 === 0) {
      if (onProgress && tally.lineCount - reported >= PROGRESS_LINES) onProgress((reported = tally.lineCount));
      if (performance.now() - slice > SLICE_MS) {
        await nextTurn();
        slice = performance.now();
      }
    }
  }
  onProgress?.(tally.lineCount);
  await entries.sort(nextTurn);
  return into;
}

/**
 * Walks the feed's entries and the list's rows together, both in range order: an entry the list lacks is
 * inserted, one it holds is kept with its ID and marked seen now, and with `prune` a row the feed lacks is
 * deleted. On a list with a grace period, a REPLACE keeps the rows the feed lacks until the grace period ends
 * them (a later REPLACE then deletes them). On a list with ageing each sighting moves the entry's expiry
 * (effectiveExpiry); a kept entry whose matching changes with it (seen again after it aged out, or ended by its
 * lifetime) joins `changed`, so the past is re-judged; one that ages out later is re-judged when its expiry passes.
 */
async function merge(
  em: EntityManager,
  accountId: number,
  listId: number,
  entries: FeedEntrySet,
  prune: boolean,
  ageing: Ageing,
  changed: KeyRange[],
): Promise<{ inserted: number; kept: number; removed: number; seen: number; expiriesMoved: boolean; seenAt: number | null }> {
  const now = Date.now();
  const write = rowWriter(em, { list_id: listId, account_id: accountId, created_at: now, first_seen_in_source: now, last_seen_in_source: now });
  const mysql = dialectOf(em) === 'mysql';
  const batch = mysql ? LOAD_BATCH : INSERT_BATCH;
  const maxRow: Array<{ m: number | string | null }> = await em.query(`SELECT MAX(id) AS m FROM ioc WHERE list_id = ?`, [listId]);
  const maxId = Number(maxRow[0]?.m ?? 0);
  const ages = ageing.lifetimeMs != null || ageing.graceMs != null;
  const holdMissing = prune && ageing.graceMs != null;
  // A plain REPLACE keeps exactly the old rows it does not delete: one UPDATE at the end marks them seen.
  const seenInBulk = prune && !holdMissing && !ages;
  let inserted = 0;
  let kept = 0;
  let removed = 0;
  let expiriesMoved = false;
  /** Rows to insert, flat: ROW_COLUMNS.length values a row. */
  let values: unknown[] = [];
  let pendingRows = 0;
  let gone: number[] = [];
  let slice = performance.now();
  const pause = async () => {
    if (performance.now() - slice > SLICE_MS) {
      await nextTurn();
      slice = performance.now();
    }
  };
  const flushRows = async () => {
    if (pendingRows) inserted += await write(values);
    values = [];
    pendingRows = 0;
    await pause();
  };
  const flushGone = async () => {
    for (let i = 0; i < gone.length; i += 1000) {
      const ids = gone.slice(i, i + 1000);
      await em.query(`DELETE FROM ioc WHERE list_id = ? AND id IN (${ids.map(() => '?').join(', ')})`, [listId, ...ids]);
    }
    removed += gone.length;
    gone = [];
    await pause();
  };
  /** Kept rows to mark seen or whose expiry alone moves (ageing.ts). */
  const updates = new SightingUpdates(em, 'ioc', listId, now, pause);
  const update = (id: number, seen: boolean, expiresAt: number | null | undefined) => updates.add(id, seen, expiresAt);
  const active = (expiresAt: number | null) => expiresAt == null || expiresAt > now;
  const missing = async (row: ExistingRow) => {
    if (!prune) return;
    if (holdMissing && active(row.expiresAt)) {
      // Held for the grace period: its expiry is its last sighting's plus the grace period, and at the
      // latest the grace period from now (rows no feed ever held).
      const end = now + (ageing.graceMs as number);
      if (row.expiresAt == null || row.expiresAt > end) {
        expiriesMoved = true;
        await update(row.id, false, end);
      }
      return;
    }
    gone.push(row.id);
    if (changed.length <= MAX_HUNT_RANGES) changed.push({ start: row.start, end: row.end });
    if (gone.length >= INSERT_BATCH) await flushGone();
  };
  const existing = new ExistingRows(em, listId, maxId, mysql ? importPages.mysql : importPages.sqlite);
  let steps = 0;
  // One object for every entry, its fields overwritten by each step: what outlives the step is copied out of it.
  const e = entries.cursor();
  while (e.next()) {
    // Entries the list holds already write nothing (and SQLite's page reads are synchronous): a REPLACE that
    // changes little would otherwise walk a million rows without giving the event loop a turn.
    if ((++steps & 1023) === 0) await pause();
    let c = 1;
    for (;;) {
      if (existing.needsFill) await existing.fill();
      const row = existing.current;
      if (row === null || (c = compareRange(row.start, row.end, e.start, e.end)) >= 0) break;
      await missing(row);
      existing.next();
    }
    if (c === 0) {
      kept++;
      const row = existing.current as ExistingRow;
      if (ages) {
        const expiresAt = effectiveExpiry(e.expiresAt, row.firstSeen ?? now, now, ageing);
        if (expiresAt !== row.expiresAt) expiriesMoved = true;
        if (active(expiresAt) !== active(row.expiresAt) && changed.length <= MAX_HUNT_RANGES) changed.push({ start: row.start, end: row.end });
        await update(row.id, true, expiresAt);
      } else if (!seenInBulk) await update(row.id, true, undefined);
      existing.next();
      continue;
    }
    const expiresAt = ages ? effectiveExpiry(e.expiresAt, now, now, ageing) : e.expiresAt;
    values.push(e.cidr, e.family, e.prefix, e.start, e.end, e.comment, expiresAt);
    pendingRows++;
    if (changed.length <= MAX_HUNT_RANGES) changed.push({ start: e.start, end: e.end });
    if (pendingRows >= batch) await flushRows();
  }
  for (;;) {
    if (existing.needsFill) await existing.fill();
    const row = existing.current;
    if (row === null) break;
    await missing(row);
    existing.next();
  }
  await flushRows();
  await flushGone();
  await updates.flush();
  // The rows it kept are seen now through the list's entriesSeenAt (no write per row); rows that no feed had
  // held before (added by hand, then in this feed) get their first sighting.
  // In ID ranges of UPDATE_IDS with a turn of the event loop between (one statement over a million rows holds
  // SQLite's synchronous driver, and so the event loop, for half a second).
  if (seenInBulk && maxId > 0) {
    const minRow: Array<{ m: number | string | null }> = await em.query(`SELECT MIN(id) AS m FROM ioc WHERE list_id = ?`, [listId]);
    for (let from = Number(minRow[0]?.m ?? 1); from <= maxId; from += UPDATE_IDS) {
      await em.query(`UPDATE ioc SET first_seen_in_source = ? WHERE list_id = ? AND id >= ? AND id <= ? AND first_seen_in_source IS NULL`, [
        now,
        listId,
        from,
        Math.min(maxId, from + UPDATE_IDS - 1),
      ]);
      await pause();
    }
  }
  return { inserted, kept, removed, seen: existing.visited, expiriesMoved, seenAt: seenInBulk ? now : null };
}
