import type { ClickHouseClient } from '@clickhouse/client';
import { GraphQLError } from 'graphql';
import { triageCondition } from '../../analytics/analytics-triage';
import { ResolvedHitFilter } from '../../flow-hit/hit-filter';
import { ANALYTICS_HITS_TABLE } from '../../analytics/analytics-schema';
import { COMMITTED_READ, CommittedAttempt, committedParams } from '../../analytics/analytics-hits';

/**
 * The ClickHouse executor's row source (sql-source.ts is the SQL one's): the hits of `flow_hit` in ClickHouse
 * matching a filter, always restricted to the account and to each upload's committed attempt (the attempt the
 * COMPLETED commit recorded in SQL, analytics-hits.ts), so no statement can count another account's hits nor
 * an attempt that never committed. Column names are flow_hit's (snake case), as in SQL.
 */

/** A statement's text and its named parameters ({name:Type} in the text). */
export interface ChQuery {
  where: string;
  params: Record<string, unknown>;
}

/** Builds parameters with unique names for one statement. */
export class ChParams {
  readonly values: Record<string, unknown> = {};
  private n = 0;

  /** A placeholder for `value` of ClickHouse type `type`. */
  add(value: unknown, type: string): string {
    const name = `p${this.n++}`;
    this.values[name] = value;
    return `{${name}:${type}}`;
  }
}

/** Every condition of `f`, the account and the committed attempts, as a WHERE clause over flow_hit. */
export function hitWhere(f: ResolvedHitFilter, committed: readonly CommittedAttempt[], p: ChParams): string {
  const parts = [`account_id = ${p.add(f.accountId, 'UInt64')}`, `first_seen_at >= ${p.add(f.from, 'Int64')}`, `first_seen_at < ${p.add(f.to, 'Int64')}`];
  // The committed attempts: the filter's arrays are named apart (COMMITTED_READ's own placeholders).
  Object.assign(p.values, committedParams(committed));
  parts.push(COMMITTED_READ);
  const inList = (column: string, values: readonly unknown[] | undefined, type: string) => {
    if (values === undefined) return;
    parts.push(values.length === 0 ? '0' : `${column} IN ${p.add(values, `Array(${type})`)}`);
  };
  parts.push(...keyConditions(f, p));
  inList('destination_port', f.ports, 'Int64');
  inList('protocol', f.protocols, 'String');
  inList('found_by', f.foundBy, 'String');
  // Verdicts: the mirror of SQL's (analytics-triage.ts), brought up to date by the caller (syncTriage).
  if (f.triageStatuses !== undefined) parts.push(triageCondition(f.accountId, f.triageStatuses, p));
  if (f.foundSince !== undefined) parts.push(`found_at >= ${p.add(f.foundSince, 'Int64')}`);
  if (f.internal) parts.push(`internal_key >= ${p.add(f.internal.start, 'String')} AND internal_key <= ${p.add(f.internal.end, 'String')}`);
  if (f.external) parts.push(`external_key >= ${p.add(f.external.start, 'String')} AND external_key <= ${p.add(f.external.end, 'String')}`);
  // Port-less hits (ICMP) have no destination port to exclude: kept, as in SQL.
  if (f.excludePorts?.length) parts.push(`(destination_port IS NULL OR destination_port NOT IN ${p.add(f.excludePorts, 'Array(Int64)')})`);
  return parts.join(' AND ');
}

/**
 * `f`'s conditions on the few-valued columns flow_hit and the daily roll-up share (devices, directions,
 * severities, lists, categories, a minimum severity).
 */
export function keyConditions(f: ResolvedHitFilter, p: ChParams): string[] {
  const parts: string[] = [];
  const inList = (column: string, values: readonly unknown[] | undefined, type: string) => {
    if (values === undefined) return;
    parts.push(values.length === 0 ? '0' : `${column} IN ${p.add(values, `Array(${type})`)}`);
  };
  inList('device_id', f.deviceIds, 'Int64');
  inList('direction', f.directions, 'String');
  inList('severity', f.severities, 'Int64');
  inList('ioc_list_id', f.listIds, 'Int64');
  inList('category', f.categories, 'String');
  if (f.minSeverity !== undefined) parts.push(`severity >= ${p.add(f.minSeverity, 'Int64')}`);
  return parts;
}

export const HITS_TABLE = ANALYTICS_HITS_TABLE;

/** What a report read answers when ClickHouse fails: never a partial or made-up number. */
export function analyticsUnavailable(cause?: unknown): GraphQLError & { cause?: unknown } {
  const error: GraphQLError & { cause?: unknown } = new GraphQLError(
    'Hit reports are unavailable: the analytics store (ClickHouse) cannot be reached. Try again later.',
    { extensions: { code: 'ANALYTICS_UNAVAILABLE' } },
  );
  // For the log; the client is told the code and the sentence only.
  error.cause = cause;
  return error;
}

/** Runs a read and returns its rows; any failure of ClickHouse is ANALYTICS_UNAVAILABLE. */
export async function chRows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  try {
    const result = await client.query({ query, query_params: params, format: 'JSONEachRow' });
    return await result.json<T>();
  } catch (err) {
    throw analyticsUnavailable(err);
  }
}
