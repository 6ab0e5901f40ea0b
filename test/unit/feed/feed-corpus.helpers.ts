import { createReadStream } from 'node:fs';
import { FeedImportSummary, FeedImportTally } from '../../../src/modules/ioc/feed/feed-import-tally';
import { readFeedLines } from '../../../src/modules/ioc/feed/feed-reader';
import { ExpectedImport } from '../../helpers/corpus';

/** Streams a file through the reader and tally exactly as an import does (without storing). */
export async function tallyFile(file: string): Promise<FeedImportSummary> {
  const tally = new FeedImportTally();
  for await (const line of readFeedLines(createReadStream(file, { highWaterMark: 16 * 1024 }))) tally.record(line);
  return tally.summary();
}

/** Compact view of a summary to compare with the expectation tables. */
export function asExpected(s: FeedImportSummary): ExpectedImport {
  return {
    lines: s.lines,
    added: s.added,
    duplicates: s.duplicates,
    skipped: s.skipped,
    skippedLineNumbers: s.skippedLines.map((l) => l.lineNumber),
  };
}
