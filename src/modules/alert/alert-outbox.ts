import { EntityManager } from 'typeorm';
import { bulkInsert, dialectOf, execute } from '../../db/bulk';
import type { NewHit } from '../flow-hit/flow-hit.columns';
import type { NewDnsHit } from '../dns-hit/dns-hit.columns';
import { parseIp } from '../../common/net/ip';
import { ipKey } from '../ioc/ioc-range';
import { AlertDeliveryStatus, AlertDigestMode, HitFoundBy, HitKind } from './alert.enums';

/** A rule as the outbox needs it (alert_rule's row, JSON lists parsed). */
export interface OutboxRule {
  id: number;
  minSeverity: number;
  directions: string[];
  deviceIds: number[];
  iocListIds: number[];
  categories: string[];
  foundBy: string[];
  hitKinds: string[];
  throttleMinutes: number;
  destinationIds: number[];
  /** False for a digest rule: its alerts go out in its digest, not one by one. */
  immediate: boolean;
}

/**
 * A hit as the outbox sees it, flow hit or DNS hit: the rule conditions' fields and the throttle key's
 * (matched entry `iocId` of kind `kind`, internal host `internalKey`).
 */
export interface AlertHit {
  kind: HitKind;
  iocId: number;
  iocListId: number;
  deviceId: number;
  internalKey: string;
  internalIp: string;
  /** The flow's external address; empty for a DNS hit. */
  externalIp: string;
  /** The queried name of a DNS hit; null for a flow hit. */
  qname: string | null;
  direction: string;
  severity: number;
  category: string;
  foundBy: HitFoundBy;
  firstSeenAt: number;
  lastSeenAt: number;
}

/** How a hit was found: flow_hit.found_by once retro-hunt (#17) adds it; every hit before that came from its upload. */
export function foundByOf(hit: NewHit): HitFoundBy {
  const v = (hit as { foundBy?: string }).foundBy;
  return v === HitFoundBy.RETRO_HUNT ? HitFoundBy.RETRO_HUNT : HitFoundBy.UPLOAD;
}

/** A flow hit as the outbox sees it. */
export function flowAlertHit(hit: NewHit): AlertHit {
  return {
    kind: HitKind.IP,
    iocId: hit.iocId,
    iocListId: hit.iocListId,
    deviceId: hit.deviceId,
    internalKey: hit.internalKey,
    internalIp: hit.internalIp,
    externalIp: hit.externalIp,
    qname: null,
    direction: hit.direction,
    severity: hit.severity,
    category: hit.category,
    foundBy: foundByOf(hit),
    firstSeenAt: hit.firstSeenAt,
    lastSeenAt: hit.lastSeenAt,
  };
}

/**
 * A DNS hit as the outbox sees it: the matched domain entry and the querying host (keyed as flow hits key their
 * internal host, so the throttle key is (rule, matched entry, internal host) for both kinds).
 */
export function dnsAlertHit(hit: NewDnsHit, foundBy: HitFoundBy): AlertHit {
  const internalIp = String(hit.internalIp);
  const parsed = parseIp(internalIp);
  return {
    kind: HitKind.DNS,
    iocId: Number(hit.iocDomainId),
    iocListId: Number(hit.iocListId),
    deviceId: Number(hit.deviceId),
    internalKey: parsed ? ipKey(parsed) : internalIp.slice(0, 32),
    internalIp,
    externalIp: '',
    qname: String(hit.qname),
    direction: String(hit.direction),
    severity: Number(hit.severity),
    category: String(hit.category),
    foundBy,
    firstSeenAt: Number(hit.firstSeenAt),
    lastSeenAt: Number(hit.lastSeenAt),
  };
}

