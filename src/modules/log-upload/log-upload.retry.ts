import type { Logger } from 'pino';
import { describeTransient, TransientDbError, transientDbError } from '../../common/errors/db-errors';
import { LogUploadQueue, MAX_ATTEMPTS } from './log-upload.queue';
import { analyticsUnavailableCause } from '../analytics/analytics-errors';

/**
 * Transient database errors (see transientDbError) while an acknowledged upload is processed are the database's
 * moment, not the upload's fault: they are retried with backoff within the job's attempt budget (MAX_ATTEMPTS,
 * shared with crashed workers), and each retry counts as an attempt on the job, so its `attempts` and `error`
 * show what happened. Two places retry:
 * - the finishing transaction (hits, roll-ups, counts, change log) is run again in place: the parsed result is
 *   still in memory, and a deadlock or a killed connection costs one transaction, not a re-parse;
 * - any other transient failure (or one the in-place retry could not record) hands the job back to the queue,
 *   claimable again after the backoff.
 * Only errors of the upload itself (an unreadable file, no -tt timestamps, its device gone) fail it for good.
 *
 * The analytics tier (ClickHouse, ANALYTICS_URL) away is neither the upload's fault nor a moment of SQL's: the
 * job goes back to the queue with its attempt given back (an outage of any length never fails an upload), and
 * the worker stops claiming until the tier answers again, waiting with the same backoff (doubling per failure
 * in a row, capped, with jitter). The upload stays durable in SQL meanwhile, QUEUED, its `error` saying why.
 */
export interface RetryPolicy {
  /** The first backoff; each further retry doubles it (WORKER_RETRY_BASE_MS). */
  baseMs: number;
  maxMs?: number;
  /** [0, 1); tests pass a fixed one. */
  random?: () => number;
}

export const RETRY_MAX_MS = 60_000;
/** WORKER_RETRY_BASE_MS's default. */
export const DEFAULT_RETRY: RetryPolicy = { baseMs: 1_000 };

/**
 * Backoff before retry number `retry` (1 for the first): base * 2^(retry-1), capped, with equal jitter (half of
 * it fixed, half random) so that workers that failed together (one deadlock, one failover) retry apart.
 */
export function retryDelayMs(retry: number, policy: RetryPolicy): number {
  const step = Math.min(policy.maxMs ?? RETRY_MAX_MS, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + (policy.random ?? Math.random)() * (step / 2));
}

export interface RetryEvent {
  uploadId: number;
  /** The attempt that failed. */
  attempt: number;
  kind: TransientDbError['kind'];
  code: string;
  delayMs: number;
  /** True: the finishing transaction runs again in place; false: the job went back to the queue. */
  inPlace: boolean;
}

/** What the job's `error` says while it waits for its next attempt. */
export function retryingReason(t: TransientDbError): string {
  return `Retrying: the last attempt failed on a transient database error: ${describeTransient(t)}.`;
}

/** What a job waiting for disk space says. */
export function waitingForSpaceReason(t: TransientDbError): string {
  return `Waiting for storage: the last attempt failed because ${describeTransient(t)}; it is tried again until space is freed.`;
}

/** What a job waiting for the analytics tier says. */
export function waitingForAnalyticsReason(code: string): string {
  return `Waiting for the analytics tier (ClickHouse): the last attempt could not reach it (${code}); tried again when it answers.`;
}

/** What a job that spent its attempts on transient errors ends with. */
export function gaveUpReason(attempts: number, t: TransientDbError): string {
  return `Gave up after ${attempts} attempts; the last failed on a transient database error: ${describeTransient(t)}.`;
}

/**
 * Runs the finishing transaction `work`; on a transient error counts the next attempt on the job (which also
 * extends its lease over the wait), waits the backoff and runs it again. Rethrows the error when it is not
 * transient, when the budget is spent, or when the attempt cannot be recorded (lease lost, database away): the
 * worker then decides (handleJobError).
 */
export async function retryInPlace<T>(
  work: () => Promise<T>,
  job: { uploadId: number; owner: string; leaseMs: number; signal?: AbortSignal },
  queue: LogUploadQueue,
  policy: RetryPolicy,
  onRetry?: (event: RetryEvent) => void,
): Promise<T> {
  for (;;) {
    try {
      return await work();
    } catch (err) {
      const transient = transientDbError(err);
      // A full disk stays full for longer than a transaction's retries: the worker sends the job back to wait (handleJobError).
      if (!transient || transient.kind === 'storage-full') throw err;
      const maxDelay = Math.min(policy.maxMs ?? RETRY_MAX_MS, policy.baseMs * 2 ** (MAX_ATTEMPTS - 1));
      const attempt = await queue.countRetry(job.uploadId, job.owner, retryingReason(transient), job.leaseMs + maxDelay).catch(() => null);
      if (attempt == null) throw err;
      const delayMs = retryDelayMs(attempt - 1, policy);
      onRetry?.({ uploadId: job.uploadId, attempt: attempt - 1, kind: transient.kind, code: transient.code, delayMs, inPlace: true });
      // Shutdown cuts the wait short: the job was handed back, and the next try finds its lease gone.
      await abortableSleep(delayMs, job.signal);
    }
  }
}

