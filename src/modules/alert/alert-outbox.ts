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

/** Groups the hits each rule matches by (rule, entry, internal host) in the rule's window at `now`. Pure. */
export function draftAlerts(rules: readonly OutboxRule[], hits: readonly AlertHit[], now: number): AlertDraft[] {
  const drafts = new Map<string, AlertDraft>();
  for (const rule of rules) {
    const windowMs = rule.throttleMinutes * 60_000;
    const windowStart = Math.floor(now / windowMs) * windowMs;
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
          windowStart,
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
  const windows = [...new Set(drafts.map((d) => d.windowStart))];
  const ruleIds = [...new Set(drafts.map((d) => d.ruleId))];
  const stored = (await em.query(
    `SELECT id, rule_id, hit_kind, ioc_id, internal_key, window_start FROM alert WHERE rule_id IN (${ruleIds.map(() => '?').join(',')}) AND window_start IN (${windows.map(() => '?').join(',')})`,
    [...ruleIds, ...windows],
  )) as Array<Record<string, string | number>>;
  const ids = new Map(stored.map((r) => [`${r.rule_id}|${r.hit_kind}|${r.ioc_id}|${r.internal_key}|${Number(r.window_start)}`, Number(r.id)]));
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
