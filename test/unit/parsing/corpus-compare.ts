// Compares the parser with the reference extraction of a tcpdump corpus directory (layout: see
// test/fixtures/tcpdump/README.md). Lines listed in ambiguous/ may take either treatment.
import fs from 'node:fs';
import path from 'node:path';
import { PacketRow } from '../../../src/modules/log-upload/parsing/packet-batch';
import { parseLines } from '../../../src/modules/log-upload/parsing/tcpdump-parser';

export const SHARED_CORPUS = path.resolve(__dirname, '../../../..', 'shared/corpus/tcpdump');
export const FIXTURE_CORPUS = path.resolve(__dirname, '../../fixtures/tcpdump');

/** The reference row format: `ts src sport dst dport IP|IP6`, ports empty when absent. */
export function rowKey(r: PacketRow): string {
  return [r.ts, r.src, r.srcPort ?? '', r.dst, r.dstPort ?? '', r.family].join('\t');
}

interface Ambiguous {
  inExpected: boolean;
  candidate: string | null;
}

export interface FileAgreement {
  name: string;
  /** Rows in expected/. */
  referenceRows: number;
  /** Reference rows plus rows we emit for ambiguous lines the reference leaves out. */
  rows: number;
  matched: number;
  ambiguousLines: number;
  /** Ambiguous lines where we took the reference's treatment / the candidate. */
  ambiguousAsReference: number;
  ambiguousAsCandidate: number;
  problems: string[];
}

function readAmbiguous(file: string): Map<number, Ambiguous> {
  const out = new Map<number, Ambiguous>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const [lineNo, , inExpected, candidate] = line.split('\t');
    out.set(Number(lineNo), { inExpected: inExpected.startsWith('yes'), candidate: candidate === '-' ? null : candidate.split('|').join('\t') });
  }
  return out;
}

/** Reference rows of a corpus capture, given its ascii/NAME.txt path. */
export function readExpected(asciiFile: string): string[] {
  const file = path.join(path.dirname(asciiFile), '..', 'expected', `${path.basename(asciiFile, '.txt')}.tsv`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

export function compareFile(dir: string, name: string): FileAgreement {
  const text = fs.readFileSync(path.join(dir, 'ascii', `${name}.txt`));
  const expected = readExpected(path.join(dir, 'ascii', `${name}.txt`));
  const ambiguous = readAmbiguous(path.join(dir, 'ambiguous', `${name}.amb.tsv`));
  const { rows, stats } = parseLines(text);
  const mine = new Map(rows.map((r) => [r.lineNo, rowKey(r)]));
  const result: FileAgreement = {
    name,
    referenceRows: expected.length,
    rows: 0,
    matched: 0,
    ambiguousLines: ambiguous.size,
    ambiguousAsReference: 0,
    ambiguousAsCandidate: 0,
    problems: [],
  };
  // Reference rows carry no line numbers: walk the lines in order and consume one reference row per
  // line that yields one (ours, or the reference's for an ambiguous line it includes).
  let next = 0;
  for (let lineNo = 1; lineNo <= stats.lines; lineNo++) {
    const got = mine.get(lineNo);
    const amb = ambiguous.get(lineNo);
    if (amb?.inExpected) {
      const want = expected[next++];
      result.rows++;
      if (got === want) result.ambiguousAsReference++;
      else if (got !== undefined && got === amb.candidate) result.ambiguousAsCandidate++;
      else {
        result.problems.push(`${name}:${lineNo} ambiguous: got ${got} want ${want} or ${amb.candidate}`);
        continue;
      }
      result.matched++;
    } else if (amb) {
      if (got === undefined) result.ambiguousAsReference++;
      else if (got === amb.candidate) {
        result.rows++;
        result.matched++;
        result.ambiguousAsCandidate++;
      } else result.problems.push(`${name}:${lineNo} ambiguous (no reference row): got ${got}, candidate ${amb.candidate}`);
    } else if (got !== undefined) {
      const want = expected[next++];
      result.rows++;
      if (got === want) result.matched++;
      else result.problems.push(`${name}:${lineNo} got ${got} want ${want}`);
    }
  }
  for (; next < expected.length; next++) {
    result.rows++;
    result.problems.push(`${name}: reference row not produced: ${expected[next]}`);
  }
  return result;
}

export function corpusNames(dir: string): string[] {
  return fs
    .readdirSync(path.join(dir, 'ascii'))
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .sort();
}

export interface CorpusAgreement extends Omit<FileAgreement, 'name'> {
  files: number;
  filesFullyMatching: number;
}

export function compareCorpus(dir: string): CorpusAgreement {
  const total: CorpusAgreement = {
    files: 0,
    filesFullyMatching: 0,
    referenceRows: 0,
    rows: 0,
    matched: 0,
    ambiguousLines: 0,
    ambiguousAsReference: 0,
    ambiguousAsCandidate: 0,
    problems: [],
  };
  for (const name of corpusNames(dir)) {
    const f = compareFile(dir, name);
    total.files++;
    if (f.problems.length === 0) total.filesFullyMatching++;
    total.referenceRows += f.referenceRows;
    total.rows += f.rows;
    total.matched += f.matched;
    total.ambiguousLines += f.ambiguousLines;
    total.ambiguousAsReference += f.ambiguousAsReference;
    total.ambiguousAsCandidate += f.ambiguousAsCandidate;
    total.problems.push(...f.problems);
  }
  return total;
}

export type VariantKind = 'tt_n_e' | 'tt_n_q' | 'tt_n_v' | 'n_UTC';

export function variantFiles(dir: string): { file: string; base: string; kind: VariantKind }[] {
  const vdir = path.join(dir, 'variants');
  if (!fs.existsSync(vdir)) return [];
  return fs
    .readdirSync(vdir)
    .map((file) => ({ file, m: /^(.+)\.(tt_n_e|tt_n_q|tt_n_v|n_UTC)\.txt$/.exec(file) }))
    .filter((x): x is { file: string; m: RegExpExecArray } => x.m !== null && fs.existsSync(path.join(dir, 'ascii', `${x.m[1]}.txt`)))
    .map(({ file, m }) => ({ file: path.join(vdir, file), base: path.join(dir, 'ascii', `${m[1]}.txt`), kind: m[2] as VariantKind }))
    .sort((a, b) => a.file.localeCompare(b.file));
}
