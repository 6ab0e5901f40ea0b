import fs from 'node:fs';
import { DataSource, EntityManager, In } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { bulkInsert } from '../../db/bulk';
import { Ioc } from './ioc.entity';
import { ImportMode } from './ioc.enums';
import { IocList } from './ioc-list.entity';
import { IOC_COLUMNS, iocRow, lockList, touchList } from './ioc.service';
import { IndexChanges, NO_INDEX_CHANGES } from './ioc-index.warmer';
import { FeedImportTally, FeedSkippedLine } from './feed/feed-import-tally';
import { FeedNotTextError, readFeedLines } from './feed/feed-reader';
import { nextTurn } from '../../common/async/next-turn';
import type { KeyRange } from '../log-upload/address-set';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';

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

/** Rows per multi-row INSERT batch while streaming. */
const BATCH = 5_000;

/**
 * Imports a feed file into a list in one transaction: APPEND adds (entries already in the list count as
 * duplicates), REPLACE swaps every entry for the file's. A failure at any point (a file that is not text,
 * a database error) rolls back, leaving the old entries in place. Dirty lines never abort: they are
 * counted and sampled with their line numbers.
 */
/** Deletes the list's entries whose CIDR is not in `keep`; returns how many. Their ranges are pushed to `gone`. */
async function removeEntriesNotIn(em: EntityManager, listId: number, keep: Set<string>, goneRanges: KeyRange[] = []): Promise<number> {
  let removed = 0;
  let after = 0;
  for (;;) {
    const page: Array<{ id: number | string; cidr: string; range_start: string; range_end: string }> = await em.query(
      `SELECT id, cidr, range_start, range_end FROM ioc WHERE list_id = ? AND id > ? ORDER BY id LIMIT 10000`,
      [listId, after],
    );
    if (page.length === 0) return removed;
    after = Number(page[page.length - 1].id);
    for (const r of page) if (!keep.has(r.cidr)) goneRanges.push({ start: r.range_start, end: r.range_end });
    const gone = page.filter((r) => !keep.has(r.cidr)).map((r) => Number(r.id));
    for (let i = 0; i < gone.length; i += 1000) {
      await em.getRepository(Ioc).delete({ listId, id: In(gone.slice(i, i + 1000)) });
    }
    removed += gone.length;
    await nextTurn();
  }
}

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
  ): Promise<Outcome<FeedImportResult>> {
    const started = performance.now();
    try {
      const outcome = await this.dataSource.transaction(async (em) => {
        const list = await lockList(em, accountId, listId);
        if (!list) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'list'], 'No IOC list with this ID.'));
        const tally = new FeedImportTally();
        const now = Date.now();
        let rows: unknown[][] = [];
        let offered = 0;
        let inserted = 0;
        const flush = async () => {
          offered += rows.length;
          inserted += await bulkInsert(em, 'ioc', IOC_COLUMNS, rows, { ignoreDuplicates: true });
          rows = [];
        };
        let lines = 0;
        const inFile = new Set<string>();
        const input = fs.createReadStream(source.path, { highWaterMark: 256 * 1024 });
        for await (const line of readFeedLines(input)) {
          for (const entry of tally.record(line)) {
            inFile.add(entry.cidr.text);
            rows.push(iocRow(accountId, list.id, entry.cidr, entry.comment?.slice(0, 500) ?? null, null, now));
          }
          if (rows.length >= BATCH) await flush();
          if (onProgress && ++lines % PROGRESS_LINES === 0) onProgress(lines, input.bytesRead);
        }
        await flush();
        onProgress?.(lines, input.bytesRead);
        // REPLACE removes only what the file no longer has: entries it keeps keep their IDs, so flow hits
        // that reference them stay linked.
        const changed: KeyRange[] = [];
        const removed = mode === ImportMode.REPLACE ? await removeEntriesNotIn(em, list.id, inFile, changed) : 0;
        // The entries this import created (created_at is its own instant) and those it removed re-judge the stored uploads they meet (#17).
        const created: Array<{ range_start: string; range_end: string }> = await em.query(
          `SELECT range_start, range_end FROM ioc WHERE list_id = ? AND created_at = ?`,
          [list.id, now],
        );
        for (const r of created) changed.push({ start: r.range_start, end: r.range_end });
        if (changed.length) {
          await requestRetroHunt(em, accountId, {
            target: { lists: [list.id] },
            ranges: changed,
            cause: `Import into list ${list.id}: ${created.length} entries added, ${removed} removed.`,
          });
        }
        const summary = tally.summary();
        await touchList(em, list, inserted - removed, mode === ImportMode.REPLACE, true);
        const duplicatesInList = offered - inserted;
        return success({
          list,
          mode,
          bytes: source.bytes,
          linesRead: summary.lines,
          added: inserted,
          duplicates: summary.duplicates + duplicatesInList,
          duplicatesInFile: summary.duplicates,
          duplicatesInList,
          skipped: summary.skipped,
          normalized: summary.normalized,
          skippedLines: [...summary.skippedLines],
          removed,
          durationMs: Math.round(performance.now() - started),
        });
      });
      // REPLACE bumps the revision even when nothing changed: warm on every import.
      if (outcome.ok) this.changes.listsChanged([outcome.value.list.id]);
      return outcome;
    } catch (err) {
      if (err instanceof FeedNotTextError) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'file'], `Refused: ${err.message}. Nothing was imported.`));
      }
      throw err;
    }
  }
}