/**
 * A job's processing threw. Transient: back to the queue after a backoff, or FAILED once the attempts are
 * spent. Anything else is a bug: FAILED at once, masked (the log has the error).
 */
export async function handleJobError(
  err: unknown,
  job: { uploadId: number; attempt: number; owner: string },
  queue: LogUploadQueue,
  policy: RetryPolicy,
  logger: Logger,
  /** Failures of the analytics tier in a row, this one included (the worker's count): the backoff's step. */
  analyticsOutages = 1,
): Promise<JobErrorHandled> {
  const analytics = analyticsUnavailableCause(err);
  if (analytics) {
    const delayMs = retryDelayMs(analyticsOutages, policy);
    const fields = { uploadId: job.uploadId, code: analytics, owner: job.owner, attempt: job.attempt, delayMs };
    try {
      if (await queue.retryLater(job.uploadId, job.owner, waitingForAnalyticsReason(analytics), delayMs, true)) {
        logger.warn({ event: 'job.retry', ...fields, kind: 'analytics', inPlace: false, refunded: true }, 'analytics tier unavailable; job queued again');
      } else logger.warn({ event: 'job.lease_lost', ...fields }, 'job lease lost; result discarded');
    } catch (again) {
      // SQL is away too: the lease runs out and the job is claimed again then.
      logger.warn({ event: 'job.retry', ...fields, kind: 'analytics', err: again, inPlace: false }, 'analytics tier unavailable; job left to its lease');
    }
    return { analyticsDown: true, delayMs };
  }
  await handleDbError(err, job, queue, policy, logger);
  return { analyticsDown: false, delayMs: 0 };
}

/** What handleJobError did: whether the analytics tier was the cause, and the backoff it chose. */
export interface JobErrorHandled {
  analyticsDown: boolean;
  delayMs: number;
}

async function handleDbError(
  err: unknown,
  job: { uploadId: number; attempt: number; owner: string },
  queue: LogUploadQueue,
  policy: RetryPolicy,
  logger: Logger,
): Promise<void> {
  const transient = transientDbError(err);
  if (!transient) {
    logger.error({ event: 'upload.failed', err, uploadId: job.uploadId, attempt: job.attempt, reason: 'internal error' }, 'upload processing crashed');
    await queue.fail(job.uploadId, job.owner, 'Internal error while processing; reprocess it to try again.').catch(() => undefined);
    return;
  }
  const fields = { uploadId: job.uploadId, kind: transient.kind, code: transient.code, owner: job.owner };
  try {
    if (transient.kind === 'storage-full') {
      // Not the upload's fault and not a moment's: it waits for space without spending its attempts, tried again
      // at the longest backoff (an operator frees space; the stored file and the acknowledgement stay).
      const delayMs = retryDelayMs(MAX_ATTEMPTS, policy);
      if (await queue.retryLater(job.uploadId, job.owner, waitingForSpaceReason(transient), delayMs, true)) {
        logger.error(
          { event: 'job.retry', ...fields, attempt: job.attempt, delayMs, inPlace: false, refunded: true },
          "the database's storage is full; job queued again until space is freed",
        );
        return;
      }
      logger.warn({ event: 'job.lease_lost', ...fields, attempt: job.attempt }, 'job lease lost; result discarded');
      return;
    }
    const attempts = await queue.attemptsOf(job.uploadId);
    if (attempts < MAX_ATTEMPTS) {
      const delayMs = retryDelayMs(attempts, policy);
      if (await queue.retryLater(job.uploadId, job.owner, retryingReason(transient), delayMs)) {
        logger.warn({ event: 'job.retry', ...fields, attempt: attempts, delayMs, inPlace: false }, 'transient database error; job queued again');
        return;
      }
    } else if (await queue.fail(job.uploadId, job.owner, gaveUpReason(attempts, transient))) {
      logger.error(
        { event: 'upload.failed', ...fields, attempt: attempts, reason: gaveUpReason(attempts, transient) },
        'upload failed: attempts spent on transient errors',
      );
      return;
    }
    logger.warn({ event: 'job.lease_lost', ...fields, attempt: job.attempt }, 'job lease lost; result discarded');
  } catch (again) {
    // The database is still away: the lease runs out and the job is claimed again then (an attempt more).
    logger.warn(
      { event: 'job.retry', ...fields, attempt: job.attempt, err: again, delayMs: null, inPlace: false },
      'transient database error; job left to its lease',
    );
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
