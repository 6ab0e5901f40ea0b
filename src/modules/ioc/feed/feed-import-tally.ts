// Counts an import as it streams and dedupes entries within one file. Pure.

import { Cidr } from '../../../common/net/cidr';
import { FeedLine } from './feed-reader';
import { FeedSkipCode } from './feed-line';

export interface FeedSkippedLine {
  readonly lineNumber: number;
  readonly text: string;
  readonly code: FeedSkipCode;
  readonly reason: string;
}

export interface FeedImportSummary {
  /** Lines read, including blank and comment lines. */
  readonly lines: number;
  readonly blank: number;
  readonly comments: number;
  /** Entries seen for the first time in this file (a range counts each of its CIDRs). */
  readonly added: number;
  /** Entries already seen earlier in this file (same canonical CIDR). */
  readonly duplicates: number;
  /** Lines that were neither blank, comment nor an entry. */
  readonly skipped: number;
  /** Entry lines whose host bits were cleared. */
  readonly normalized: number;
  /** The first `maxSkippedSamples` skipped lines, in file order. */
  readonly skippedLines: readonly FeedSkippedLine[];
}

export interface FeedNewEntry {
  readonly cidr: Cidr;
  readonly comment?: string;
  /** Epoch ms, when the feed gives an expiry. */
  readonly expiresAt?: number;
  readonly lineNumber: number;
}

export interface FeedImportTallyOptions {
  /** Default 100. */
  readonly maxSkippedSamples?: number;
  /**
   * Default true. False: every entry is returned and none counted as a duplicate (the caller dedupes, as
   * the bulk import does by sorting: a set of every CIDR's text costs more than the rest of the parse).
   */
  readonly dedupe?: boolean;
}

export class FeedImportTally {
  private readonly maxSamples: number;
  private readonly dedupe: boolean;
  private readonly seen = new Set<string>();
  private readonly samples: FeedSkippedLine[] = [];
  private lines = 0;
  private blank = 0;
  private comments = 0;
  private added = 0;
  private duplicates = 0;
  private skipped = 0;
  private normalized = 0;

  constructor(options: FeedImportTallyOptions = {}) {
    this.maxSamples = options.maxSkippedSamples ?? 100;
    this.dedupe = options.dedupe ?? true;
  }

  /** Counts one line; returns the entries it adds (empty for duplicates, comments and skips). */
  record(line: FeedLine): FeedNewEntry[] {
    this.lines++;
    const r = line.result;
    switch (r.type) {
      case 'blank':
        this.blank++;
        return [];
      case 'comment':
        this.comments++;
        return [];
      case 'skip':
        this.skipped++;
        if (this.samples.length < this.maxSamples) {
          this.samples.push({ lineNumber: line.lineNumber, text: line.text, code: r.code, reason: r.reason });
        }
        return [];
      case 'entry': {
        if (r.normalized) this.normalized++;
        if (!this.dedupe) {
          this.added += r.cidrs.length;
          return r.cidrs.map((cidr) => ({ cidr, comment: r.comment, expiresAt: r.expiresAt, lineNumber: line.lineNumber }));
        }
        const fresh: FeedNewEntry[] = [];
        for (const cidr of r.cidrs) {
          if (this.seen.has(cidr.text)) {
            this.duplicates++;
            continue;
          }
          this.seen.add(cidr.text);
          this.added++;
          fresh.push({ cidr, comment: r.comment, expiresAt: r.expiresAt, lineNumber: line.lineNumber });
        }
        return fresh;
      }
    }
  }

  /** Counts a plain address line the reader handed over without a FeedLine (FeedReadOptions.onPlainIpv4, onPlainIpv6). */
  recordPlainEntry(normalized: boolean): void {
    if (this.dedupe) throw new Error('FeedImportTally: plain entries carry no text to dedupe by');
    this.lines++;
    this.added++;
    if (normalized) this.normalized++;
  }

  /** Lines counted so far. */
  get lineCount(): number {
    return this.lines;
  }

  summary(): FeedImportSummary {
    return {
      lines: this.lines,
      blank: this.blank,
      comments: this.comments,
      added: this.added,
      duplicates: this.duplicates,
      skipped: this.skipped,
      normalized: this.normalized,
      skippedLines: this.samples.slice(),
    };
  }
}
