import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { uploadStreamError, UploadTooLargeError } from '../../../common/upload/spool';
import { CaptureSample, SAMPLE_BYTES, sampleCaptureTimes } from './capture-sample';
import { CONVERT_HINT, sniff } from './sniff';

/** Why an upload was refused while it streamed in; nothing was stored. */
export class UploadRefusedError extends Error {
  constructor(
    readonly code: 'UNSUPPORTED_FORMAT' | 'NOT_TEXT' | 'EMPTY',
    message: string,
  ) {
    super(message);
    this.name = 'UploadRefusedError';
  }
}

export interface IntakeResult {
  /** Bytes and MD5 as received (what the client's size and md5 describe). */
  size: number;
  md5: string;
  gzipped: boolean;
  /** The text after gunzip. */
  textBytes: number;
  /** The bytes to store: the client's gzip as it came, or the text compressed with Brotli. */
  stored: Buffer;
  storedEncoding: 'gzip' | 'br';
  /** Capture times of the packet lines at the text's two ends (null when neither holds one). */
  sample: CaptureSample | null;
}

/** Bytes looked at before deciding what a file is. */
const SNIFF_BYTES = 4096;
/** Bytes per write into, and per chunk out of, the zlib streams (defaults: 16 KiB out, as the socket gives in). */
const ZLIB_CHUNK = 512 * 1024;

/**
 * Reads an upload stream once, refusing as early as possible: binary pcap/pcapng (with the command that
 * converts it), other binary data, empty files, and anything over `limit` bytes: the bytes sent, and for gzip
 * also the text they inflate to, so that a small gzip bomb is refused by what it inflates to and a gzip padded
 * out (a header comment of 200 MB inflates to one line) by its own size. Busboy's truncation flag is checked
 * too: it ends a stream silently at its own limit, and a gzip cut there is too large, not broken.
 */
export async function intake(source: Readable & { truncated?: boolean }, limit: number): Promise<IntakeResult> {
  const md5 = crypto.createHash('md5');
  let size = 0;
  let gzipped = false;
  let plain = false;
  // A gzip upload is stored as the client sent it (it is inflated only to check it): no second compression.
  let rawChunks: Buffer[] = [];
  const raw = new HeadGate(
    SNIFF_BYTES,
    (head) => {
      const kind = sniff(head);
      if (kind === 'gzip') gzipped = true;
      else {
        plain = true;
        rawChunks = [];
        checkText(kind);
      }
    },
    (chunk) => {
      size += chunk.length;
      if (!plain) rawChunks.push(chunk);
      // What is stored and held in memory until then: the bytes sent, gzip or not (the text is counted below).
      if (size > limit) throw new UploadTooLargeError(limit);
      md5.update(chunk);
    },
  );
  let textBytes = 0;
  let textHead: Buffer = Buffer.alloc(0);
  let textTail: Buffer = Buffer.alloc(0);
  const text = new HeadGate(
    SNIFF_BYTES,
    (head) => {
      checkText(sniff(head));
      textHead = head.subarray(0, SAMPLE_BYTES);
    },
    (chunk) => {
      textBytes += chunk.length;
      if (textBytes > limit) throw new UploadTooLargeError(limit);
      // The last SAMPLE_BYTES of text, copied only from small chunks.
      textTail = chunk.length >= SAMPLE_BYTES ? chunk.subarray(chunk.length - SAMPLE_BYTES) : Buffer.concat([textTail, chunk]).subarray(-SAMPLE_BYTES);
    },
  );
  // Brotli at quality 1: on tcpdump text it compresses faster and smaller than gzip level 1 and inflates ~3x
  // faster (15 MB here: 42 vs 75 ms to compress, 27 vs 85 ms to decompress), which both ack and worker pay.
  const compress = new WhenActive(
    () =>
      zlib.createBrotliCompress({
        chunkSize: ZLIB_CHUNK,
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT },
      }),
    () => !gzipped,
  );
  const stored: Buffer[] = [];
  const collect = new Transform({
    transform(chunk: Buffer, _e, done) {
      if (!gzipped) stored.push(chunk);
      done();
    },
  });
  try {
    // Whether to gunzip (and gzip) is decided by the first bytes; WhenActive keeps it one pipeline either way.
    // Large pieces into and out of zlib: every hand-off to its thread pool costs an event-loop turn, and a turn
    // is long while the loop is busy (an index rebuild yields only between its pages): 64 KiB pieces stretched
    // a 15 MB acknowledgment from 0.5 s to 4.4 s during a rebuild on SQLite.
    await pipeline(
      source,
      raw,
      new WhenActive(
        () => zlib.createGunzip({ chunkSize: ZLIB_CHUNK }),
        () => gzipped,
      ),
      text,
      new Coalesce(ZLIB_CHUNK),
      compress,
      collect,
    );
  } catch (err) {
    // The pipeline destroys the source with our own refusal too: that is no interrupted upload.
    if (err instanceof UploadRefusedError || err instanceof UploadTooLargeError) throw err;
    if (source.truncated) throw new UploadTooLargeError(limit);
    if ((err as { code?: string }).code === 'Z_DATA_ERROR' || (err as { code?: string }).code === 'Z_BUF_ERROR') {
      throw new UploadRefusedError('NOT_TEXT', 'The file starts like gzip but does not decompress; upload the tcpdump text, gzip-compressed or not.');
    }
    throw uploadStreamError(source, err);
  }
  if (source.truncated) throw new UploadTooLargeError(limit);
  if (size === 0 || textBytes === 0) throw new UploadRefusedError('EMPTY', 'The file is empty: nothing to process.');
  return {
    size,
    md5: md5.digest('hex'),
    gzipped,
    textBytes,
    stored: Buffer.concat(gzipped ? rawChunks : stored),
    storedEncoding: gzipped ? 'gzip' : 'br',
    sample: sampleCaptureTimes(textHead, textTail, textBytes),
  };
}

