import { EntityManager } from 'typeorm';
import { bulkInsert, dialectOf } from '../../db/bulk';
import { AlertRule } from './alert-rule.entity';
import { AlertDeliveryStatus } from './alert.enums';

/**
 * Where a rule's next digest starts (its digest_until, or its creation before its first digest), read with the
 * rule's row locked for `em`'s transaction (MySQL: FOR UPDATE; SQLite: the write transaction holds the file); null
 * when the rule is gone.
 */
export async function lockedDigestStart(em: EntityManager, ruleId: number): Promise<number | null> {
  const lock = dialectOf(em) === 'mysql' ? ' FOR UPDATE' : '';
  const [row] = (await em.query(`SELECT digest_until, created_at FROM alert_rule WHERE id = ?${lock}`, [ruleId])) as Array<{
    digest_until: string | number | null;
    created_at: string | number;
  }>;
  return row ? Number(row.digest_until ?? row.created_at) : null;
}

/**
 * Writes one digest of a rule in `em`'s transaction: an alert_digest of the alerts the rule raised in [start, end),
 * a PENDING delivery per destination, and the rule's digest_until moved to `end`. The dispatcher writes each one
 * that comes due; deleting a digest rule writes its last one (`skipEmpty`: only when it raised alerts since the one
 * before), so that no alert it raised goes unsent. Processes racing for the same digest meet at its unique
 * (rule, period end): one writes it. Returns whether this call wrote it.
 *
 * `start` was read before this transaction: nothing is written unless the rule, its row locked, is still there and
 * its digest still starts at `start`. Otherwise another writer covered those alerts meanwhile (deleting the rule
 * wrote its last digest, or another process wrote this one), and a digest from `start` would send them twice.
 */
export async function writeDigest(
  em: EntityManager,
  rule: Pick<AlertRule, 'id' | 'accountId' | 'destinationIds'>,
  start: number,
  end: number,
  now: number,
  options: { skipEmpty?: boolean } = {},
): Promise<boolean> {
  if ((await lockedDigestStart(em, rule.id)) !== start) return false;
  const [sum] = (await em.query(`SELECT COUNT(*) AS n, COALESCE(SUM(hit_count), 0) AS h FROM alert WHERE rule_id = ? AND created_at >= ? AND created_at < ?`, [
    rule.id,
    start,
    end,
  ])) as Array<{ n: string | number; h: string | number }>;
  if (options.skipEmpty && Number(sum.n) === 0) return false;
  const inserted = await bulkInsert(
    em,
    'alert_digest',
    ['account_id', 'rule_id', 'period_start', 'period_end', 'alert_count', 'hit_count', 'created_at'],
    [[rule.accountId, rule.id, start, end, Number(sum.n), Number(sum.h), now]],
    { ignoreDuplicates: true },
  );
  await em.query(`UPDATE alert_rule SET digest_until = ? WHERE id = ?`, [end, rule.id]);
  if (inserted === 0) return false;
  const [row] = (await em.query(`SELECT id FROM alert_digest WHERE rule_id = ? AND period_end = ?`, [rule.id, end])) as Array<{ id: number | string }>;
  await bulkInsert(
    em,
    'alert_delivery',
    ['account_id', 'digest_id', 'destination_id', 'status', 'attempts', 'next_attempt_at', 'created_at'],
    rule.destinationIds.map((d) => [rule.accountId, Number(row.id), d, AlertDeliveryStatus.PENDING, 0, now, now]),
    { ignoreDuplicates: true },
  );
  return true;
}
