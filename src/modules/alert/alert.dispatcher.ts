import { DataSource, In } from 'typeorm';
import { dialectOf, execute } from '../../db/bulk';
import { toGlobalId } from '../../common/ids/global-id';
import { Logger } from '../../app/logger';
import { DigestMessage, Outgoing, renderAlert, renderDigest } from './alert-message';
import { AlertDestination } from './alert-destination.entity';
import { AlertAttempt, AlertDelivery } from './alert-delivery.entity';
import { AlertDeliveryStatus, AlertDigestMode } from './alert.enums';
import { AlertRule } from './alert-rule.entity';
import { lastDigestDue } from './digest-schedule';
import { bulkInsert } from '../../db/bulk';
import { AlertSettings, AlertService } from './alert.service';
import { send, SendError } from './destinations/senders';
import { MAX_THROTTLE_MS } from './alert-outbox';

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
  private prunedAt = -Infinity;

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
    await this.writeDigests(now);
    await this.pruneThrottle(now);
    const claimed = await this.claim(now);
    await Promise.all(claimed.map((id) => this.deliver(id)));
    return claimed.length;
  }

  /**
   * At most hourly: forgets the throttle windows every rule's longest window (a week) has passed (alert-outbox.ts);
   * the key's next hit starts a new window whether its row is there or not.
   */
  async pruneThrottle(now: number): Promise<number> {
    if (now - this.prunedAt < 3_600_000) return 0;
    this.prunedAt = now;
    return execute(this.dataSource.manager, `DELETE FROM alert_throttle WHERE window_start <= ?`, [now - MAX_THROTTLE_MS]);
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
    const message = destination && (delivery.digestId !== null ? await this.digestMessage(delivery.digestId) : await this.message(delivery.alertId!));
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

  /**
   * Writes the digests that came due: for each digest rule whose scheduled local time has passed since its last
   * digest, one alert_digest of the alerts it raised in between, and a PENDING delivery per destination, in one
   * transaction. Processes racing for the same one meet at its unique (rule, period end): one writes it.
   */
  async writeDigests(now: number): Promise<number> {
    const rules = await this.dataSource
      .getRepository(AlertRule)
      .find({ where: { enabled: true, digest: In([AlertDigestMode.DAILY, AlertDigestMode.WEEKLY]) } });
    let written = 0;
    for (const rule of rules) {
      if (rule.digest === AlertDigestMode.IMMEDIATE || !rule.digestTime || !rule.digestTimeZone) continue;
      const due = lastDigestDue(
        { weekly: rule.digest === AlertDigestMode.WEEKLY, time: rule.digestTime, timeZone: rule.digestTimeZone, weekday: rule.digestWeekday },
        now,
      );
      const start = rule.digestUntil ?? rule.createdAt.getTime();
      if (due <= start) continue;
      await this.dataSource.transaction(async (em) => {
        const [sum] = (await em.query(
          `SELECT COUNT(*) AS n, COALESCE(SUM(hit_count), 0) AS h FROM alert WHERE rule_id = ? AND created_at >= ? AND created_at < ?`,
          [rule.id, start, due],
        )) as Array<{ n: string | number; h: string | number }>;
        const inserted = await bulkInsert(
          em,
          'alert_digest',
          ['account_id', 'rule_id', 'period_start', 'period_end', 'alert_count', 'hit_count', 'created_at'],
          [[rule.accountId, rule.id, start, due, Number(sum.n), Number(sum.h), now]],
          { ignoreDuplicates: true },
        );
        await em.query(`UPDATE alert_rule SET digest_until = ? WHERE id = ?`, [due, rule.id]);
        if (inserted === 0) return;
        const [row] = (await em.query(`SELECT id FROM alert_digest WHERE rule_id = ? AND period_end = ?`, [rule.id, due])) as Array<{ id: number | string }>;
        await bulkInsert(
          em,
          'alert_delivery',
          ['account_id', 'digest_id', 'destination_id', 'status', 'attempts', 'next_attempt_at', 'created_at'],
          rule.destinationIds.map((d) => [rule.accountId, Number(row.id), d, AlertDeliveryStatus.PENDING, 0, now, now]),
          { ignoreDuplicates: true },
        );
        written++;
      });
    }
    return written;
  }

  private async digestMessage(digestId: number): Promise<Outgoing | null> {
    const [d] = (await this.dataSource.query(`SELECT g.*, r.name AS rule_name FROM alert_digest g JOIN alert_rule r ON r.id = g.rule_id WHERE g.id = ?`, [
      digestId,
    ])) as Array<Record<string, string | number>>;
    if (!d) return null;
    const top = (await this.dataSource.query(
      `SELECT a.internal_ip, a.external_ip, a.severity, a.hit_count, COALESCE(i.cidr, dm.name) AS cidr, l.name FROM alert a
         LEFT JOIN ioc i ON i.id = a.ioc_id AND a.hit_kind = 'IP' LEFT JOIN ioc_domain dm ON dm.id = a.ioc_id AND a.hit_kind = 'DNS' LEFT JOIN ioc_list l ON l.id = a.ioc_list_id
        WHERE a.rule_id = ? AND a.created_at >= ? AND a.created_at < ? ORDER BY a.hit_count DESC, a.id LIMIT 20`,
      [d.rule_id, d.period_start, d.period_end],
    )) as Array<Record<string, string | number | null>>;
    const [max] = (await this.dataSource.query(`SELECT MAX(severity) AS s FROM alert WHERE rule_id = ? AND created_at >= ? AND created_at < ?`, [
      d.rule_id,
      d.period_start,
      d.period_end,
    ])) as Array<{ s: string | number | null }>;
    const message: DigestMessage = {
      kind: 'digest',
      id: `digest-${digestId}`,
      idempotencyKey: `pcd-digest-${digestId}`,
      rule: { id: toGlobalId('AlertRule', Number(d.rule_id)), name: String(d.rule_name) },
      periodStart: new Date(Number(d.period_start)).toISOString(),
      periodEnd: new Date(Number(d.period_end)).toISOString(),
      alertCount: Number(d.alert_count),
      hitCount: Number(d.hit_count),
      maxSeverity: Number(max.s ?? 0),
      top: top.map((t) => ({
        internalIp: String(t.internal_ip),
        externalIp: String(t.external_ip),
        ioc: String(t.cidr ?? ''),
        iocList: String(t.name ?? ''),
        severity: Number(t.severity),
        hitCount: Number(t.hit_count),
      })),
    };
    return renderDigest(message);
  }

  /** The alert as its destinations see it; null when it is gone. */
  private async message(alertId: number): Promise<Outgoing | null> {
    const [row] = (await this.dataSource.query(
      `SELECT a.*, r.name AS rule_name, COALESCE(i.cidr, dm.name) AS ioc_cidr, l.name AS list_name, dv.nickname AS device_nickname
         FROM alert a
         JOIN alert_rule r ON r.id = a.rule_id
         LEFT JOIN ioc i ON i.id = a.ioc_id AND a.hit_kind = 'IP'
         LEFT JOIN ioc_domain dm ON dm.id = a.ioc_id AND a.hit_kind = 'DNS'
         LEFT JOIN ioc_list l ON l.id = a.ioc_list_id
         LEFT JOIN device dv ON dv.id = a.device_id
        WHERE a.id = ?`,
      [alertId],
    )) as Array<Record<string, string | number | null>>;
    if (!row) return null;
    const id = toGlobalId('Alert', alertId);
    const iso = (v: unknown) => new Date(Number(v)).toISOString();
    return renderAlert({
      id,
      idempotencyKey: `pcd-alert-${alertId}`,
      test: false,
      rule: { id: toGlobalId('AlertRule', Number(row.rule_id)), name: String(row.rule_name) },
      severity: Number(row.severity),
      category: String(row.category),
      direction: String(row.direction),
      foundBy: String(row.found_by),
      hitKind: String(row.hit_kind),
      ioc: { id: toGlobalId(row.hit_kind === 'DNS' ? 'IocDomain' : 'Ioc', Number(row.ioc_id)), cidr: String(row.ioc_cidr ?? '') },
      iocList: { id: toGlobalId('IocList', Number(row.ioc_list_id)), name: String(row.list_name ?? '') },
      device: { id: toGlobalId('Device', Number(row.device_id)), nickname: String(row.device_nickname ?? '') },
      internalIp: String(row.internal_ip),
      externalIp: String(row.external_ip),
      qname: row.qname == null ? null : String(row.qname),
      hitCount: Number(row.hit_count),
      firstSeenAt: iso(row.first_seen_at),
      lastSeenAt: iso(row.last_seen_at),
      upload: row.upload_id == null ? null : { id: toGlobalId('LogUpload', Number(row.upload_id)) },
    });
  }
}
