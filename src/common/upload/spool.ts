import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GraphQLError } from 'graphql';

/** Over the size limit: refused as HTTP 413, nothing kept. */
export class UploadTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The file is larger than the limit of ${limit} bytes.`);
    this.name = 'UploadTooLargeError';
  }
}

export function payloadTooLarge(limit: number): GraphQLError {
  return new GraphQLError(`The file is larger than the limit of ${limit} bytes; nothing was stored.`, {
    extensions: { code: 'PAYLOAD_TOO_LARGE', http: { status: 413 } },
  });
}

/**
 * The upload stream itself failed: the client went away, or the multipart body ended mid-file. A client
 * error (`status`/`expose`, as the multipart parser's own errors), so its message reaches the client.
 */
export class UploadInterruptedError extends Error {
  readonly status = 400;
  readonly expose = true;
  constructor() {
    super('The upload ended before its file did (connection cut, or the multipart body is malformed); nothing was stored.');
    this.name = 'UploadInterruptedError';
  }
}

/** What a reader of `source` throws: the stream's own failure as UploadInterruptedError, anything else as it is. */
export function uploadStreamError(source: NodeJS.ReadableStream, err: unknown): unknown {
  const errored = (source as { errored?: unknown }).errored;
  if (errored == null || errored !== err || err instanceof UploadTooLargeError) return err;
  // The multipart parser's own refusal (e.g. a second file) already says what happened.
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) return err;
  return new UploadInterruptedError();
}

export interface SpooledFile {
  path: string;
  bytes: number;
  md5: string;
  /** Removes the temporary file; safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Copies an upload stream to a temporary file, counting bytes and hashing as it goes. Busboy's
 * `maxFileSize` ends the stream silently (setting `truncated`), so the count and the flag are both
 * checked: a file over `limit` is an UploadTooLargeError and leaves no file behind.
 */
export async function spoolToFile(stream: NodeJS.ReadableStream & { truncated?: boolean }, limit: number): Promise<SpooledFile> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'pcap-defense-'));
  const file = path.join(dir, 'upload');
  const remove = () => fs.promises.rm(dir, { recursive: true, force: true });
  const md5 = crypto.createHash('md5');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > limit) return done(new UploadTooLargeError(limit));
      md5.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(stream, meter, fs.createWriteStream(file));
    if (stream.truncated) throw new UploadTooLargeError(limit);
  } catch (err) {
    await remove();
    throw uploadStreamError(stream, err);
  }
  return { path: file, bytes, md5: md5.digest('hex'), remove };
}
