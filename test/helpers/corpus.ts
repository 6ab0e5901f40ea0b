import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The shared corpus beside the checkout (CI always has it; a user's clone may not). */
export const SHARED_CORPUS = path.resolve(__dirname, '../../../shared/corpus');
export const FEEDS_DIR = path.join(SHARED_CORPUS, 'feeds');
export const FIXTURE_FEEDS_DIR = path.resolve(__dirname, '../fixtures/feeds');

export const hasSharedCorpus = (): boolean => existsSync(path.join(FEEDS_DIR, 'SOURCES.md'));

export interface ExpectedImport {
  lines: number;
  added: number;
  duplicates: number;
  skipped: number;
  skippedLineNumbers: number[];
}

/** Rows of SOURCES.md's "What an import of each file must report" table. */
export function expectationsFromSources(markdown: string = readFileSync(path.join(FEEDS_DIR, 'SOURCES.md'), 'utf8')): Map<string, ExpectedImport> {
  const out = new Map<string, ExpectedImport>();
  const start = markdown.indexOf('| file | lines | added | duplicates | skipped |');
  for (const row of markdown.slice(start).split('\n').slice(2)) {
    if (!row.startsWith('|')) break;
    const cells = row
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    // "4664 (224.0.0.0/3, too broad)": the numbers outside parentheses are line numbers.
    const lineNumbers = (cells[5].replace(/\([^)]*\)/g, '').match(/\d+/g) ?? []).map(Number);
    out.set(cells[0], {
      lines: Number(cells[1]),
      added: Number(cells[2]),
      duplicates: Number(cells[3]),
      skipped: Number(cells[4]),
      skippedLineNumbers: lineNumbers,
    });
  }
  return out;
}
