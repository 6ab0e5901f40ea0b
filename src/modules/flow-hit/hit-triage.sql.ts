import { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { TriageStatus } from './hit-triage.enums';

/**
 * A hit's stable identity (flow-hit.columns.ts hitIdentity()) spelled in SQL over the flow_hit row named `alias`,
 * so a hit finds its triage row (flow_hit_triage: upload + identity) across reprocessing and retro-hunts.
 */
export function triageIdentitySql(mysql: boolean, alias: string): string {
  const parts = [
    `${alias}.protocol`,
    `${alias}.internal_key`,
    `COALESCE(${alias}.internal_port, '')`,
    `${alias}.external_key`,
    `COALESCE(${alias}.external_port, '')`,
    `${alias}.matched_side`,
    `${alias}.ioc_id`,
  ];
  return mysql ? `CONCAT_WS('|', ${parts.join(', ')})` : parts.map((p) => (p.startsWith('COALESCE') ? p : `CAST(${p} AS TEXT)`)).join(" || '|' || ");
}

/** The triage status of the flow_hit row named `alias` ('OPEN' when it has none), as one SQL expression. */
export function triageStatusSql(mysql: boolean, alias: string): string {
  return `COALESCE((SELECT t.status FROM flow_hit_triage t WHERE t.upload_id = ${alias}.upload_id AND t.identity = ${triageIdentitySql(mysql, alias)}), 'OPEN')`;
}

/**
 * Restricts a query on flow hits aliased `h` to hits whose triage status is one of `statuses` (OPEN: none
 * recorded, or OPEN). An empty list matches nothing.
 */
export function applyTriageStatuses<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, statuses: readonly TriageStatus[]): SelectQueryBuilder<T> {
  if (statuses.length === 0) return qb.andWhere('1 = 0');
  const mysql = qb.connection.options.type !== 'better-sqlite3';
  const match = `FROM flow_hit_triage t WHERE t.upload_id = h.upload_id AND t.identity = ${triageIdentitySql(mysql, 'h')}`;
  const listed = statuses.filter((s) => s !== TriageStatus.OPEN);
  const conditions: string[] = [];
  if (statuses.includes(TriageStatus.OPEN)) conditions.push(`NOT EXISTS (SELECT 1 ${match} AND t.status <> 'OPEN')`);
  if (listed.length) conditions.push(`EXISTS (SELECT 1 ${match} AND t.status IN (:...fTriage))`);
  return qb.andWhere(`(${conditions.join(' OR ')})`, { fTriage: listed });
}
