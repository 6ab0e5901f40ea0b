import { ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { NextFunction, Request, Response } from 'express';
import { FieldNode, FragmentDefinitionNode, GraphQLError, Kind, OperationDefinitionNode, SelectionSetNode } from 'graphql';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppConfig } from '../config/config';
import { hashSecret, looksLikeSecret } from '../modules/account/api-key.secret';
import { bearerToken } from './context';

/** Mutations that take a file. Multipart requests are counted before their body is read, so these only count otherwise. */
export const UPLOAD_FIELDS = new Set(['logUploadCreate', 'iocListImport']);
/** Query fields whose answers are computed over many rows. */
export const REPORT_FIELDS = new Set(['hitReport', 'dashboard', 'flowHits']);

export type Bucket = 'uploads' | 'reports';

const LEGACY_UPLOAD_PATHS = new Set(['/logupload', '/cgi-bin/logupload.pl']);

const isMultipart = (contentType: string | undefined | null) => (contentType ?? '').toLowerCase().startsWith('multipart/form-data');

/**
 * Who is counted: an API key (by the hash of the secret presented, so no database read is needed before the
 * body) or, without one, the client's address (req.ip: only as trustworthy as TRUST_PROXY makes it).
 */
export function rateLimitIdentity(authorization: string | undefined | null, ip: string | undefined): string {
  const token = bearerToken(authorization ?? undefined);
  return token && looksLikeSecret(token) ? `key:${hashSecret(token)}` : `ip:${ip ?? 'unknown'}`;
}

export class RateLimited extends Error {
  constructor(
    readonly bucket: Bucket,
    readonly perMinute: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `Too many ${bucket === 'uploads' ? 'uploads' : 'report requests'}: at most ${perMinute} a minute for one API key (or client address). Retry in ${retryAfterSeconds} s.`,
    );
    this.name = 'RateLimited';
  }
}

/**
 * Per-minute budgets for uploads and for expensive reports, in this process's memory (rate-limiter-flexible).
 * Several processes behind a load balancer each keep their own counts.
 */
export class RateLimits {
  private readonly limiters: Record<Bucket, RateLimiterMemory | null>;

  constructor(private readonly config: AppConfig['rateLimits']) {
    const make = (points: number) => (points > 0 ? new RateLimiterMemory({ points, duration: 60 }) : null);
    this.limiters = { uploads: make(config.uploadsPerMinute), reports: make(config.reportsPerMinute) };
  }

  /** Takes `points` from `who`'s budget; throws RateLimited when it is spent. */
  async take(bucket: Bucket, who: string, points = 1): Promise<void> {
    const limiter = this.limiters[bucket];
    if (!limiter || points <= 0) return;
    try {
      await limiter.consume(who, points);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      const perMinute = bucket === 'uploads' ? this.config.uploadsPerMinute : this.config.reportsPerMinute;
      throw new RateLimited(bucket, perMinute, Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
    }
  }

  /**
   * Routes outside GraphQL execution, answered before the body is read: multipart POST /graphql (uploads),
   * the legacy form upload, and GET /export/*.
   */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    let bucket: Bucket | null = null;
    let graphql = false;
    if (req.method === 'POST' && req.path === '/graphql' && isMultipart(req.headers['content-type'])) {
      bucket = 'uploads';
      graphql = true;
    } else if (req.method === 'POST' && LEGACY_UPLOAD_PATHS.has(req.path)) {
      bucket = 'uploads';
    } else if ((req.method === 'GET' || req.method === 'HEAD') && req.path.startsWith('/export/')) {
      bucket = 'reports';
    }
    if (!bucket) return next();
    this.take(bucket, rateLimitIdentity(req.headers.authorization, req.ip)).then(
      () => next(),
      (err) => {
        if (!(err instanceof RateLimited)) return next(err);
        res.status(429).set('Retry-After', String(err.retryAfterSeconds));
        res.json(graphql ? { errors: [{ message: err.message, extensions: { code: 'RATE_LIMITED' } }] } : { error: err.message, code: 'RATE_LIMITED' });
      },
    );
  };

  /**
   * GraphQL operations: report fields at the root of a query, and upload mutations sent without multipart,
   * one point per field. Runs once the operation is known and before any resolver (didResolveOperation is the
   * hook whose errors Apollo answers as they are; others become a 500).
   */
  plugin(): ApolloServerPlugin {
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ request, operation, document }) => {
          if (!operation) return;
          const fragments = new Map<string, FragmentDefinitionNode>();
          for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
          const fields = rootFieldNames(operation, fragments);
          const reports = operation.operation === 'query' ? fields.filter((f) => REPORT_FIELDS.has(f)).length : 0;
          const uploads =
            operation.operation === 'mutation' && !isMultipart(request.http?.headers.get('content-type'))
              ? fields.filter((f) => UPLOAD_FIELDS.has(f)).length
              : 0;
          if (reports + uploads === 0) return;
          const who = rateLimitIdentity(request.http?.headers.get('authorization'), undefined);
          try {
            await this.take('uploads', who, uploads);
            await this.take('reports', who, reports);
          } catch (err) {
            if (err instanceof RateLimited) throw rateLimitedError(err);
            throw err;
          }
        },
      }),
    };
  }
}

export function rateLimitedError(err: RateLimited): GraphQLError {
  return new GraphQLError(err.message, {
    extensions: { code: 'RATE_LIMITED', http: { status: 429, headers: new HeaderMap([['retry-after', String(err.retryAfterSeconds)]]) } },
  });
}

/** Names of the fields selected at the root of an operation, through fragments (aliases counted separately). */
function rootFieldNames(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) out.push((s as FieldNode).name.value);
      else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const f = fragments.get(s.name.value);
        if (f) walk(f.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return out;
}
