import crypto from 'node:crypto';
import { DataSource, In } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode, UserErrorData } from '../../common/errors/user-error';
import { execute } from '../../db/bulk';
import { beginImmediate } from '../../db/sqlite-serializer';
import { ConnectionData } from '../../common/pagination/connection';
import { KeysetPage, keysetPaginate } from '../../common/pagination/keyset';
import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { renderAlert, sampleMessage } from './alert-message';
import { AlertDestination } from './alert-destination.entity';
import { AlertAttempt, AlertDelivery, AlertDigest } from './alert-delivery.entity';
import { AlertRule } from './alert-rule.entity';
import { Alert } from './alert.entity';
import { AlertDeliveryStatus, AlertDestinationKind, AlertDigestMode, HitFoundBy, HitKind, SyslogFormat, SyslogTransport, WebhookFormat } from './alert.enums';
import { AddressGuard, AddressRefused } from './destinations/address-guard';
import { DestinationSettings } from './destinations/destination-settings';
import { send, SendError } from './destinations/senders';
import { validTime, validTimeZone } from './digest-schedule';
import { lockedDigestStart, writeDigest } from './digest-writer';

export interface DestinationFields {
  name: string;
  webhook?: { url: string; format?: WebhookFormat | null; caCertificate?: string | null } | null;
  syslog?: { host: string; port: number; transport: SyslogTransport; format?: SyslogFormat | null; caCertificate?: string | null } | null;
  email?: {
    host: string;
    port: number;
    secure?: boolean | null;
    username?: string | null;
    password?: string | null;
    from: string;
    to: string[];
    caCertificate?: string | null;
  } | null;
}

export interface RuleFields {
  name: string;
  enabled?: boolean | null;
  minSeverity?: number | null;
  directions?: Direction[] | null;
  deviceIds?: Array<number | null> | null;
  iocListIds?: Array<number | null> | null;
  categories?: IocCategory[] | null;
  foundBy?: HitFoundBy[] | null;
  hitKinds?: HitKind[] | null;
  throttleMinutes?: number | null;
  destinationIds: Array<number | null>;
  digest?: AlertDigestMode | null;
  digestTime?: string | null;
  digestTimeZone?: string | null;
  digestWeekday?: number | null;
}

export interface DeliveryFilterData {
  status?: AlertDeliveryStatus | null;
  destinationId?: number | null;
}

