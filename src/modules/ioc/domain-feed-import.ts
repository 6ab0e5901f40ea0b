import fs from 'node:fs';
import { EntityManager } from 'typeorm';
import { bulkInsert } from '../../db/bulk';
import { ageingOf, effectiveExpiry, SightingUpdates } from './ageing';
import { nextTurn } from '../../common/async/next-turn';
import { ImportMode } from './ioc.enums';
import { IocDomain } from './ioc-domain.entity';
import { IocList } from './ioc-list.entity';
import { FeedSkipCode } from './feed/feed-line';
import { FeedSkippedLine } from './feed/feed-import-tally';
import type { FileRead } from './feed-import.service';
import { readFeedLines } from './feed/feed-reader';
import { detectDomainFeedFormat, DistinctNames, DomainFeedFormat, DomainFeedReader } from './feed/domain-feed';
import { DomainSkipReason } from './feed/domain-name';

export const IOC_DOMAIN_COLUMNS = ['list_id', 'account_id', 'name', 'comment', 'expires_at', 'created_at'] as const;
/** The rows a feed import writes: the entry's columns and its first and last sighting in a feed. */
const FEED_COLUMNS = [...IOC_DOMAIN_COLUMNS, 'first_seen_in_source', 'last_seen_in_source'] as const;
/** Names per lookup of the rows a batch kept, and IDs per DELETE. */
const ID_CHUNK = 1_000;

/** Rows per multi-row INSERT batch while streaming. */
const BATCH = 5_000;
const PROGRESS_LINES = 5_000;
const MAX_SAMPLES = 100;
/** Bytes of the file's head read to detect its format (SOURCES.md looks at the first 200 content lines). */
const DETECT_BYTES = 256 * 1024;

/** The API's code for a domain skip reason: `ip-address` -> IP_ADDRESS. */
export function domainSkipCode(reason: DomainSkipReason): FeedSkipCode {
  return reason.toUpperCase().replace(/-/g, '_') as FeedSkipCode;
}

export interface DomainImportCounts {
  format: DomainFeedFormat;
  linesRead: number;
  /** Blank, comment, header and zone-structure lines. */
  ignored: number;
  added: number;
  duplicatesInFile: number;
  duplicatesInList: number;
  skipped: number;
  skippedLines: FeedSkippedLine[];
  removed: number;
  /** Kept names whose matching changed with their ageing (seen again after they aged out, or ended by their lifetime). */
  revived: number;
  /** The names added and removed (what a retro-hunt re-judges); null when there are more than `maxChanged`. */
  changedNames: string[] | null;
}

/** A row of the list before this import, as the ageing needs it. */
interface KeptRow {
  id: number | string;
  name: string;
  expires_at: number | string | null;
  first_seen_in_source: number | string | null;
}

/** The format of a feed file from its head (SOURCES.md's auto-detection). */
export async function detectFileFormat(path: string): Promise<DomainFeedFormat> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.alloc(DETECT_BYTES);
    const { bytesRead } = await fh.read(buf, 0, DETECT_BYTES, 0);
    // A byte-order mark is no part of the first line (readFeedLines drops it too): `\uFEFF||x^` is Adblock.
    const lines = buf
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .split('\n');
    if (bytesRead === DETECT_BYTES) lines.pop(); // maybe cut
    return detectDomainFeedFormat(lines.map((l) => l.replace(/\r$/, '')));
  } finally {
    await fh.close();
  }
}

/**
 * Streams a domain feed into a DOMAIN list inside the caller's transaction (FeedImportService.importFile):
 * APPEND adds, REPLACE makes the list hold exactly the file's names (names it keeps keep their IDs).
 * Lines that are not domains (IP addresses, URLs, ...) are skipped with their line numbers and reasons.
 *
 * Sightings and ageing (#21 item 2), as for address lists (feed-import.service.ts's merge): each name the file
 * holds is seen now (`first_seen_in_source` once, `last_seen_in_source` each time). On a list with a lifetime or a
 * grace period each sighting moves the entry's expiry (effectiveExpiry), and a REPLACE with a grace period keeps
 * the names the file lacks until it ends. A plain REPLACE marks what it keeps seen through the list's
 * entriesSeenAt instead of writing every kept row.
 */
