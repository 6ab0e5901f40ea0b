import zlib from 'node:zlib';
import { TransformOptions } from 'node:stream';
import { createDirectionClassifier } from '../flows/direction';
import { Connection, ConnectionFolder } from '../flows/fold';
import { DnsQueryFolder, DnsQueryGroup } from '../flows/dns-queries';
import { missingEpochTimestamps, ParseStats, TcpdumpParser } from '../parsing';
import type { ThreadTime } from '../../../common/threads/thread-priority';

/**
 * The CPU-heavy part of processing an upload, with no database: inflate the stored file, parse its lines and
 * fold the packets into connections. The processor runs it on a parse thread (parse-pool.ts) or, with
 * PARSE_THREADS=0, on the main thread; both run this one function, so both give the same connections.
 */

/** What the parse needs of a stored upload. */
export interface StoredFile {
  /** log_upload.stored_encoding: `br` or gzip. */
  encoding: string;
  /** The log_upload_blob rows' data, in seq order. */
  blobs: Uint8Array[];
  /** The device's internal networks (they decide each connection's direction and internal side). */
  internalNetworks: readonly string[];
  /** The device's own static address: inside, like its internal networks (flows/sides.ts). */
  ownAddress: string | null;
  /** Also read the DNS questions and answers (the device's policy has a DOMAIN list); off: `dnsQueries` is empty. */
  dns?: boolean;
}

export type ParseOutcome =
  | {
      kind: 'parsed';
      stats: ParseStats;
      bytes: number;
      connections: Connection[];
      dnsQueries: DnsQueryGroup[];
      /** The file was read only until its missing -tt timestamps were clear: `stats` counts the lines read. */
      partial: boolean;
      /** On a parse thread: that thread's time on a core and waiting for one over the job (null: not known here). */
      thread?: ThreadTime | null;
    }
  /** The stored bytes do not inflate. */
  | { kind: 'unreadable'; message: string }
  /** The slice hook said stop (shutdown, lease lost). */
  | { kind: 'stopped' };

/**
 * Called after each slice with the text bytes and lines parsed so far; false stops the parse. It is where the
 * caller reports progress, renews the lease and gives its event loop a turn.
 */
export type SliceHook = (bytes: number, lines: number) => boolean | Promise<boolean>;

/** Text parsed per slice (~2 ms at the parser's speed). */
export const SLICE = 1024 * 1024;
/** Slices out of the inflater, up to 4 inflated ahead of the parser (zlib streams take stream options too). */
const INFLATE: zlib.ZlibOptions & zlib.BrotliOptions & TransformOptions = { chunkSize: SLICE, readableHighWaterMark: 4 * SLICE };
/** A file mostly without -tt timestamps is known after this many lines: the rest is not parsed. */
const EPOCH_VERDICT_LINES = 2000;

export async function parseStoredFile(file: StoredFile, afterSlice: SliceHook): Promise<ParseOutcome> {
  const parser = new TcpdumpParser({ dns: file.dns === true });
  const classifier = createDirectionClassifier(file.internalNetworks, file.ownAddress);
  const folder = new ConnectionFolder(classifier);
  const dns = file.dns ? new DnsQueryFolder(classifier) : null;
  // The stored file inflates on zlib's thread pool a few slices ahead while this thread parses the slice
  // before: decompression and parsing overlap instead of adding up (one whole-file inflate first cost
  // ~130 ms of the ~0.6 s from ack to COMPLETED on a 2-core machine). Slices of SLICE bytes: few hand-offs.
  const inflate = file.encoding === 'br' ? zlib.createBrotliDecompress(INFLATE) : zlib.createGunzip(INFLATE);
  let unreadable: Error | null = null;
  inflate.once('error', (err) => (unreadable = err));
  // One write of the whole stored file: the inflater then hands over slices of SLICE bytes. Written blob by blob
  // (BLOB_CHUNK_BYTES each), it handed over a slice per blob, and every hand-off is a wait for a core when the
  // machine is busy, for this thread and for zlib's.
  inflate.end(file.blobs.length === 1 ? file.blobs[0] : Buffer.concat(file.blobs));
  let bytes = 0;
  /** The text read so far shows a file without -tt timestamps: a slice after it is not parsed. */
  let refusing = false;
  let partial = false;
  try {
    for await (const slice of inflate as AsyncIterable<Buffer>) {
      // Refused with the slice before, and the file goes on: its counts are of the lines read.
      if (refusing) {
        partial = true;
        break;
      }
      const batch = parser.push(slice);
      // The DNS rows index this batch: read before the next push reuses it.
      if (dns) dns.add(batch, parser.takeDnsRows());
      folder.add(batch);
      bytes += slice.length;
      const go = await afterSlice(bytes, parser.stats.lines);
      if (parser.stats.lines > EPOCH_VERDICT_LINES && missingEpochTimestamps(parser.stats)) refusing = true;
      if (!go) return { kind: 'stopped' };
    }
  } catch (err) {
    if (unreadable) return { kind: 'unreadable', message: (unreadable as Error).message };
    throw err;
  }
  // Cut short, the line cut at the last slice's end is left out: it would count in neither way for sure.
  if (!partial) {
    const batch = parser.end();
    if (dns) dns.add(batch, parser.takeDnsRows());
    folder.add(batch);
  }
  const stats = parser.stats;
  // A file refused for its timestamps needs its counts, not its connections.
  const refused = partial || missingEpochTimestamps(stats) !== null;
  return { kind: 'parsed', stats, bytes, partial, connections: refused ? [] : folder.finish(), dnsQueries: refused || !dns ? [] : dns.finish() };
}