/** Whether the rule raises an alert for the hit. Pure. */
export function ruleMatches(rule: OutboxRule, hit: AlertHit): boolean {
  return (
    hit.severity >= rule.minSeverity &&
    (rule.hitKinds.length === 0 || rule.hitKinds.includes(hit.kind)) &&
    (rule.directions.length === 0 || rule.directions.includes(hit.direction)) &&
    (rule.deviceIds.length === 0 || rule.deviceIds.includes(hit.deviceId)) &&
    (rule.iocListIds.length === 0 || rule.iocListIds.includes(hit.iocListId)) &&
    (rule.categories.length === 0 || rule.categories.includes(hit.category)) &&
    (rule.foundBy.length === 0 || rule.foundBy.includes(hit.foundBy))
  );
}

/** One alert row to upsert: its throttle key and what it stands for. */
export interface AlertDraft {
  ruleId: number;
  kind: HitKind;
  iocId: number;
  internalKey: string;
  windowStart: number;
  first: AlertHit;
  hitCount: number;
  firstSeenAt: number;
  lastSeenAt: number;
}

/**
 * Groups the hits each rule matches by (rule, entry, internal host). Each draft's window starts `now`, as a new
 * key's does; anchorWindows moves it to the start of the key's open window if it has one. Pure.
 */
export function draftAlerts(rules: readonly OutboxRule[], hits: readonly AlertHit[], now: number): AlertDraft[] {
  const drafts = new Map<string, AlertDraft>();
  for (const rule of rules) {
    for (const hit of hits) {
      if (!ruleMatches(rule, hit)) continue;
      const key = `${rule.id}|${hit.kind}|${hit.iocId}|${hit.internalKey}`;
      const d = drafts.get(key);
      if (d) {
        d.hitCount++;
        d.firstSeenAt = Math.min(d.firstSeenAt, hit.firstSeenAt);
        d.lastSeenAt = Math.max(d.lastSeenAt, hit.lastSeenAt);
      } else {
        drafts.set(key, {
          ruleId: rule.id,
          kind: hit.kind,
          iocId: hit.iocId,
          internalKey: hit.internalKey,
          windowStart: now,
          first: hit,
          hitCount: 1,
          firstSeenAt: hit.firstSeenAt,
          lastSeenAt: hit.lastSeenAt,
        });
      }
    }
  }
  // One lock order for every writer (two workers upserting the same alerts never wait on each other in a cycle).
  return [...drafts.values()].sort(
    (a, b) =>
      a.ruleId - b.ruleId ||
      (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0) ||
      a.iocId - b.iocId ||
      (a.internalKey < b.internalKey ? -1 : a.internalKey > b.internalKey ? 1 : 0),
  );
}

export async function enabledRules(em: EntityManager, accountId: number): Promise<OutboxRule[]> {
  const rows = (await em.query(
    `SELECT id, min_severity, directions, device_ids, ioc_list_ids, categories, found_by, hit_kinds, throttle_minutes, destination_ids, digest FROM alert_rule WHERE account_id = ? AND enabled = 1`,
    [accountId],
  )) as Array<Record<string, string | number>>;
  const list = <T>(v: string | number) => JSON.parse(String(v)) as T[];
  return rows.map((r) => ({
    id: Number(r.id),
    minSeverity: Number(r.min_severity),
    directions: list<string>(r.directions),
    deviceIds: list<number>(r.device_ids),
    iocListIds: list<number>(r.ioc_list_ids),
    categories: list<string>(r.categories),
    foundBy: list<string>(r.found_by),
    hitKinds: list<string>(r.hit_kinds),
    throttleMinutes: Number(r.throttle_minutes),
    destinationIds: list<number>(r.destination_ids),
    immediate: r.digest === AlertDigestMode.IMMEDIATE,
  }));
}

const ALERT_COLUMNS = [
  'account_id',
  'rule_id',
  'hit_kind',
  'ioc_id',
  'ioc_list_id',
  'device_id',
  'upload_id',
  'internal_key',
  'internal_ip',
  'external_ip',
  'qname',
  'direction',
  'severity',
  'category',
  'found_by',
  'window_start',
  'hit_count',
  'first_seen_at',
  'last_seen_at',
  'created_at',
];