export async function importDomainFeed(
  em: EntityManager,
  list: IocList,
  path: string,
  mode: ImportMode,
  onProgress?: (linesRead: number, bytesRead: number) => void,
  maxChanged = Infinity,
  /**
   * Asked once the file is read, before anything is removed, with its distinct names and what was read: a refusal
   * (thrown by the caller) rolls the transaction back.
   */
  beforeRemove?: (incoming: number, read: FileRead) => void,
): Promise<DomainImportCounts> {
  const format = await detectFileFormat(path);
  const reader = new DomainFeedReader(format);
  const now = Date.now();
  const ageing = ageingOf(list);
  const ages = ageing.lifetimeMs != null || ageing.graceMs != null;
  const prune = mode === ImportMode.REPLACE;
  const seenInBulk = prune && !ages;
  const [{ m }] = (await em.query(`SELECT MAX(id) AS m FROM ioc_domain WHERE list_id = ?`, [list.id])) as Array<{ m: number | string | null }>;
  const maxId = Number(m ?? 0);
  const newExpiry = ages ? effectiveExpiry(null, now, now, ageing) : null;
  // The file's distinct names: the reader keeps them (a second copy would double the memory of a large feed).
  const inFile = reader.added;
  const samples: FeedSkippedLine[] = [];
  const revived: string[] = [];
  const updates = new SightingUpdates(em, 'ioc_domain', list.id, now, nextTurn);
  let expiriesMoved = false;
  let rows: unknown[][] = [];
  let offered = 0;
  let inserted = 0;
  let linesRead = 0;
  let ignored = 0;
  let duplicatesInFile = 0;
  let skipped = 0;
  const active = (expiresAt: number | null) => expiresAt == null || expiresAt > now;
  /** A row of the list the file holds again: seen now, its expiry moved by the ageing. */
  const kept = async (row: KeptRow) => {
    if (!ages) return updates.add(Number(row.id), true, undefined);
    const was = row.expires_at == null ? null : Number(row.expires_at);
    const expiresAt = effectiveExpiry(null, row.first_seen_in_source == null ? now : Number(row.first_seen_in_source), now, ageing);
    if (active(expiresAt) !== active(was)) revived.push(row.name);
    if (expiresAt !== was) expiriesMoved = true;
    await updates.add(Number(row.id), true, expiresAt === was ? undefined : expiresAt);
  };
  const flush = async () => {
    offered += rows.length;
    inserted += await bulkInsert(em, 'ioc_domain', FEED_COLUMNS, rows, { ignoreDuplicates: true });
    // APPEND: the rows this batch found already in the list are seen now (REPLACE finds them in its walk).
    if (!prune && maxId > 0) {
      for (let i = 0; i < rows.length; i += ID_CHUNK) {
        const names = rows.slice(i, i + ID_CHUNK).map((r) => r[2] as string);
        const found: KeptRow[] = await em.query(
          `SELECT id, name, expires_at, first_seen_in_source FROM ioc_domain WHERE list_id = ? AND id <= ? AND name IN (${names.map(() => '?').join(',')})`,
          [list.id, maxId, ...names],
        );
        for (const row of found) await kept(row);
      }
    }
    rows = [];
  };
  const skip = (lineNumber: number, text: string, code: FeedSkipCode, reason: string) => {
    skipped++;
    if (samples.length < MAX_SAMPLES) samples.push({ lineNumber, text, code, reason });
  };
  const input = fs.createReadStream(path, { highWaterMark: 256 * 1024 });
  for await (const line of readFeedLines(input)) {
    linesRead++;
    const r = line.result;
    if (r.type === 'skip' && (r.code === FeedSkipCode.LINE_TOO_LONG || r.code === FeedSkipCode.NOT_TEXT)) {
      skip(line.lineNumber, line.text, r.code, r.reason);
    } else {
      const decisions = reader.record(line.text);
      if (decisions.length === 0) ignored++;
      for (const d of decisions) {
        if (d.status === 'skipped') skip(line.lineNumber, line.text, domainSkipCode(d.reason), `'${d.token.slice(0, 80)}': ${d.message}`);
        else if (d.status === 'duplicate') duplicatesInFile++;
        else {
          rows.push([list.id, list.accountId, d.domain, null, newExpiry, now, now, now]);
        }
      }
    }
    if (rows.length >= BATCH) await flush();
    if (onProgress && linesRead % PROGRESS_LINES === 0) onProgress(linesRead, input.bytesRead);
  }
  await flush();
  onProgress?.(linesRead, input.bytesRead);
  beforeRemove?.(inFile.size, { lines: linesRead, skipped, skippedLines: samples });
  const gone: string[] = [];
  let removed = 0;
  if (prune) {
    const walked = await walkReplaced(em, list.id, maxId, inFile, gone, maxChanged, {
      kept: seenInBulk ? null : kept,
      // Held for the grace period: its expiry is its last sighting's plus the grace period, at the latest the
      // grace period from now (names no feed ever held).
      hold:
        ageing.graceMs == null
          ? null
          : async (row) => {
              const was = row.expires_at == null ? null : Number(row.expires_at);
              if (!active(was)) return false;
              const end = now + (ageing.graceMs as number);
              if (was == null || was > end) {
                expiriesMoved = true;
                await updates.add(Number(row.id), false, end);
              }
              return true;
            },
    });
    removed = walked;
  }
  await updates.flush();
  // A plain REPLACE: what it kept is seen now through the list's entriesSeenAt; names no feed had held before
  // (added by hand, then in this feed) get their first sighting.
  if (seenInBulk && maxId > 0) {
    await em.query(`UPDATE ioc_domain SET first_seen_in_source = ? WHERE list_id = ? AND id <= ? AND first_seen_in_source IS NULL`, [now, list.id, maxId]);
  }
  if (seenInBulk) {
    list.entriesSeenAt = new Date(now);
    await em.getRepository(IocList).update({ id: list.id }, { entriesSeenAt: list.entriesSeenAt });
  }
  let changedNames: string[] | null = null;
  if (inserted + removed + revived.length <= maxChanged) {
    // The rows this import created carry its `now` (a duplicate keeps its own time).
    const added: Array<{ name: string }> = inserted ? await em.query(`SELECT name FROM ioc_domain WHERE list_id = ? AND id > ?`, [list.id, maxId]) : [];
    changedNames = gone.concat(
      added.map((r) => r.name),
      revived,
    );
  }
  await touchDomainList(em, list, inserted - removed, prune, true, expiriesMoved);
  return {
    format,
    linesRead,
    ignored,
    added: inserted,
    duplicatesInFile,
    duplicatesInList: offered - inserted,
    skipped,
    skippedLines: samples,
    removed,
    revived: revived.length,
    changedNames,
  };
}

