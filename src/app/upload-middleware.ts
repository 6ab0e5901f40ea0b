import busboy from 'busboy';
import { NextFunction, Request, Response } from 'express';
import { FileUpload, Upload } from 'graphql-upload-minimal';
import { Readable } from 'node:stream';
import { UploadTooLargeError } from '../common/upload/spool';
import { isMultipart, malformedMultipart, MultipartError, openMultipart } from './multipart';

/** graphql-upload-minimal's Upload as it is at run time (its typings leave out how it is settled). */
type PendingUpload = Upload & { resolve(file: FileUpload): void; reject(err: unknown): void };

const SPEC = 'see the GraphQL multipart request spec: fields operations and map, then the files';

/**
 * Apollo's CSRF prevention wants a preflight-forcing header on multipart requests. Refuse before anything
 * reads the body: answering after the upload middleware started parsing resets the connection.
 */
export function requirePreflightForMultipart(req: Request, res: Response, next: NextFunction): void {
  if (isMultipart(req) && !req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name']) {
    res.status(400).json({
      error: 'Multipart requests must send the header "Apollo-Require-Preflight: true" (CSRF protection).',
      code: 'BAD_REQUEST',
    });
    return;
  }
  next();
}

/**
 * GraphQL multipart uploads, parsed here rather than by graphql-upload-minimal, whose parser leaves
 * busboy's second error uncaught (one malformed part header ended the process). Only its Upload class is
 * used: the Upload scalar recognises it. `maxFileSize` is the outer bound; each use counts bytes against
 * its own limit (intake, spoolToFile).
 */
export function graphqlUploads(maxFileSize: number, maxFieldSize = 1_000_000) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!isMultipart(req)) return next();
    parseGraphqlMultipart(req, maxFileSize, maxFieldSize).then(
      (operations) => {
        req.body = operations;
        next();
      },
      (err) => next(err),
    );
  };
}

/**
 * Resolves with the operations (Upload objects placed at the paths the map names) as soon as the map is
 * read, so the resolver streams the file while it arrives; rejects with a MultipartError before that.
 * After that a failure reaches the resolver through its upload: `await file` or the file stream fails.
 */
function parseGraphqlMultipart(req: Request, maxFileSize: number, maxFieldSize: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let operations: unknown;
    let map: Map<string, PendingUpload> | null = null;
    let settled = false;
    let failed = false;
    let reading: Readable | null = null;
    let bb: busboy.Busboy | null = null;

    const fail = (err: MultipartError) => {
      if (failed) return;
      failed = true;
      if (!settled) {
        settled = true;
        reject(err);
      }
      if (reading && !reading.readableEnded) reading.destroy(err);
      if (map) for (const upload of map.values()) if (!upload.file) upload.reject(err);
      if (bb) {
        req.unpipe(bb);
        bb.destroy();
      }
    };

    // One more file than allowed is what tells busboy to report the limit; a file over the outer bound is truncated.
    bb = openMultipart(req, { fieldSize: maxFieldSize, fields: 2, files: 1, fileSize: maxFileSize + 1 }, fail);
    if (!bb) return;

    bb.on('field', (name: string, value: string, info: busboy.FieldInfo) => {
      if (failed) return;
      if (info.valueTruncated) return fail(new MultipartError(`The field "${name}" is larger than the limit of ${maxFieldSize} bytes.`, 413));
      if (name === 'operations') {
        const parsed = parseJson(value);
        if (parsed === undefined || parsed === null || typeof parsed !== 'object')
          return fail(malformedMultipart(`the field operations is not a JSON object; ${SPEC}`));
        operations = parsed;
      } else if (name === 'map') {
        if (operations === undefined) return fail(malformedMultipart(`the field map came before operations; ${SPEC}`));
        const parsed = parseJson(value);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          return fail(malformedMultipart(`the field map is not a JSON object; ${SPEC}`));
        const entries = Object.entries(parsed as Record<string, unknown>);
        if (entries.length > 1) return fail(new MultipartError('One file per request.', 413));
        map = new Map();
        for (const [field, paths] of entries) {
          if (!Array.isArray(paths) || paths.length === 0) return fail(malformedMultipart(`the map entry "${field}" is not a list of paths`));
          const upload = new Upload() as PendingUpload;
          map.set(field, upload);
          for (const p of paths) {
            if (typeof p !== 'string' || !placeAt(operations, p, upload))
              return fail(malformedMultipart(`the map path ${JSON.stringify(p)} names no place in operations`));
          }
        }
        settled = true;
        resolve(operations);
      }
    });

    bb.on('file', (name: string, stream: Readable & { truncated?: boolean }, info: busboy.FileInfo) => {
      const upload = map?.get(name);
      if (failed || !upload || upload.file) {
        stream.resume();
        if (!failed && !map) fail(malformedMultipart(`a file came before the map; ${SPEC}`));
        return;
      }
      reading = stream;
      // Busboy ends a stream silently at its limit: a reader that pipes it would wait forever.
      stream.once('limit', () => stream.destroy(new UploadTooLargeError(maxFileSize)));
      let handedOut = false;
      const file: FileUpload = {
        fieldName: name,
        filename: info.filename ?? 'upload',
        mimetype: info.mimeType,
        encoding: info.encoding,
        createReadStream: () => {
          if (handedOut) throw malformedMultipart('the same file is used twice');
          handedOut = true;
          return stream as unknown as ReturnType<FileUpload['createReadStream']>;
        },
      };
      upload.resolve(file);
    });

    bb.on('filesLimit', () => fail(new MultipartError('One file per request.', 413)));

    bb.on('close', () => {
      if (failed) return;
      if (operations === undefined) return fail(malformedMultipart(`the field operations is missing; ${SPEC}`));
      if (!map) return fail(malformedMultipart(`the field map is missing; ${SPEC}`));
      for (const upload of map.values())
        if (!upload.file) upload.reject(new MultipartError('The file the map names is missing from the request; nothing was stored.'));
    });

    // A client gone mid-body: end the file stream too, or its reader waits forever.
    req.once('close', () => {
      if (!req.complete) fail(malformedMultipart('the request ended before its body did'));
    });
    req.pipe(bb);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Sets `root.<path>` (dot-separated, e.g. "variables.input.file") where its parent exists; false when it does not. */
function placeAt(root: unknown, path: string, value: unknown): boolean {
  const keys = path.split('.');
  if (keys.some((k) => k === '' || UNSAFE_KEYS.has(k))) return false;
  let at = root;
  for (const key of keys.slice(0, -1)) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  if (at === null || typeof at !== 'object') return false;
  (at as Record<string, unknown>)[keys[keys.length - 1]] = value;
  return true;
}
