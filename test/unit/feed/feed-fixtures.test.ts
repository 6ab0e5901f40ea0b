// Always-on version of the corpus test, over slices of each feed kept in test/fixtures/feeds
// (first 40 lines plus the dirty lines; see the README there). Counts were checked independently
// with Python's ipaddress module.
import path from 'node:path';
import { asExpected, tallyFile } from './feed-corpus.helpers';
import { ExpectedImport } from '../../helpers/corpus';

const FIXTURES = path.resolve(__dirname, '../../fixtures/feeds');

const EXPECTED: Record<string, ExpectedImport> = {
  'firehol_c2_tracker.ipset': { lines: 40, added: 8, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
  'firehol_dm_tor.ipset': { lines: 40, added: 10, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
  'firehol_et_compromised.ipset': { lines: 40, added: 9, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
  'firehol_level1.netset': { lines: 43, added: 9, duplicates: 0, skipped: 1, skippedLineNumbers: [43] },
  'ipsum.txt': { lines: 40, added: 33, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
  'maltrail_mass_scanner.txt': { lines: 105, added: 68, duplicates: 5, skipped: 5, skippedLineNumbers: [77, 81, 89, 99, 104] },
  'maltrail_mass_scanner_cidr.txt': { lines: 76, added: 60, duplicates: 4, skipped: 0, skippedLineNumbers: [] },
  'spamhaus_drop.txt': { lines: 40, added: 36, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
  'spamhaus_drop_ipv6_stripped.txt': { lines: 40, added: 40, duplicates: 0, skipped: 0, skippedLineNumbers: [] },
};

describe('feed fixture slices', () => {
  test.each(Object.keys(EXPECTED))('%s', async (file) => {
    expect(asExpected(await tallyFile(path.join(FIXTURES, file)))).toEqual(EXPECTED[file]);
  });

  test('comments carry the useful part of each format', async () => {
    const { readFeedLines } = await import('../../../src/modules/ioc/feed/feed-reader');
    const { createReadStream } = await import('node:fs');
    const firstEntryComment = async (file: string) => {
      for await (const line of readFeedLines(createReadStream(path.join(FIXTURES, file)))) {
        if (line.result.type === 'entry') return line.result.comment;
      }
      return undefined;
    };
    expect(await firstEntryComment('spamhaus_drop.txt')).toBe('SBL256894');
    expect(await firstEntryComment('ipsum.txt')).toMatch(/^count \d+$/);
    expect(await firstEntryComment('maltrail_mass_scanner.txt')).toBe('pinger1a.netsec.colostate.edu');
    expect(await firstEntryComment('firehol_level1.netset')).toBeUndefined();
  });
});