/**
 * The outbox: writes the alerts an upload's new hits (flow hits and DNS hits) raise, in the transaction that
 * writes the hits (HitWriter).
 * An alert already raised in the window gains the hits' count instead of a second alert; a new one gets a PENDING
 * delivery per destination of its rule, which the worker (alert.dispatcher.ts) sends. Returns the alerts touched.
 */
export async function writeAlerts(
  em: EntityManager,
  upload: { accountId: number; uploadId: number },
  hits: readonly AlertHit[],
  now = Date.now(),
): Promise<number> {
  if (hits.length === 0) return 0;
  const rules = await enabledRules(em, upload.accountId);
  if (rules.length === 0) return 0;
  const drafts = draftAlerts(rules, hits, now);
  if (drafts.length === 0) return 0;
  const mysql = dialectOf(em) === 'mysql';
  await anchorWindows(em, drafts, rules, now);
  const conflict = mysql
    ? ` ON DUPLICATE KEY UPDATE hit_count = hit_count + VALUES(hit_count), first_seen_at = LEAST(first_seen_at, VALUES(first_seen_at)), last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at))`
    : ` ON CONFLICT (rule_id, hit_kind, ioc_id, internal_key, window_start) DO UPDATE SET hit_count = hit_count + excluded.hit_count, first_seen_at = MIN(first_seen_at, excluded.first_seen_at), last_seen_at = MAX(last_seen_at, excluded.last_seen_at)`;
  const tuple = `(${ALERT_COLUMNS.map(() => '?').join(', ')})`;
  for (let i = 0; i < drafts.length; i += 500) {
    const chunk = drafts.slice(i, i + 500);
    const params = chunk.flatMap((d) => [
      upload.accountId,
      d.ruleId,
      d.kind,
      d.iocId,
      d.first.iocListId,
      d.first.deviceId,
      upload.uploadId,
      d.internalKey,
      d.first.internalIp,
      d.first.externalIp,
      d.first.qname,
      d.first.direction,
      d.first.severity,
      d.first.category,
      d.first.foundBy,
      d.windowStart,
      d.hitCount,
      d.firstSeenAt,
      d.lastSeenAt,
      now,
    ]);
    await execute(em, `INSERT INTO alert (${ALERT_COLUMNS.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}${conflict}`, params);
  }
  const byRule = new Map(rules.map((r) => [r.id, r]));
  // Each alert by its whole unique key: point reads of UQ_alert_throttle.
  const ids = new Map<string, number>();
  for (let i = 0; i < drafts.length; i += KEY_CHUNK) {
    const chunk = drafts.slice(i, i + KEY_CHUNK);
    const stored = (await em.query(
      `SELECT id, rule_id, hit_kind, ioc_id, internal_key, window_start FROM alert WHERE ${chunk.map(() => '(rule_id = ? AND hit_kind = ? AND ioc_id = ? AND internal_key = ? AND window_start = ?)').join(' OR ')}`,
      chunk.flatMap((d) => [d.ruleId, d.kind, d.iocId, d.internalKey, d.windowStart]),
    )) as Array<Record<string, string | number>>;
    for (const r of stored) ids.set(`${r.rule_id}|${r.hit_kind}|${r.ioc_id}|${r.internal_key}|${Number(r.window_start)}`, Number(r.id));
  }
  const deliveries: unknown[][] = [];
  for (const d of drafts) {
    const alertId = ids.get(`${d.ruleId}|${d.kind}|${d.iocId}|${d.internalKey}|${d.windowStart}`);
    if (alertId === undefined) throw new Error('alert upserted but not found');
    const rule = byRule.get(d.ruleId)!;
    if (!rule.immediate) continue;
    for (const destinationId of rule.destinationIds) {
      deliveries.push([upload.accountId, alertId, destinationId, AlertDeliveryStatus.PENDING, 0, now, now]);
    }
  }
  // Existing (alert, destination) pairs are skipped: an alert is delivered once per destination, however many hits join it.
  await bulkInsert(em, 'alert_delivery', ['account_id', 'alert_id', 'destination_id', 'status', 'attempts', 'next_attempt_at', 'created_at'], deliveries, {
    ignoreDuplicates: true,
  });
  return drafts.length;
}

