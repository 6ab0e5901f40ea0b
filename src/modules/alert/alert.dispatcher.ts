import { DataSource } from 'typeorm';
import { dialectOf } from '../../db/bulk';
import { toGlobalId } from '../../common/ids/global-id';
import { Logger } from '../../app/logger';
import { AlertMessage } from './alert-message';
import { AlertDestination } from './alert-destination.entity';
import { AlertAttempt, AlertDelivery } from './alert-delivery.entity';
import { AlertDeliveryStatus } from './alert.enums';
import { AlertSettings, AlertService } from './alert.service';
import { send, SendError } from './destinations/senders';

export interface DispatcherOptions {
  pollMs: number;
  leaseMs: number;
  /** First retry delay; each failure doubles it (capped at an hour), with jitter. */
  retryBaseMs: number;
  /** How long a delivery is retried before it is FAILED. */
  retryForMs: number;
  batch: number;
}

/** The next retry delay after `attempts` failures: exponential, capped at an hour, with jitter (half to all of it). */
export function retryDelay(attempts: number, baseMs: number, random: () => number = Math.random): number {
  const full = Math.min(3_600_000, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

/**
 * Delivers the alert outbox at least once: claims due PENDING deliveries with a lease (MySQL: FOR UPDATE SKIP
 * LOCKED, so processes never take the same one), sends, and records the attempt. A process that dies mid-send
 * leaves the lease to expire and another (or the restarted one) sends again: receivers drop repeats by the
 * idempotency key.
 */
export class AlertDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(
    private readonly dataSource: DataSource,
    private readonly alerts: AlertService,
    private readonly settings: AlertSettings,
    private readonly options: DispatcherOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Runs a round now (when started and not already in one): new alerts were just written here. */
  notify(): void {
    if (this.stopped || !this.timer) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runOnce()
        .then((n) => this.schedule(n > 0 ? 0 : this.options.pollMs))
        .catch((err) => {
          this.logger.warn({ err, event: 'alert.dispatch_error' }, 'alert delivery round failed');
          this.schedule(this.options.pollMs);
        });
    }, ms);
  }

  /** One round: claims and sends the due deliveries; returns how many it handled. */
  async runOnce(now = Date.now()): Promise<number> {
    const claimed = await this.claim(now);
    await Promise.all(claimed.map((id) => this.deliver(id)));
    return claimed.length;
  }

  private async claim(now: number): Promise<number[]> {
    return this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE SKIP LOCKED' : '';
      const rows = (await em.query(
        `SELECT id FROM alert_delivery WHERE status = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id LIMIT ${this.options.batch}${lock}`,
        [AlertDeliveryStatus.PENDING, now, now],
      )) as Array<{ id: number | string }>;
      const ids = rows.map((r) => Number(r.id));
      if (ids.length)
        await em.query(`UPDATE alert_delivery SET lease_until = ? WHERE id IN (${ids.map(() => '?').join(',')})`, [now + this.options.leaseMs, ...ids]);
      return ids;
    });
  }

  private async deliver(deliveryId: number): Promise<void> {
    const delivery = await this.dataSource.getRepository(AlertDelivery).findOneByOrFail({ id: deliveryId });
    const destination = await this.dataSource.getRepository(AlertDestination).findOneBy({ id: delivery.destinationId });
    const started = Date.now();
    let error: string | null = null;
    let retryable = true;
    const message = destination && (await this.message(delivery));
    if (!destination || !message) {
      error = destination ? 'the alert no longer exists' : 'the destination was deleted';
      retryable = false;
    } else {
      try {
        await send(destination.settings, destination.secret, message, { guard: this.settings.guard, timeoutMs: this.settings.timeoutMs });
      } catch (err) {
        error = err instanceof SendError ? err.message : 'send failed';
        retryable = err instanceof SendError ? err.retryable : true;
      }
    }
    const finished = Date.now();
    const attempts = delivery.attempts + 1;
    const giveUp = error !== null && (!retryable || finished - delivery.createdAt.getTime() >= this.options.retryForMs);
    const status = error === null ? AlertDeliveryStatus.DELIVERED : giveUp ? AlertDeliveryStatus.FAILED : AlertDeliveryStatus.PENDING;
    await this.dataSource.transaction(async (em) => {
      await em.getRepository(AlertAttempt).insert({ deliveryId, attemptedAt: new Date(started), ok: error === null, error, durationMs: finished - started });
      await em.getRepository(AlertDelivery).update(
        { id: deliveryId },
        {
          status,
          attempts,
          lastError: error,
          leaseUntil: null,
          deliveredAt: error === null ? new Date(finished) : null,
          nextAttemptAt: new Date(status === AlertDeliveryStatus.PENDING ? finished + retryDelay(attempts, this.options.retryBaseMs) : finished),
        },
      );
    });
    if (destination) await this.alerts.recordOutcome(destination.id, error, new Date(finished));
    if (error !== null)
      this.logger.warn({ event: 'alert.delivery_failed', deliveryId, destinationId: delivery.destinationId, attempts, status, error }, 'alert delivery failed');
  }

  /** The alert as its destinations see it; null when it is gone. */
  private async message(d: AlertDelivery): Promise<AlertMessage | null> {
    const [row] = (await this.dataSource.query(
      `SELECT a.*, r.name AS rule_name, i.cidr AS ioc_cidr, l.name AS list_name, dv.nickname AS device_nickname
         FROM alert a
         JOIN alert_rule r ON r.id = a.rule_id
         LEFT JOIN ioc i ON i.id = a.ioc_id
         LEFT JOIN ioc_list l ON l.id = a.ioc_list_id
         LEFT JOIN device dv ON dv.id = a.device_id
        WHERE a.id = ?`,
      [d.alertId],
    )) as Array<Record<string, string | number | null>>;
    if (!row) return null;
    const id = toGlobalId('Alert', d.alertId);
    const iso = (v: unknown) => new Date(Number(v)).toISOString();
    return {
      id,
      idempotencyKey: `pcd-alert-${d.alertId}`,
      test: false,
      rule: { id: toGlobalId('AlertRule', Number(row.rule_id)), name: String(row.rule_name) },
      severity: Number(row.severity),
      category: String(row.category),
      direction: String(row.direction),
      foundBy: String(row.found_by),
      ioc: { id: toGlobalId('Ioc', Number(row.ioc_id)), cidr: String(row.ioc_cidr ?? '') },
      iocList: { id: toGlobalId('IocList', Number(row.ioc_list_id)), name: String(row.list_name ?? '') },
      device: { id: toGlobalId('Device', Number(row.device_id)), nickname: String(row.device_nickname ?? '') },
      internalIp: String(row.internal_ip),
      externalIp: String(row.external_ip),
      hitCount: Number(row.hit_count),
      firstSeenAt: iso(row.first_seen_at),
      lastSeenAt: iso(row.last_seen_at),
      upload: row.upload_id == null ? null : { id: toGlobalId('LogUpload', Number(row.upload_id)) },
    };
  }
}
