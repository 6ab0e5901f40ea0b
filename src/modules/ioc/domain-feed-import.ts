import fs from 'node:fs';
import { EntityManager } from 'typeorm';
import { bulkInsert } from '../../db/bulk';
import { nextTurn } from '../../common/async/next-turn';
import { ImportMode } from './ioc.enums';
import { IocDomain } from './ioc-domain.entity';
import { IocList } from './ioc-list.entity';
import { FeedSkipCode } from './feed/feed-line';
import { FeedSkippedLine } from './feed/feed-import-tally';
import { readFeedLines } from './feed/feed-reader';
import { detectDomainFeedFormat, DomainFeedFormat, DomainFeedReader } from './feed/domain-feed';
import { DomainSkipReason } from './feed/domain-name';

export const IOC_DOMAIN_COLUMNS = ['list_id', 'account_id', 'name', 'comment', 'expires_at', 'created_at'] as const;

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
  /** The names added and removed (what a retro-hunt re-judges); null when there are more than `maxChanged`. */
  changedNames: string[] | null;
}

/** The format of a feed file from its head (SOURCES.md's auto-detection). */
export async function detectFileFormat(path: string): Promise<DomainFeedFormat> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.alloc(DETECT_BYTES);
    const { bytesRead } = await fh.read(buf, 0, DETECT_BYTES, 0);
    const lines = buf.subarray(0, bytesRead).toString('utf8').split('\n');
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
 */
export async function importDomainFeed(
  em: EntityManager,
  list: IocList,
  path: string,
  mode: ImportMode,
  onProgress?: (linesRead: number, bytesRead: number) => void,
  maxChanged = Infinity,
  /** Asked once the file is read, before anything is removed: a refusal (thrown by the caller) rolls the transaction back. */
  beforeRemove?: (incoming: number) => void,
): Promise<DomainImportCounts> {
  const format = await detectFileFormat(path);
  const reader = new DomainFeedReader(format);
  const now = Date.now();
  const inFile = new Set<string>();
  const samples: FeedSkippedLine[] = [];
  let rows: unknown[][] = [];
  let offered = 0;
  let inserted = 0;
  let linesRead = 0;
  let ignored = 0;
  let duplicatesInFile = 0;
  let skipped = 0;
  const flush = async () => {
    offered += rows.length;
    inserted += await bulkInsert(em, 'ioc_domain', IOC_DOMAIN_COLUMNS, rows, { ignoreDuplicates: true });
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
          inFile.add(d.domain);
          rows.push([list.id, list.accountId, d.domain, null, null, now]);
        }
      }
    }
    if (rows.length >= BATCH) await flush();
    if (onProgress && linesRead % PROGRESS_LINES === 0) onProgress(linesRead, input.bytesRead);
  }
  await flush();
  onProgress?.(linesRead, input.bytesRead);
  beforeRemove?.(inFile.size);
  const gone: string[] = [];
  const removed = mode === ImportMode.REPLACE ? await removeDomainsNotIn(em, list.id, inFile, gone, maxChanged) : 0;
  let changedNames: string[] | null = null;
  if (inserted + removed <= maxChanged) {
    // The rows this import created carry its `now` (a duplicate keeps its own time).
    const added: Array<{ name: string }> = inserted ? await em.query(`SELECT name FROM ioc_domain WHERE list_id = ? AND created_at = ?`, [list.id, now]) : [];
    changedNames = gone.concat(added.map((r) => r.name));
  }
  await touchDomainList(em, list, inserted - removed, mode === ImportMode.REPLACE, true);
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
    changedNames,
  };
}

/** Deletes the list's names not in `keep`; the first `maxNames` of them go to `names`. */
async function removeDomainsNotIn(em: EntityManager, listId: number, keep: Set<string>, names: string[], maxNames: number): Promise<number> {
  let removed = 0;
  let after = 0;
  for (;;) {
    const page: Array<{ id: number | string; name: string }> = await em.query(
      `SELECT id, name FROM ioc_domain WHERE list_id = ? AND id > ? ORDER BY id LIMIT 10000`,
      [listId, after],
    );
    if (page.length === 0) return removed;
    after = Number(page[page.length - 1].id);
    const goneRows = page.filter((r) => !keep.has(r.name));
    for (const r of goneRows) if (names.length < maxNames) names.push(r.name);
    const gone = goneRows.map((r) => Number(r.id));
    for (let i = 0; i < gone.length; i += 1000) {
      const ids = gone.slice(i, i + 1000);
      await em.query(`DELETE FROM ioc_domain WHERE list_id = ? AND id IN (${ids.map(() => '?').join(',')})`, [listId, ...ids]);
    }
    removed += gone.length;
    await nextTurn();
  }
}

/** ioc.service's touchList for a DOMAIN list: count, revision and times in the same transaction. */
export async function touchDomainList(em: EntityManager, list: IocList, delta: number, recount: boolean, imported = false): Promise<void> {
  const now = new Date();
  if (recount) list.entryCount = await em.getRepository(IocDomain).countBy({ listId: list.id });
  else list.entryCount += delta;
  if (delta !== 0 || recount) list.revision += 1;
  list.updatedAt = now;
  if (imported) list.lastImportedAt = now;
  await em
    .getRepository(IocList)
    .update({ id: list.id }, { entryCount: list.entryCount, revision: list.revision, updatedAt: now, ...(imported ? { lastImportedAt: now } : {}) });
}
