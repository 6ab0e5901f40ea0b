import crypto from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import { LogUploadProcessor, ProcessOutcome } from './log-upload.processor';
import { LogUploadQueue } from './log-upload.queue';
import { LogUploadStatus } from './log-upload.enums';
import { DEFAULT_RETRY, handleJobError, retryDelayMs } from './log-upload.retry';

export interface WorkerOptions {
  /** How long a claim lasts without renewal; a dead process's jobs are taken again after it. */
  leaseMs: number;
  /** How often an idle worker looks for jobs queued by other processes. */
  pollMs: number;
  /** First backoff after a transient database error (doubled each retry); DEFAULT_RETRY's when not given. */
  retryBaseMs?: number;
  /**
   * The analytics tier (ANALYTICS_URL), asked before claiming again after a job failed on it: while it does not
   * answer, the worker claims nothing (every job would fail the same way) and asks again with backoff.
   */
  analytics?: { up(): Promise<boolean> } | null;
}

/**
 * The in-process worker: claims one job at a time, processes it, and looks again. New uploads in this
 * process wake it at once (`notify`); jobs queued elsewhere are found by polling.
 */
export class LogUploadWorker {
  readonly owner = `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private current: number | null = null;
  private abort: AbortController | null = null;
  private pendingWake = false;
  /** Failures of the analytics tier in a row (jobs' and unanswered checks'): the backoff's step; 0 once a job gets through. */
  private analyticsOutages = 0;
  /** A job failed on the analytics tier: ask it before claiming again. */
  private analyticsSuspect = false;
  private stopWake: (() => void) | null = null;

  constructor(
    private readonly queue: LogUploadQueue,
    private readonly processor: LogUploadProcessor,
    private readonly options: WorkerOptions,
    private readonly logger: Logger,
    private readonly onOutcome: (uploadId: number, outcome: ProcessOutcome) => void = () => undefined,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something was queued: look now instead of at the next poll. */
  notify(): void {
    this.pendingWake = true;
    this.wake?.();
  }

  /** The upload being processed right now, if any. */
  get busyWith(): number | null {
    return this.current;
  }

  /**
   * Stops taking jobs. With `handBack`, a job in progress is released at once for another process (its
   * partial work is discarded; the re-run replaces it); otherwise it is allowed to finish.
   */
  async stop(handBack: boolean): Promise<void> {
    this.running = false;
    this.wake?.();
    this.stopWake?.();
    if (handBack && this.current != null) {
      const id = this.current;
      this.abort?.abort();
      if (await this.queue.release(id, this.owner))
        this.logger.info({ event: 'job.handed_back', uploadId: id, owner: this.owner }, 'job handed back on shutdown');
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.analyticsSuspect && !(await this.analyticsBack())) continue;
      let job = null;
      this.pendingWake = false;
      try {
        job = await this.queue.claim(this.owner, this.options.leaseMs);
      } catch (err) {
        this.logger.error({ event: 'job.claim_failed', err }, 'job claim failed');
      }
      if (!job) {
        await this.idle();
        continue;
      }
      this.current = job.uploadId;
      this.abort = new AbortController();
      const retry = job.attempt > 1;
      if (job.recovered) {
        // The previous worker died or stalled: its lease ran out and this one takes the job over.
        this.logger.warn({ event: 'job.lease_expired', uploadId: job.uploadId, attempt: job.attempt, owner: this.owner }, 'job lease expired; retrying');
      }
      this.logger.info(
        { event: 'job.claimed', uploadId: job.uploadId, attempt: job.attempt, retry, recovered: job.recovered, owner: this.owner },
        retry ? 'job claimed (retry)' : 'job claimed',
      );
      try {
        const outcome = await this.processor.process(job.uploadId, this.owner, this.abort.signal);
        this.analyticsOutages = 0;
        this.onOutcome(job.uploadId, outcome);
        this.logOutcome(job.uploadId, job.attempt, outcome);
      } catch (err) {
        // A transient database error goes back to the queue (until the attempts are spent); a bug fails the job.
        const handled = await handleJobError(
          err,
          { uploadId: job.uploadId, attempt: job.attempt, owner: this.owner },
          this.queue,
          this.retryPolicy,
          this.logger,
          this.analyticsOutages + 1,
        );
        if (handled.analyticsDown) {
          this.analyticsOutages++;
          this.analyticsSuspect = true;
          await this.pause(handled.delayMs);
        }
      } finally {
        this.current = null;
        this.abort = null;
      }
    }
  }

  private get retryPolicy() {
    return { baseMs: this.options.retryBaseMs ?? DEFAULT_RETRY.baseMs };
  }

  /**
   * After a job failed on the analytics tier: whether it answers now. If not, waits the next backoff (cut short
   * by stop()) and says no, so the loop asks again before it claims anything.
   */
  private async analyticsBack(): Promise<boolean> {
    const probe = this.options.analytics;
    if (!probe || (await probe.up().catch(() => false))) {
      this.logger.info({ event: 'analytics.back', failures: this.analyticsOutages }, 'analytics tier answers again; claiming jobs');
      // The count stays until a job gets through: a tier that answers but refuses inserts still backs off further.
      this.analyticsSuspect = false;
      return true;
    }
    this.analyticsOutages++;
    const delayMs = retryDelayMs(this.analyticsOutages, this.retryPolicy);
    this.logger.warn({ event: 'analytics.waiting', failures: this.analyticsOutages, delayMs }, 'analytics tier still unavailable; no job claimed');
    await this.pause(delayMs);
    return false;
  }

  /** Sleeps `ms`; only stop() cuts it short (a new upload does not: it would fail on the same outage). */
  private pause(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopWake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWake = done;
    });
  }

  /** One line per finished job: upload.completed, upload.failed (with the reason) or job.lease_lost. */
  private logOutcome(uploadId: number, attempt: number, outcome: ProcessOutcome): void {
    const fields = {
      uploadId,
      device: outcome.deviceId ?? null,
      attempt,
      bytes: outcome.textBytes,
      lines: outcome.lines,
      packets: outcome.packets,
      connections: outcome.connections,
      hits: outcome.hits,
      dnsHits: outcome.dnsHits ?? 0,
      durationMs: Math.round(outcome.durationMs),
      ...(outcome.phases && { phasesMs: Object.fromEntries(Object.entries(outcome.phases).map(([k, v]) => [k, Math.round(v)])) }),
      ...(outcome.parseThread && { parseThreadMs: { cpu: Math.round(outcome.parseThread.cpuMs), queued: Math.round(outcome.parseThread.queuedMs) } }),
    };
    if (outcome.status === 'LEASE_LOST') this.logger.warn({ event: 'job.lease_lost', ...fields }, 'job lease lost; result discarded');
    else if (outcome.status === LogUploadStatus.FAILED) this.logger.info({ event: 'upload.failed', ...fields, reason: outcome.error }, 'upload failed');
    else this.logger.info({ event: 'upload.completed', ...fields }, 'upload completed');
  }

  private idle(): Promise<void> {
    if (this.pendingWake) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.pollMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
