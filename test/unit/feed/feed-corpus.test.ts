// Imports every real feed in ../shared/corpus/feeds and checks the counts that SOURCES.md states.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { asExpected, tallyFile } from './feed-corpus.helpers';
import { expectationsFromSources } from '../../helpers/corpus';
import { FeedSkipCode } from '../../../src/modules/ioc/feed/feed-line';

const CORPUS = path.resolve(__dirname, '../../../../shared/corpus/feeds');
const SOURCES = path.join(CORPUS, 'SOURCES.md');

if (!existsSync(SOURCES)) {
  describe('feed corpus', () => {
    console.warn(`feed corpus not found at ${CORPUS}: corpus import tests skipped`);
    test.skip(`corpus absent (${CORPUS})`, () => undefined);
  });
} else {
  const expected = expectationsFromSources(readFileSync(SOURCES, 'utf8'));
  const files = readdirSync(CORPUS)
    .filter((f) => f !== 'SOURCES.md')
    .sort();

  describe('feed corpus imports match SOURCES.md', () => {
    test('every corpus file has a row in the table, and the table has 9 rows', () => {
      expect(expected.size).toBe(9);
      expect(files.filter((f) => !expected.has(f))).toEqual([]);
    });

    test.each(files)('%s', async (file) => {
      const summary = await tallyFile(path.join(CORPUS, file));
      expect(asExpected(summary)).toEqual(expected.get(file));
    });

    test('firehol_level1: the one refusal is 224.0.0.0/3 as too broad', async () => {
      const summary = await tallyFile(path.join(CORPUS, 'firehol_level1.netset'));
      expect(summary.skippedLines).toEqual([
        { lineNumber: 4664, text: '224.0.0.0/3', code: FeedSkipCode.TOO_BROAD, reason: "'224.0.0.0/3' is too broad: IPv4 networks must be /8 or narrower" },
      ]);
    });

    test('maltrail_mass_scanner: the five dirty lines are named', async () => {
      const summary = await tallyFile(path.join(CORPUS, 'maltrail_mass_scanner.txt'));
      expect(summary.skippedLines.map((l) => l.text)).toEqual([
        '/w00tw00t.at.ISC.SANS.DFind:)',
        '/w00tw00t.at.blackhats.romanian.anti-sec:)',
        'C91.196.152.28 # probe.onyphe.net',
        'C91.196.152.38 # probe.onyphe.net',
        'C91.230.168.27 # probe.onyphe.net',
      ]);
      // SOURCES.md prose says 65 empty lines; the file has 64 (`grep -c '^$'`) plus 3 of four spaces.
      expect(summary.blank).toBe(64 + 3);
    });
  });
}