/** The longest throttle window a rule can have (throttleMinutes <= 10080: a week). */
export const MAX_THROTTLE_MS = 10_080 * 60_000;

/** Keys per statement of the throttle reads (5 parameters each). */
const KEY_CHUNK = 200;

/**
 * Moves each draft's window to its key's: a window starts at the key's first alert and lasts the rule's
 * throttleMinutes, so an alert stands for every hit of its key within that long after it, wherever the clock's
 * hours fall. alert_throttle holds each key's window start; the upsert keeps it while the window is open and
 * starts a new one (`now`) once it has passed. Two writers of one key at once: the second's upsert waits on the
 * first's row lock and then keeps the window the first started, which it reads back with a locking read (MariaDB's
 * plain reads would show its snapshot, older than the row it just locked). Drafts are sorted (draftAlerts), so
 * every writer locks keys in one order.
 */
export async function anchorWindows(em: EntityManager, drafts: AlertDraft[], rules: readonly OutboxRule[], now: number): Promise<void> {
  const mysql = dialectOf(em) === 'mysql';
  const windowMs = new Map(rules.map((r) => [r.id, r.throttleMinutes * 60_000]));
  // The window's length is the rule's: one statement per rule and chunk.
  const byRule = new Map<number, AlertDraft[]>();
  for (const d of drafts) {
    const list = byRule.get(d.ruleId) ?? [];
    list.push(d);
    byRule.set(d.ruleId, list);
  }
  const open = mysql
    ? ` ON DUPLICATE KEY UPDATE window_start = IF(window_start <= VALUES(window_start) - ?, VALUES(window_start), window_start)`
    : ` ON CONFLICT (rule_id, hit_kind, ioc_id, internal_key) DO UPDATE SET window_start = CASE WHEN window_start <= excluded.window_start - ? THEN excluded.window_start ELSE window_start END`;
  for (const [ruleId, list] of byRule) {
    for (let i = 0; i < list.length; i += KEY_CHUNK) {
      const chunk = list.slice(i, i + KEY_CHUNK);
      await execute(
        em,
        `INSERT INTO alert_throttle (rule_id, hit_kind, ioc_id, internal_key, window_start) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}${open}`,
        [...chunk.flatMap((d) => [d.ruleId, d.kind, d.iocId, d.internalKey, now]), windowMs.get(ruleId)],
      );
    }
  }
  const lock = mysql ? ' FOR UPDATE' : '';
  const starts = new Map<string, number>();
  for (let i = 0; i < drafts.length; i += KEY_CHUNK) {
    const chunk = drafts.slice(i, i + KEY_CHUNK);
    const rows = (await em.query(
      `SELECT rule_id, hit_kind, ioc_id, internal_key, window_start FROM alert_throttle WHERE ${chunk.map(() => '(rule_id = ? AND hit_kind = ? AND ioc_id = ? AND internal_key = ?)').join(' OR ')}${lock}`,
      chunk.flatMap((d) => [d.ruleId, d.kind, d.iocId, d.internalKey]),
    )) as Array<Record<string, string | number>>;
    for (const r of rows) starts.set(`${r.rule_id}|${r.hit_kind}|${r.ioc_id}|${r.internal_key}`, Number(r.window_start));
  }
  for (const d of drafts) {
    const start = starts.get(`${d.ruleId}|${d.kind}|${d.iocId}|${d.internalKey}`);
    if (start === undefined) throw new Error('alert throttle upserted but not found');
    d.windowStart = start;
  }
}
