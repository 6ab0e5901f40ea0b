import { NextFunction, Request, Response } from 'express';
import { graphqlUploadExpress } from 'graphql-upload-minimal';

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
export function graphqlUploads(maxFileSize: number) {
  const upload = graphqlUploadExpress({ maxFileSize: maxFileSize + 1, maxFiles: 1, maxFieldSize: 1_000_000 });
  return (req: Request, res: Response, next: NextFunction) => (isMultipart(req) ? upload(req, res, next) : next());
}