/**
 * REPLACE's walk over the list's rows from before the import (ID <= maxId): a row the file holds is `kept`
 * (skipped when null: a plain REPLACE marks them in bulk), one it lacks is held (`hold` answers true) or deleted;
 * the first `maxNames` deleted names go to `names`. Returns how many it deleted.
 */
async function walkReplaced(
  em: EntityManager,
  listId: number,
  maxId: number,
  keep: DistinctNames,
  names: string[],
  maxNames: number,
  on: { kept: ((row: KeptRow) => Promise<void>) | null; hold: ((row: KeptRow) => Promise<boolean>) | null },
): Promise<number> {
  let removed = 0;
  let after = 0;
  for (;;) {
    const page: KeptRow[] = await em.query(
      `SELECT id, name, expires_at, first_seen_in_source FROM ioc_domain WHERE list_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT 10000`,
      [listId, after, maxId],
    );
    if (page.length === 0) return removed;
    after = Number(page[page.length - 1].id);
    const gone: number[] = [];
    for (const row of page) {
      if (keep.has(row.name)) {
        if (on.kept) await on.kept(row);
      } else if (!(on.hold && (await on.hold(row)))) {
        gone.push(Number(row.id));
        if (names.length < maxNames) names.push(row.name);
      }
    }
    for (let i = 0; i < gone.length; i += ID_CHUNK) {
      const ids = gone.slice(i, i + ID_CHUNK);
      await em.query(`DELETE FROM ioc_domain WHERE list_id = ? AND id IN (${ids.map(() => '?').join(',')})`, [listId, ...ids]);
    }
    removed += gone.length;
    await nextTurn();
  }
}

/** ioc.service's touchList for a DOMAIN list: count, revision and times in the same transaction. */
export async function touchDomainList(
  em: EntityManager,
  list: IocList,
  delta: number,
  recount: boolean,
  imported = false,
  expiriesMoved = false,
): Promise<void> {
  const now = new Date();
  if (recount) list.entryCount = await em.getRepository(IocDomain).countBy({ listId: list.id });
  else list.entryCount += delta;
  // A moved expiry changes what the list matches: the matcher indexes are rebuilt from the new revision.
  if (delta !== 0 || recount || expiriesMoved) list.revision += 1;
  list.updatedAt = now;
  if (imported) list.lastImportedAt = now;
  await em
    .getRepository(IocList)
    .update({ id: list.id }, { entryCount: list.entryCount, revision: list.revision, updatedAt: now, ...(imported ? { lastImportedAt: now } : {}) });
}
