import fs from 'node:fs';
import { missingEpochTimestamps } from '../../../src/modules/log-upload/parsing/parse-stats';
import { parseLines } from '../../../src/modules/log-upload/parsing/tcpdump-parser';
import { compareCorpus, CorpusAgreement, FIXTURE_CORPUS, readExpected, rowKey, SHARED_CORPUS, variantFiles } from './corpus-compare';

function report(label: string, a: CorpusAgreement): string {
  return (
    `${label}: ${a.matched}/${a.rows} rows agree (${a.referenceRows} reference rows, ${a.rows - a.referenceRows} more on ambiguous lines ` +
    `the reference leaves out), ${a.filesFullyMatching}/${a.files} files fully match; ${a.ambiguousLines} ambiguous lines ` +
    `(${a.ambiguousAsReference} as the reference, ${a.ambiguousAsCandidate} as the candidate)`
  );
}

function describeCorpus(label: string, dir: string): void {
  describe(label, () => {
    test('every file reproduces expected/ (either treatment on ambiguous/ lines)', () => {
      const a = compareCorpus(dir);
      console.log(report(label, a));
      expect(a.problems.slice(0, 20)).toEqual([]);
      expect(a.matched).toBe(a.rows);
      expect(a.filesFullyMatching).toBe(a.files);
    });

    const variants = variantFiles(dir);
    const same = variants.filter((v) => v.kind === 'tt_n_e' || v.kind === 'tt_n_q');
    if (same.length > 0) {
      test.each(same.map((v) => [v.file.split('/').pop() as string, v]))('%s: same packets as the -tt -n print', (_n, v) => {
        const base = parseLines(fs.readFileSync(v.base)).rows;
        const variant = parseLines(fs.readFileSync(v.file)).rows;
        expect(variant.map(rowKey)).toEqual(base.map(rowKey));
        expect(variant.map((r) => r.lineNo)).toEqual(base.map((r) => r.lineNo));
        if (v.kind === 'tt_n_e') {
          // -e only adds the link header: protocol, flags and the packet's length are unchanged.
          expect(variant.map((r) => [r.protocol, r.tcpFlags, r.length])).toEqual(base.map((r) => [r.protocol, r.tcpFlags, r.length]));
        }
      });
    }

    const noTt = variants.filter((v) => v.kind === 'n_UTC');
    if (noTt.length > 0) {
      test.each(noTt.map((v) => [v.file.split('/').pop() as string, v]))('%s: no -tt is detected and refused', (_n, v) => {
        const { rows, stats } = parseLines(fs.readFileSync(v.file));
        expect(rows).toEqual([]);
        expect(stats.timeOfDayLines).toBeGreaterThan(0);
        expect(missingEpochTimestamps(stats)?.message).toMatch(/-tt/);
      });
    }

    const verbose = variants.filter((v) => v.kind === 'tt_n_v');
    if (verbose.length > 0) {
      test.each(verbose.map((v) => [v.file.split('/').pop() as string, v]))('%s: -v gives the reference rows', (_n, v) => {
        // -v prints IPv4 addresses on a second line; MPLS/tunnel-nested headers (reference-ambiguous) are not read.
        const { rows, stats } = parseLines(fs.readFileSync(v.file));
        expect(rows.map(rowKey)).toEqual(readExpected(v.base));
        expect(stats.packets + Object.values(stats.skipped).reduce((a, b) => a + b, 0)).toBe(stats.lines);
      });
    }
  });
}

describeCorpus('fixtures (test/fixtures/tcpdump)', FIXTURE_CORPUS);

if (fs.existsSync(SHARED_CORPUS)) {
  describeCorpus('shared corpus (../shared/corpus/tcpdump)', SHARED_CORPUS);
} else {
  test.skip(`shared corpus not found at ${SHARED_CORPUS}`, () => undefined);
  console.log(`tcpdump corpus test skipped: ${SHARED_CORPUS} is absent`);
}
