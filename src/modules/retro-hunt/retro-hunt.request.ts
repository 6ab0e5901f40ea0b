import { clip } from '../../common/text';
import { EntityManager } from 'typeorm';
import { bulkInsert, dialectOf, execute } from '../../db/bulk';
import type { KeyRange } from '../log-upload/address-set';
import { RetroHuntStatus } from './retro-hunt.enums';

/**
 * What a change may alter: uploads of these devices (given directly, through their policies, or through the
 * policies that use these lists) whose address sets meet `ranges` (the changed entries' ranges, stored in
 * retro_hunt_range) or whose name sets meet `domains` (changed domain entries, in retro_hunt_domain), or the
 * lists' entries as they are when the hunt is planned (`listEntries`: addresses of IP lists, names of DOMAIN
 * lists), or any address or name (`anyAddress`: a device moved to another policy is re-judged whole).
 */
export interface HuntTarget {
  devices?: number[];
  policies?: number[];
  lists?: number[];
  /**
   * A change of the lists (without devices or policies): the policies that used them when it was made, recorded
   * by requestRetroHunt. One that stopped using them before the hunt is planned (a detach after an entry's
   * removal) still holds hits of the changed entries: its devices are re-judged with those still using the lists.
   */
  usedBy?: number[];
  listEntries?: boolean;
  anyAddress?: boolean;
}

/** A change's target with the ranges or names of its changed entries (none for listEntries/anyAddress targets). */
export interface HuntRequest {
  target: HuntTarget;
  ranges?: readonly KeyRange[];
  /** Changed domain entries (DOMAIN lists): each stands for itself and every name under it. */
  domains?: readonly string[];
  cause: string;
}

/** Changes within this window join one retro-hunt. */
export const COALESCE_MS = 2_000;
/** The cause text keeps this many characters (the newest causes are dropped past it). */
const MAX_CAUSE = 4_000;

/**
 * Requests a retro-hunt in the caller's transaction (the change's own: a committed change always has its hunt).
 * Joins the account's automatic hunt that has not started yet, if any: changes in quick succession are coalesced.
 */
export async function requestRetroHunt(em: EntityManager, accountId: number, request: HuntRequest, now = Date.now()): Promise<number> {
  const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
  const open: Array<{ id: number | string; scope: string; cause: string }> = await em.query(
    `SELECT id, scope, cause FROM retro_hunt WHERE account_id = ? AND status = ? AND since IS NULL ORDER BY id DESC LIMIT 1${lock}`,
    [accountId, RetroHuntStatus.QUEUED],
  );
  let id: number;
  let targetIndex: number;
  const target = await withUsers(em, request.target);
  if (open.length) {
    id = Number(open[0].id);
    const targets = JSON.parse(open[0].scope) as HuntTarget[];
    targetIndex = targets.length;
    targets.push(target);
    const cause = clip(`${open[0].cause}\n${request.cause}`, MAX_CAUSE);
    await execute(em, `UPDATE retro_hunt SET scope = ?, cause = ?, not_before = ?, changes = changes + 1 WHERE id = ?`, [
      JSON.stringify(targets),
      cause,
      now + COALESCE_MS,
      id,
    ]);
  } else {
    id = await insertHunt(em, accountId, [target], request.cause, null, now + COALESCE_MS, now);
    targetIndex = 0;
  }
  if (request.ranges?.length) await insertRanges(em, id, targetIndex, request.ranges);
  if (request.domains?.length) await insertDomains(em, id, targetIndex, request.domains);
  return id;
}

/** A list change's target with the policies that use its lists now (HuntTarget.usedBy); any other as it is. */
async function withUsers(em: EntityManager, target: HuntTarget): Promise<HuntTarget> {
  if (!target.lists?.length || target.devices || target.policies) return target;
  const rows: Array<{ policy_id: number | string }> = await em.query(
    `SELECT DISTINCT policy_id FROM policy_ioc_list WHERE ioc_list_id IN (${target.lists.map(() => '?').join(', ')}) ORDER BY policy_id`,
    target.lists,
  );
  return { ...target, usedBy: rows.map((r) => Number(r.policy_id)) };
}

export async function insertHunt(
  em: EntityManager,
  accountId: number,
  targets: HuntTarget[],
  cause: string,
  since: number | null,
  notBefore: number,
  now: number,
): Promise<number> {
  await em.query(`INSERT INTO retro_hunt (account_id, status, cause, scope, since, not_before, created_at, changes) VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, [
    accountId,
    RetroHuntStatus.QUEUED,
    clip(cause, MAX_CAUSE),
    JSON.stringify(targets),
    since,
    notBefore,
    now,
  ]);
  const rows: Array<{ id: number | string }> = await em.query(`SELECT MAX(id) AS id FROM retro_hunt WHERE account_id = ?`, [accountId]);
  return Number(rows[0].id);
}

async function insertRanges(em: EntityManager, huntId: number, target: number, ranges: readonly KeyRange[]): Promise<void> {
  await bulkInsert(
    em,
    'retro_hunt_range',
    ['retro_hunt_id', 'target', 'range_start', 'range_end'],
    ranges.map((r) => [huntId, target, r.start, r.end]),
  );
}

async function insertDomains(em: EntityManager, huntId: number, target: number, names: readonly string[]): Promise<void> {
  await bulkInsert(
    em,
    'retro_hunt_domain',
    ['retro_hunt_id', 'target', 'name'],
    names.map((name) => [huntId, target, name]),
  );
}

/**
 * A list's entries whose expiry lies between `since` (taken before the caller's transaction moved any) and the
 * expiry check's clock (RetroHuntService.checkExpiries): an import that moved an entry's expiry there while the
 * check ran, before the import committed, would have it covered by no hunt, as the check has passed it. Read under
 * the clock's row lock, which the check takes too (on MySQL; SQLite runs one writer at a time): call it in the
 * transaction that moved them, before it requests its hunt (the check's lock order: the clock, then retro_hunt).
 */
export async function expiriesPastTheCheck(em: EntityManager, table: 'ioc', listId: number, since: number): Promise<KeyRange[]>;
export async function expiriesPastTheCheck(em: EntityManager, table: 'ioc_domain', listId: number, since: number): Promise<string[]>;
export async function expiriesPastTheCheck(em: EntityManager, table: 'ioc' | 'ioc_domain', listId: number, since: number): Promise<KeyRange[] | string[]> {
  const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
  const [clock] = (await em.query(`SELECT expiry_checked_at FROM retro_hunt_clock WHERE id = 1${lock}`)) as Array<{ expiry_checked_at: number | string }>;
  const checked = Number(clock?.expiry_checked_at ?? 0);
  if (checked <= since) return [];
  const columns = table === 'ioc' ? 'range_start, range_end' : 'name';
  const rows: Array<{ range_start: string; range_end: string; name: string }> = await em.query(
    `SELECT ${columns} FROM ${table} WHERE list_id = ? AND expires_at > ? AND expires_at <= ?`,
    [listId, since, checked],
  );
  return table === 'ioc' ? rows.map((r) => ({ start: r.range_start, end: r.range_end })) : rows.map((r) => r.name);
}
