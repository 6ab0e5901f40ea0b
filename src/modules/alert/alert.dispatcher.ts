import { DataSource, In } from 'typeorm';
import { dialectOf, execute } from '../../db/bulk';
import { beginImmediate } from '../../db/sqlite-serializer';
import { toGlobalId } from '../../common/ids/global-id';
import { Logger } from '../../app/logger';
import { DigestMessage, Outgoing, renderAlert, renderDigest } from './alert-message';
import { AlertDestination } from './alert-destination.entity';
import { AlertAttempt, AlertDelivery } from './alert-delivery.entity';
import { AlertDeliveryStatus, AlertDigestMode } from './alert.enums';
import { AlertRule } from './alert-rule.entity';
import { lastDigestDue } from './digest-schedule';
import { writeDigest } from './digest-writer';
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
  /** Most sends in flight at once in this process (ALERT_CONCURRENCY). */
  concurrency: number;
  /** Most of them to one destination (ALERT_DESTINATION_CONCURRENCY), so that a slow one leaves slots to the others. */
  destinationConcurrency: number;
}

/** The next retry delay after `attempts` failures: exponential, capped at an hour, with jitter (half to all of it). */
export function retryDelay(attempts: number, baseMs: number, random: () => number = Math.random): number {
  const full = Math.min(3_600_000, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

/** What a message calls its rule: its name, or "(deleted rule)" once it is deleted (its id stays in the message). */
const DELETED_RULE_NAME = '(deleted rule)';
const ruleName = (name: string | number | null | undefined) => (name == null ? DELETED_RULE_NAME : String(name));

/** A delivery this process holds: its lease (the value written, which the outcome is recorded against). */
interface Claimed {
  id: number;
  destinationId: number;
  leaseUntil: number;
}

/**
 * Delivers the alert outbox at least once: claims due PENDING deliveries with a lease (MySQL: FOR UPDATE SKIP
 * LOCKED, so processes never take the same one), sends, and records the attempt. A process that dies mid-send
 * leaves the lease to expire and another (or the restarted one) sends again: receivers drop repeats by the
 * idempotency key.
 *
 * Sends run side by side: a round claims what is due into the free slots (`concurrency`, at most
 * `destinationConcurrency` to one destination) and does not wait for them, so a slow destination holds its own
 * slots and no one else's; a finished send frees its slot for the next round. Every send ends before its lease
 * does (ALERT_TIMEOUT_MS is at most half of ALERT_LEASE_MS, and a send is cut short where the lease would not
 * cover it), so no other process takes a delivery while it is being sent.
 */
export class AlertDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private prunedAt = -Infinity;
  /** notify() during a round: another round at once after it. */
  private woken = false;
  /** The last round left due deliveries unclaimed for want of slots: a finished send starts a round. */
  private backlog = false;
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly perDestination = new Map<number, number>();

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

  /** Stops claiming, and waits for the round and the sends in flight (each ends within ALERT_TIMEOUT_MS). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await Promise.all(this.inFlight.values());
  }

  /** Runs a round now (when started): new alerts were just written here, or a send freed a slot. */
  notify(): void {
    if (this.stopped) return;
    if (this.running) this.woken = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.woken = false;
      let again = false;
      this.running = this.round(Date.now())
        .then((r) => {
          again = r.more;
        })
        .catch((err) => {
          this.logger.warn({ err, event: 'alert.dispatch_error' }, 'alert delivery round failed');
        })
        .finally(() => {
          this.running = null;
          this.schedule(again || this.woken ? 0 : this.options.pollMs);
        });
    }, ms);
  }

  /**
   * Sends every delivery due at `now`, once each, waiting for the sends (rounds of the free slots, one after the
   * other); returns how many it sent. For tests and tools: the running worker never waits for its sends.
   */
  async runOnce(now = Date.now()): Promise<number> {
    const sent: number[] = [];
    for (;;) {
      const { sends, ids } = await this.round(now, sent);
      if (sends.length === 0) return sent.length;
      sent.push(...ids);
      await Promise.all(sends);
    }
  }

  /**
   * Writes due digests, claims due deliveries into the free slots and starts their sends. `more`: it filled what
   * it asked for and slots are left, so more may be due now.
   */
  private async round(now: number, skip: number[] = []): Promise<{ sends: Array<Promise<void>>; ids: number[]; more: boolean }> {
    await this.writeDigests(now);
    await this.pruneThrottle(now);
    const free = this.options.concurrency - this.inFlight.size;
    if (free <= 0) {
      this.backlog = true;
      return { sends: [], ids: [], more: false };
    }
    const { claimed, full, leftDue } = await this.claim(now, free, skip);
    const sends = claimed.map((c) => this.track(c));
    this.backlog = full || leftDue;
    return { sends, ids: claimed.map((c) => c.id), more: full && claimed.length > 0 && this.inFlight.size < this.options.concurrency };
  }

  /** Sends `c` in a slot of its own; a send's failure is recorded as its attempt, never thrown. */
  private track(c: Claimed): Promise<void> {
    this.perDestination.set(c.destinationId, (this.perDestination.get(c.destinationId) ?? 0) + 1);
    const send = this.deliver(c)
      .catch((err) => this.logger.warn({ err, event: 'alert.dispatch_error', deliveryId: c.id }, 'alert delivery failed to record'))
      .finally(() => {
        this.inFlight.delete(c.id);
        const left = (this.perDestination.get(c.destinationId) ?? 1) - 1;
        if (left > 0) this.perDestination.set(c.destinationId, left);
        else this.perDestination.delete(c.destinationId);
        if (this.backlog) this.notify();
      });
    this.inFlight.set(c.id, send);
    return send;
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

  /**
   * Leases up to `limit` due deliveries, at most destinationConcurrency in flight to a destination (those already
   * at it are not asked for). `full`: the query returned `limit` rows, so more may be due; `leftDue`: some may be
   * due to a destination at its limit, left for when one of its sends ends. `skip`: deliveries not to take.
   */
  private async claim(now: number, limit: number, skip: number[]): Promise<{ claimed: Claimed[]; full: boolean; leftDue: boolean }> {
    const cap = this.options.destinationConcurrency;
    const busy = [...this.perDestination].filter(([, n]) => n >= cap).map(([d]) => d);
    const leaseUntil = now + this.options.leaseMs;
    return this.dataSource.transaction(async (em) => {
      const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE SKIP LOCKED' : '';
      const notIn = (column: string, values: number[]) => (values.length ? ` AND ${column} NOT IN (${values.map(() => '?').join(',')})` : '');
      const rows = (await em.query(
        `SELECT id, destination_id FROM alert_delivery WHERE status = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)${notIn('destination_id', busy)}${notIn('id', skip)} ORDER BY next_attempt_at, id LIMIT ${limit}${lock}`,
        [AlertDeliveryStatus.PENDING, now, now, ...busy, ...skip],
      )) as Array<{ id: number | string; destination_id: number | string }>;
      const taken = new Map<number, number>();
      const claimed: Claimed[] = [];
      for (const r of rows) {
        const id = Number(r.id);
        const destinationId = Number(r.destination_id);
        const n = (this.perDestination.get(destinationId) ?? 0) + (taken.get(destinationId) ?? 0);
        // In flight here already: only a `now` past its lease (a test's runOnce(later)) reaches it.
        if (n >= cap || this.inFlight.has(id)) continue;
        taken.set(destinationId, (taken.get(destinationId) ?? 0) + 1);
        claimed.push({ id, destinationId, leaseUntil });
      }
      if (claimed.length)
        await em.query(`UPDATE alert_delivery SET lease_until = ? WHERE id IN (${claimed.map(() => '?').join(',')})`, [
          leaseUntil,
          ...claimed.map((c) => c.id),
        ]);
      return { claimed, full: rows.length === limit, leftDue: busy.length > 0 || claimed.length < rows.length };
    });
  }

  private async deliver(c: Claimed): Promise<void> {
    const deliveryId = c.id;
    const delivery = await this.dataSource.getRepository(AlertDelivery).findOneByOrFail({ id: deliveryId });
    const destination = await this.dataSource.getRepository(AlertDestination).findOneBy({ id: delivery.destinationId });
    const message = destination && (delivery.digestId !== null ? await this.digestMessage(delivery.digestId) : await this.message(delivery.alertId!));
    // The send must end before the lease does, with a quarter of the lease left to record the outcome.
    const leaseLeftMs = c.leaseUntil - Math.floor(this.options.leaseMs / 4) - Date.now();
    if (destination && message && leaseLeftMs <= 0) {
      // The reads above took most of the lease (a stalled database): hand it back untried rather than send late.
      await execute(this.dataSource.manager, `UPDATE alert_delivery SET lease_until = NULL WHERE id = ? AND lease_until = ?`, [deliveryId, c.leaseUntil]);
      this.logger.warn({ event: 'alert.lease_short', deliveryId }, 'alert delivery handed back: too little of its lease was left to send it');
      return;
    }
    const started = Date.now();
    let error: string | null = null;
    let retryable = true;
    if (!destination || !message) {
      error = destination ? 'the alert no longer exists' : 'the destination was deleted';
      retryable = false;
    } else {
      try {
        await send(destination.settings, destination.secret, message, {
          guard: this.settings.guard,
          timeoutMs: Math.min(this.settings.timeoutMs, leaseLeftMs),
        });
      } catch (err) {
        error = err instanceof SendError ? err.message : 'send failed';
        retryable = err instanceof SendError ? err.retryable : true;
      }
    }
    const finished = Date.now();
    const attempts = delivery.attempts + 1;
    const giveUp = error !== null && (!retryable || finished - delivery.createdAt.getTime() >= this.options.retryForMs);
    const status = error === null ? AlertDeliveryStatus.DELIVERED : giveUp ? AlertDeliveryStatus.FAILED : AlertDeliveryStatus.PENDING;
    const recorded = await this.dataSource.transaction(async (em) => {
      // Only while the lease is still ours: past it another process may have taken the delivery, and its outcome stands.
      const held = await execute(
        em,
        `UPDATE alert_delivery SET status = ?, attempts = ?, last_error = ?, lease_until = NULL, delivered_at = ?, next_attempt_at = ? WHERE id = ? AND lease_until = ?`,
        [
          status,
          attempts,
          error,
          error === null ? finished : null,
          status === AlertDeliveryStatus.PENDING ? finished + retryDelay(attempts, this.options.retryBaseMs) : finished,
          deliveryId,
          c.leaseUntil,
        ],
      );
      if (held === 0) return false;
      await em.getRepository(AlertAttempt).insert({ deliveryId, attemptedAt: new Date(started), ok: error === null, error, durationMs: finished - started });
      return true;
    });
    if (destination) await this.alerts.recordOutcome(destination.id, error, new Date(finished));
    if (!recorded)
      this.logger.warn({ event: 'alert.lease_lost', deliveryId, error }, 'alert delivery outcome not recorded: its lease had passed to another worker');
    else if (error !== null)
      this.logger.warn({ event: 'alert.delivery_failed', deliveryId, destinationId: delivery.destinationId, attempts, status, error }, 'alert delivery failed');
  }

  /**
   * Writes the digests that came due: for each digest rule whose scheduled local time has passed since its last
   * digest, one digest of the alerts it raised in between (digest-writer.ts), in a transaction of its own. The rules
   * are read first: writeDigest checks, under the rule's lock, that the rule is still there and its digest still
   * starts where it was read (a rule deleted meanwhile wrote its last digest itself). SQLite: begun IMMEDIATE, so
   * that check reads under the write lock another process would need.
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
      if (await beginImmediate(() => this.dataSource.transaction((em) => writeDigest(em, rule, start, due, now)))) written++;
    }
    return written;
  }

  private async digestMessage(digestId: number): Promise<Outgoing | null> {
    const [d] = (await this.dataSource.query(`SELECT g.*, r.name AS rule_name FROM alert_digest g LEFT JOIN alert_rule r ON r.id = g.rule_id WHERE g.id = ?`, [
      digestId,
    ])) as Array<Record<string, string | number | null>>;
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
      rule: { id: toGlobalId('AlertRule', Number(d.rule_id)), name: ruleName(d.rule_name) },
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

  /**
   * The alert as its destinations see it; null when it is gone. Deleting a rule keeps its alerts and their
   * deliveries (no foreign key cascades to them): an alert already raised is delivered all the same.
   */
  private async message(alertId: number): Promise<Outgoing | null> {
    const [row] = (await this.dataSource.query(
      `SELECT a.*, r.name AS rule_name, COALESCE(i.cidr, dm.name) AS ioc_cidr, l.name AS list_name, dv.nickname AS device_nickname
         FROM alert a
         LEFT JOIN alert_rule r ON r.id = a.rule_id
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
      rule: { id: toGlobalId('AlertRule', Number(row.rule_id)), name: ruleName(row.rule_name) },
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