function checkText(kind: ReturnType<typeof sniff>): void {
  if (kind === 'pcap' || kind === 'pcapng') {
    throw new UploadRefusedError(
      'UNSUPPORTED_FORMAT',
      `This is a binary ${kind} capture; upload tcpdump's text output instead. Convert it with: ${CONVERT_HINT}`,
    );
  }
  if (kind === 'binary' || kind === 'gzip') {
    throw new UploadRefusedError('NOT_TEXT', `This is not text; upload the output of "tcpdump -tt -n" (convert a capture with: ${CONVERT_HINT}).`);
  }
}

/** Calls `onHead` once with the first `n` bytes (or all of a shorter stream), `onChunk` for every chunk; passes bytes on. */
class HeadGate extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private decided = false;

  constructor(
    private readonly n: number,
    private readonly onHead: (head: Buffer) => void,
    private readonly onChunk: (chunk: Buffer) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      if (this.decided) {
        this.onChunk(chunk);
        return done(null, chunk);
      }
      this.head.push(chunk);
      this.headBytes += chunk.length;
      // What the file is, is decided before its size counts: a large pcap is told how to convert it.
      if (this.headBytes >= this.n) this.release();
      this.onChunk(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (!this.decided && this.headBytes > 0) this.release();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private release(): void {
    const all = Buffer.concat(this.head);
    this.onHead(all.subarray(0, this.n));
    this.decided = true;
    this.head = [];
    this.push(all);
  }
}

/** Runs bytes through a zlib stream made on first use when `active()` says so (decided by the first bytes), else passes them on. */
class WhenActive extends Transform {
  private inner: Transform | null = null;

  constructor(
    private readonly create: () => Transform,
    private readonly active: () => boolean,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.active()) return done(null, chunk);
    if (!this.inner) {
      this.inner = this.create();
      this.inner.on('data', (d: Buffer) => this.push(d));
      this.inner.on('error', (e) => this.destroy(e));
    }
    if (!this.inner.write(chunk)) this.inner.once('drain', () => done());
    else done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.inner) return done();
    this.inner.once('end', () => done());
    this.inner.once('error', (e) => done(e));
    this.inner.end();
  }
}

/** Passes bytes on in chunks of at least `size` (the last may be shorter): Brotli emits a block per write, so tiny writes would bloat it. */
class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.size) this.release();
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes > 0) this.release();
    done();
  }

  private release(): void {
    this.push(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts));
    this.parts = [];
    this.bytes = 0;
  }
}
