import { NextFunction, Request, Response } from 'express';
import { graphqlUploadExpress, Upload } from 'graphql-upload-minimal';
import { UploadInterruptedError, UploadTooLargeError } from '../common/upload/spool';

const isMultipart = (req: Request) => (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');

/**
 * Apollo's CSRF prevention wants a preflight-forcing header on multipart requests. Refuse before anything
 * reads the body: answering after the upload middleware started parsing resets the connection.
 */
export function requirePreflightForMultipart(req: Request, res: Response, next: NextFunction): void {
  if (isMultipart(req) && !req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name']) {
    res.status(400).json({
      error: 'Multipart requests must send the header "Apollo-Require-Preflight: true" (CSRF protection).',
    });
    return;
  }
  next();
}

/**
 * GraphQL multipart uploads. `maxFileSize` here is only the outer bound (busboy truncates silently at it);
 * each use counts bytes against its own limit (see spoolToFile).
 */
export function graphqlUploads(maxFileSize: number, maxFieldSize = 1_000_000) {
  const upload = graphqlUploadExpress({ maxFileSize: maxFileSize + 1, maxFiles: 1, maxFieldSize });
  return (req: Request, res: Response, next: NextFunction) =>
    isMultipart(req)
      ? upload(req, res, (err?: unknown) => {
          if (err == null) wrapUploads(req.body, maxFileSize);
          next(asClientError(err));
        })
      : next();
}

/**
 * Two gaps of graphql-upload-minimal, closed where its uploads are handed to resolvers:
 * - a body that breaks off before or inside a file fails the upload with busboy's bare error, thrown by
 *   `await file` or `createReadStream()`: it becomes UploadInterruptedError, a client error;
 * - a file that busboy truncates at `maxFileSize` is unpiped, so a reader that pipes it would wait forever
 *   (holding the request open): the stream fails with UploadTooLargeError instead.
 */
function wrapUploads(value: unknown, maxFileSize: number, depth = 0): void {
  if (value instanceof Upload) {
    const clientError = (err: unknown) => (isClientError(err) ? err : new UploadInterruptedError());
    value.promise = value.promise.then(
      (file) => ({
        ...file,
        createReadStream: () => {
          let stream: ReturnType<typeof file.createReadStream>;
          try {
            stream = file.createReadStream();
          } catch (err) {
            throw clientError(err);
          }
          stream.once('limit', () => stream.destroy(new UploadTooLargeError(maxFileSize)));
          return stream;
        },
      }),
      (err) => {
        throw clientError(err);
      },
    );
    // As graphql-upload does: an upload no resolver awaits must not fail the process.
    value.promise.catch(() => undefined);
    return;
  }
  if (value !== null && typeof value === 'object' && depth < 16) for (const v of Object.values(value)) wrapUploads(v, maxFileSize, depth + 1);
}

const isClientError = (err: unknown) => {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
};

/**
 * The parser's refusals carry a 4xx status; busboy's own errors ("Unexpected end of form", "Malformed part
 * header") and a body with no parts at all come without one (or as a 500) but are the client's too.
 */
function asClientError(err: unknown): unknown {
  if (err == null || isClientError(err)) return err;
  return Object.assign(new Error('The multipart body is malformed: send the fields operations and map, then the files (GraphQL multipart request).'), {
    status: 400,
    expose: true,
  });
}