export interface AlertSettings {
  guard: AddressGuard;
  timeoutMs: number;
  /** Shortest time between two tests of one destination (0: no limit). */
  testIntervalMs?: number;
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

const newWebhookSecret = () => `whsec_${crypto.randomBytes(32).toString('base64url')}`;

/** Alert rules and destinations of an account (ADMIN), the destination test, and the deliveries' history. */
export class AlertService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly settings: AlertSettings,
  ) {}

  /** Creates a destination; a webhook's signing secret is in the result, the only time it is ever shown. */
  async createDestination(accountId: number, input: DestinationFields): Promise<Outcome<{ destination: AlertDestination; secret: string | null }>> {
    const name = input.name.trim();
    if (name.length < 1 || name.length > 64) return failure(userError(UserErrorCode.INVALID, ['input', 'name'], 'A name has 1-64 characters.'));
    const given = (['webhook', 'syslog', 'email'] as const).filter((k) => input[k] != null);
    if (given.length !== 1) return failure(userError(UserErrorCode.INVALID, ['input'], 'Give exactly one of webhook, syslog and email.'));
    const checked = await this.checkSettings(input);
    if (!checked.ok) return checked;
    const { settings, secret } = checked.value;
    const now = new Date();
    const repo = this.dataSource.getRepository(AlertDestination);
    const destination = await repo.save(
      repo.create({
        accountId,
        name,
        kind: settings.kind,
        settings,
        secret,
        failing: false,
        lastError: null,
        lastErrorAt: null,
        createdAt: now,
        updatedAt: now,
      }),
    );
    return success({ destination, secret: settings.kind === AlertDestinationKind.WEBHOOK ? secret : null });
  }

  /**
   * Changes a destination's name or settings (of its own kind, checked as on creation: the address guard runs on a
   * new URL or host), or rotates a webhook's secret (the new one is in the result, the only time it is shown). A
   * webhook keeps its secret, an e-mail destination its password, unless a new one is asked for or given.
   */
  async updateDestination(
    accountId: number,
    id: number | null,
    input: Omit<Partial<DestinationFields>, 'name'> & { name?: string | null; rotateSecret?: boolean | null },
  ): Promise<Outcome<{ destination: AlertDestination; secret: string | null }>> {
    const destination = await this.findDestination(accountId, id);
    if (!destination) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No such alert destination.'));
    const changes: Partial<AlertDestination> = {};
    if (input.name != null) {
      const name = input.name.trim();
      if (name.length < 1 || name.length > 64) return failure(userError(UserErrorCode.INVALID, ['input', 'name'], 'A name has 1-64 characters.'));
      changes.name = name;
    }
    const given = (['webhook', 'syslog', 'email'] as const).filter((k) => input[k] != null);
    if (given.length > 1) return failure(userError(UserErrorCode.INVALID, ['input'], 'Give at most one of webhook, syslog and email.'));
    if (given.length === 1) {
      const field = given[0];
      if (field.toUpperCase() !== destination.kind) {
        return failure(userError(UserErrorCode.INVALID, ['input', field], `This destination is ${destination.kind.toLowerCase()}; its kind does not change.`));
      }
      const checked = await this.checkSettings({ name: destination.name, [field]: input[field] });
      if (!checked.ok) return checked;
      changes.settings = checked.value.settings;
      // A webhook keeps its secret (checkSettings drew a new one); an e-mail destination its password when none is given.
      if (field === 'email' && input.email!.password) changes.secret = checked.value.secret;
    }
    let secret: string | null = null;
    if (input.rotateSecret) {
      if (destination.kind !== AlertDestinationKind.WEBHOOK) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'rotateSecret'], 'Only a webhook has a signing secret.'));
      }
      secret = newWebhookSecret();
      changes.secret = secret;
    }
    changes.updatedAt = new Date();
    await this.dataSource.getRepository(AlertDestination).update({ id: destination.id, accountId }, changes);
    return success({ destination: (await this.findDestination(accountId, destination.id))!, secret });
  }

  private async checkSettings(input: DestinationFields): Promise<Outcome<{ settings: DestinationSettings; secret: string | null }>> {
    const refused = async (field: string[], host: string): Promise<UserErrorData | null> => {
      try {
        await this.settings.guard.address(host);
        return null;
      } catch (err) {
        return userError(UserErrorCode.INVALID, field, err instanceof AddressRefused ? err.message : `${host} does not resolve`);
      }
    };
    // PEM certificates to trust for the destination's TLS: each must parse, so a typo fails here and not at 3 a.m.
    const ca = (field: string[], pem: string | null | undefined): Outcome<string | null> => {
      const text = pem?.trim();
      if (!text) return success(null);
      const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      try {
        if (blocks.length === 0 || blocks.length > 10 || text.length > 65_536) throw new Error('none');
        for (const b of blocks) new crypto.X509Certificate(b);
      } catch {
        return failure(userError(UserErrorCode.INVALID, field, 'Give 1-10 PEM certificates (-----BEGIN CERTIFICATE-----).'));
      }
      return success(blocks.join('\n'));
    };
    const port = (field: string[], p: number) =>
      Number.isInteger(p) && p >= 1 && p <= 65535 ? null : userError(UserErrorCode.INVALID, field, 'A port is 1-65535.');
    if (input.webhook) {
      let url: URL;
      try {
        url = new URL(input.webhook.url);
      } catch {
        return failure(userError(UserErrorCode.INVALID, ['input', 'webhook', 'url'], 'Not a URL.'));
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        return failure(userError(UserErrorCode.INVALID, ['input', 'webhook', 'url'], 'Only http and https URLs.'));
      if (url.username || url.password) return failure(userError(UserErrorCode.INVALID, ['input', 'webhook', 'url'], 'Credentials do not belong in the URL.'));
      const r = await refused(['input', 'webhook', 'url'], url.hostname);
      if (r) return failure(r);
      const trusted = ca(['input', 'webhook', 'caCertificate'], input.webhook.caCertificate);
      if (!trusted.ok) return trusted;
      const secret = newWebhookSecret();
      return success({
        settings: { kind: AlertDestinationKind.WEBHOOK, url: url.toString(), format: input.webhook.format ?? WebhookFormat.JSON, caCertificate: trusted.value },
        secret,
      });
    }
    if (input.syslog) {
      const s = input.syslog;
      const e = port(['input', 'syslog', 'port'], s.port) ?? (await refused(['input', 'syslog', 'host'], s.host.trim()));
      if (e) return failure(e);
      const trusted = ca(['input', 'syslog', 'caCertificate'], s.caCertificate);
      if (!trusted.ok) return trusted;
      return success({
        settings: {
          kind: AlertDestinationKind.SYSLOG,
          host: s.host.trim(),
          port: s.port,
          transport: s.transport,
          format: s.format ?? SyslogFormat.JSON,
          caCertificate: trusted.value,
        },
        secret: null,
      });
    }
    const m = input.email!;
    if (!EMAIL.test(m.from)) return failure(userError(UserErrorCode.INVALID, ['input', 'email', 'from'], 'Not an e-mail address.'));
    if (m.to.length === 0 || m.to.length > 20 || !m.to.every((t) => EMAIL.test(t))) {
      return failure(userError(UserErrorCode.INVALID, ['input', 'email', 'to'], 'Give 1-20 e-mail addresses.'));
    }
    const e = port(['input', 'email', 'port'], m.port) ?? (await refused(['input', 'email', 'host'], m.host.trim()));
    if (e) return failure(e);
    const trusted = ca(['input', 'email', 'caCertificate'], m.caCertificate);
    if (!trusted.ok) return trusted;
    return success({
      settings: {
        kind: AlertDestinationKind.EMAIL,
        caCertificate: trusted.value,
        host: m.host.trim(),
        port: m.port,
        secure: m.secure ?? false,
        username: m.username || null,
        from: m.from,
        to: m.to,
      },
      secret: m.password || null,
    });
  }

  async deleteDestination(accountId: number, id: number | null): Promise<Outcome<AlertDestination>> {
    const destination = await this.findDestination(accountId, id);
    if (!destination) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No such alert destination.'));
    const rules = await this.dataSource.getRepository(AlertRule).findBy({ accountId });
    if (rules.some((r) => r.destinationIds.includes(destination.id))) {
      return failure(userError(UserErrorCode.IN_USE, ['input', 'id'], 'An alert rule still sends to it.'));
    }
    await this.dataSource.getRepository(AlertDestination).delete({ id: destination.id });
    return success(destination);
  }

  async findDestination(accountId: number, id: number | null): Promise<AlertDestination | null> {
    return id == null ? null : this.dataSource.getRepository(AlertDestination).findOneBy({ accountId, id });
  }

  destinations(accountId: number): Promise<AlertDestination[]> {
    return this.dataSource.getRepository(AlertDestination).find({ where: { accountId }, order: { id: 'ASC' } });
  }

  async destinationsByIds(accountId: number, ids: number[]): Promise<AlertDestination[]> {
    if (ids.length === 0) return [];
    return this.dataSource.getRepository(AlertDestination).find({ where: { accountId, id: In(ids) }, order: { id: 'ASC' } });
  }

  /** Sends a sample alert now; the outcome marks the destination failing or healthy, like a delivery. */
  async testDestination(accountId: number, id: number | null): Promise<Outcome<{ destination: AlertDestination; error: string | null }>> {
    const destination = await this.findDestination(accountId, id);
    if (!destination) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No such alert destination.'));
    const now = new Date();
    // One test per destination per interval, across processes: the row's last_tested_at is claimed atomically.
    const interval = this.settings.testIntervalMs ?? 0;
    if (interval > 0) {
      const claimed = await execute(
        this.dataSource.manager,
        `UPDATE alert_destination SET last_tested_at = ? WHERE id = ? AND (last_tested_at IS NULL OR last_tested_at <= ? OR last_tested_at > ?)`,
        [now.getTime(), destination.id, now.getTime() - interval, now.getTime()],
      );
      if (claimed === 0) {
        const last = (await this.findDestination(accountId, destination.id))?.lastTestedAt?.getTime() ?? now.getTime();
        const retryAfterSeconds = Math.max(1, Math.ceil((last + interval - now.getTime()) / 1000));
        return failure(userError(UserErrorCode.RATE_LIMITED, ['input', 'id'], `This destination was tested moments ago; try again in ${retryAfterSeconds} s.`));
      }
    } else {
      await this.dataSource.getRepository(AlertDestination).update({ id: destination.id }, { lastTestedAt: now });
    }
    let error: string | null = null;
    try {
      await send(destination.settings, destination.secret, renderAlert(sampleMessage(String(destination.id), now)), {
        guard: this.settings.guard,
        timeoutMs: this.settings.timeoutMs,
        now,
      });
    } catch (err) {
      error = err instanceof SendError ? err.message : 'send failed';
    }
    await this.recordOutcome(destination.id, error, now);
    return success({ destination: (await this.findDestination(accountId, destination.id))!, error });
  }

  /** A delivery's (or test's) outcome on its destination: failing with the error, or healthy again. */
  async recordOutcome(destinationId: number, error: string | null, at: Date): Promise<void> {
    const repo = this.dataSource.getRepository(AlertDestination);
    if (error === null) await repo.update({ id: destinationId }, { failing: false });
    else await repo.update({ id: destinationId }, { failing: true, lastError: error, lastErrorAt: at });
  }

  async createRule(accountId: number, input: RuleFields): Promise<Outcome<AlertRule>> {
    const checked = await this.checkRule(accountId, input);
    if (!checked.ok) return checked;
    const now = new Date();
    const repo = this.dataSource.getRepository(AlertRule);
    return success(await repo.save(repo.create({ accountId, ...checked.value, digestUntil: null, createdAt: now, updatedAt: now })));
  }

  /** Replaces a rule's name, conditions, destinations and schedule (every field as given, as at creation). */
  async updateRule(accountId: number, id: number | null, input: RuleFields): Promise<Outcome<AlertRule>> {
    const repo = this.dataSource.getRepository(AlertRule);
    const rule = id == null ? null : await repo.findOneBy({ accountId, id });
    if (!rule) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No such alert rule.'));
    const checked = await this.checkRule(accountId, input);
    if (!checked.ok) return checked;
    const v = checked.value;
    const now = new Date();
    const sameSchedule =
      v.digest === rule.digest && v.digestTime === rule.digestTime && v.digestTimeZone === rule.digestTimeZone && v.digestWeekday === rule.digestWeekday;
    // A new schedule's first digest covers the alerts from now on (earlier ones went out under the old one).
    Object.assign(rule, v, { digestUntil: sameSchedule ? rule.digestUntil : now.getTime(), updatedAt: now });
    return success(await repo.save(rule));
  }

  private async checkRule(
    accountId: number,
    input: RuleFields,
  ): Promise<Outcome<Omit<AlertRule, 'id' | 'accountId' | 'account' | 'digestUntil' | 'createdAt' | 'updatedAt'>>> {
    const name = input.name.trim();
    if (name.length < 1 || name.length > 64) return failure(userError(UserErrorCode.INVALID, ['input', 'name'], 'A name has 1-64 characters.'));
    const minSeverity = input.minSeverity ?? 0;
    if (!Number.isInteger(minSeverity) || minSeverity < 0 || minSeverity > 5) {
      return failure(userError(UserErrorCode.INVALID, ['input', 'minSeverity'], 'Severity is 0-5.'));
    }
    const throttleMinutes = input.throttleMinutes ?? 60;
    if (!Number.isInteger(throttleMinutes) || throttleMinutes < 1 || throttleMinutes > 10_080) {
      return failure(userError(UserErrorCode.INVALID, ['input', 'throttleMinutes'], 'The throttle window is 1-10080 minutes (a week).'));
    }
    const digest = input.digest ?? AlertDigestMode.IMMEDIATE;
    if (digest !== AlertDigestMode.IMMEDIATE) {
      if (!input.digestTime || !validTime(input.digestTime))
        return failure(userError(UserErrorCode.INVALID, ['input', 'digestTime'], 'A digest needs a local time, HH:MM.'));
      if (!input.digestTimeZone || !validTimeZone(input.digestTimeZone)) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'digestTimeZone'], 'A digest needs an IANA time zone, e.g. Europe/Paris.'));
      }
      if (digest === AlertDigestMode.WEEKLY && !(Number.isInteger(input.digestWeekday) && input.digestWeekday! >= 1 && input.digestWeekday! <= 7)) {
        return failure(userError(UserErrorCode.INVALID, ['input', 'digestWeekday'], 'A weekly digest needs a weekday, 1 (Monday) to 7 (Sunday).'));
      }
    }
    if (input.destinationIds.length === 0) return failure(userError(UserErrorCode.REQUIRED, ['input', 'destinations'], 'Give at least one destination.'));
    const destinationIds = [...new Set(input.destinationIds)];
    const found = await this.destinationsByIds(
      accountId,
      destinationIds.filter((d): d is number => d != null),
    );
    if (found.length !== destinationIds.length) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'destinations'], 'No such alert destination.'));
    const owned = async (ids: Array<number | null> | null | undefined, table: string, field: string): Promise<Outcome<number[]>> => {
      const list = [...new Set(ids ?? [])];
      if (list.length === 0) return success([]);
      if (list.some((i) => i == null)) return failure(userError(UserErrorCode.NOT_FOUND, ['input', field], 'Not found in your account.'));
      const rows = (await this.dataSource.query(`SELECT id FROM ${table} WHERE account_id = ? AND id IN (${list.map(() => '?').join(',')})`, [
        accountId,
        ...list,
      ])) as unknown[];
      return rows.length === list.length
        ? success(list as number[])
        : failure(userError(UserErrorCode.NOT_FOUND, ['input', field], 'Not found in your account.'));
    };
    const devices = await owned(input.deviceIds, 'device', 'devices');
    if (!devices.ok) return devices;
    const lists = await owned(input.iocListIds, 'ioc_list', 'iocLists');
    if (!lists.ok) return lists;
    return success({
      name,
      enabled: input.enabled ?? true,
      minSeverity,
      directions: [...new Set(input.directions ?? [])],
      deviceIds: devices.value,
      iocListIds: lists.value,
      categories: [...new Set(input.categories ?? [])],
      foundBy: [...new Set(input.foundBy ?? [])],
      hitKinds: [...new Set(input.hitKinds ?? [])],
      throttleMinutes,
      destinationIds: destinationIds as number[],
      digest,
      digestTime: digest === AlertDigestMode.IMMEDIATE ? null : input.digestTime!,
      digestTimeZone: digest === AlertDigestMode.IMMEDIATE ? null : input.digestTimeZone!,
      digestWeekday: digest === AlertDigestMode.WEEKLY ? input.digestWeekday! : null,
    });
  }

  /**
   * Deletes a rule. Its alerts and their deliveries stay (nothing cascades from alert_rule): those not yet delivered
   * are still sent, and a digest rule's alerts not yet in a digest go out in a last one, written here.
   */
  async deleteRule(accountId: number, id: number | null): Promise<Outcome<AlertRule>> {
    const rule = id == null ? null : await this.dataSource.getRepository(AlertRule).findOneBy({ accountId, id });
    if (!rule) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No such alert rule.'));
    // SQLite: begun IMMEDIATE, so the digest start is read under the write lock another process would need.
    await beginImmediate(() =>
      this.dataSource.transaction(async (em) => {
        if (rule.digest !== AlertDigestMode.IMMEDIATE) {
          // Read under the row's lock: the dispatcher may just have written a digest and moved digest_until.
          const start = await lockedDigestStart(em, rule.id);
          const now = Date.now();
          if (start !== null && start < now) await writeDigest(em, rule, start, now, now, { skipEmpty: true });
        }
        await em.getRepository(AlertRule).delete({ id: rule.id });
      }),
    );
    return success(rule);
  }

  rules(accountId: number): Promise<AlertRule[]> {
    return this.dataSource.getRepository(AlertRule).find({ where: { accountId }, order: { id: 'ASC' } });
  }

  /** Deliveries, newest first. */
  deliveries(accountId: number, filter: DeliveryFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<AlertDelivery>> {
    const qb = this.dataSource.getRepository(AlertDelivery).createQueryBuilder('d').where('d.accountId = :accountId', { accountId });
    if (filter?.status) qb.andWhere('d.status = :status', { status: filter.status });
    if (filter?.destinationId !== undefined) qb.andWhere(filter.destinationId === null ? '1 = 0' : 'd.destinationId = :dest', { dest: filter.destinationId });
    return keysetPaginate(qb, 'alertDelivery', [{ expression: 'd.id', direction: 'DESC', value: (d) => d.id }], page);
  }

  attempts(deliveryId: number): Promise<AlertAttempt[]> {
    return this.dataSource.getRepository(AlertAttempt).find({ where: { deliveryId }, order: { id: 'ASC' } });
  }

  alert(accountId: number, id: number): Promise<Alert | null> {
    return this.dataSource.getRepository(Alert).findOneBy({ accountId, id });
  }

  digest(accountId: number, id: number): Promise<AlertDigest | null> {
    return this.dataSource.getRepository(AlertDigest).findOneBy({ accountId, id });
  }

  rule(accountId: number, id: number): Promise<AlertRule | null> {
    return this.dataSource.getRepository(AlertRule).findOneBy({ accountId, id });
  }
}
