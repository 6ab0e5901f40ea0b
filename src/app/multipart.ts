import busboy from 'busboy';
import { NextFunction, Request, Response } from 'express';
import { Readable } from 'node:stream';

export const isMultipart = (req: Request) => (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');

/** A client's mistake in a multipart body: HTTP 400 (or `status`), its message written for the client. */
export class MultipartError extends Error {
  readonly expose = true;
  constructor(
    message: string,
    readonly status = 400,
    readonly code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'MALFORMED_MULTIPART',
  ) {
    super(message);
    this.name = 'MultipartError';
  }
}

export const malformedMultipart = (detail?: string) =>
  new MultipartError(`The multipart body is malformed${detail ? ` (${detail})` : ''}; nothing was stored.`);

/**
 * Busboy with every error routed to `onError`. Busboy can emit 'error' more than once (a malformed part
 * header, then "Unexpected end of form" when it is destroyed): a `once` listener leaves the second one
 * uncaught, which ends the process. Returns null (after calling `onError`) when the headers are unusable.
 */
export function openMultipart(req: Request, limits: busboy.Limits, onError: (err: MultipartError) => void): busboy.Busboy | null {
  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: req.headers, defParamCharset: 'utf8', limits });
  } catch (err) {
    onError(malformedMultipart((err as Error).message));
    return null;
  }
  bb.on('error', (err: Error) => onError(malformedMultipart(err.message)));
  // Busboy destroys a file stream that the body breaks off inside; whoever reads it sees that as its own error.
  bb.on('file', (_name: string, stream: Readable) => stream.on('error', () => undefined));
  return bb;
}

/**
 * A refused multipart upload is answered before its body is read. The connection is kept usable by
 * reading and dropping the rest of the body after the answer, up to `bound` bytes; past that the socket is
 * closed (a body announced larger is answered with `Connection: close` first). Without this the unread body
 * stays in the socket: the client's next request on it waits for the keep-alive timeout, then is reset.
 */
export function drainAfterAnswer(bound: number) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!isMultipart(req)) return next();
    const announced = Number(req.headers['content-length'] ?? NaN);
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: unknown[]) {
      if (!req.complete && !res.headersSent && announced > bound) res.setHeader('Connection', 'close');
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as typeof res.writeHead;
    res.once('finish', () => {
      if (req.complete || req.destroyed) return;
      let left = bound;
      req.unpipe();
      req.on('data', (chunk: Buffer) => {
        left -= chunk.length;
        if (left < 0) req.socket.destroy();
      });
      req.resume();
    });
    next();
  };
}
