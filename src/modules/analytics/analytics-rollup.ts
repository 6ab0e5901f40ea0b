/**
 * The daily roll-up of the analytics tier (#16): per account, UTC day, upload attempt and the few-valued columns
 * (device, direction, list, severity, category), the hits' counts, sums and first/last instants, and the exact
 * distinct hosts, external addresses and entries as `uniqExact` states, which merge across rows into exact
 * counts (as RITA's roll-ups do). A grouping keyed by those columns alone (totals, directions, lists, categories,
 * severities, devices) reads a window's whole days from here instead of every hit (at 10M hits in the analytics
 * bench, 200 rows a day instead of 83,000 hits).
 *
 * Written by the hit writer from an attempt's rows once they are all in (AnalyticsHits.write), never by a materialized
 * view: each row is the whole aggregate of its key for that attempt, so writing it again (a retry, the migration's
 * backfill beside a writer) gives the same row, and ReplacingMergeTree keeps one (reads use FINAL; the version,
 * the row's hits, keeps the whole aggregate over any partial one). Reads keep the committed attempts, as on
 * flow_hit; every delete of flow_hit rows deletes the same keys here (analytics-hits.ts).
 *
 * A day is read from here only when no retention purge or TTL can have removed part of it (rollupFrom): the
 * purge deletes whole days here, and the boundary day's rows are never read again.
 */
export const ANALYTICS_ROLLUP_TABLE = 'flow_hit_daily';

export const DAY_MS = 86_400_000;

/**
 * A host's (device, IPv4 address) as one UInt64, and when a row's host is one: its device fits 32 bits and its
 * address is the dotted quad that IPv4 number prints (so two different texts never meet as one number).
 */
export const HOST64 = 'bitOr(bitShiftLeft(toUInt64(device_id), 32), toUInt64(IPv4StringToNumOrDefault(internal_ip)))';
export const HOST64_EXACT = '(device_id BETWEEN 0 AND 4294967295 AND IPv4NumToString(IPv4StringToNumOrDefault(internal_ip)) = internal_ip)';
/**
 * flow_hit's `host_ip` (version 34, analytics-schema.ts): HOST64 stored with each hit where the host is one
 * (HOST64_EXACT) and its device is not 0, else 0 (an IPv6 host, or text that is not an IPv4 address as it prints),
 * so never 0 for an IPv4 host. Counting distinct hosts over it (chAggregate) reads a number instead of parsing,
 * printing and comparing each hit's text: byIoc's statement over 2.5M hits took 310-380 ms instead of 430-630.
 */
export const HOST_IP = 'host_ip';
export const HOST_IP_EXPRESSION = `if(device_id > 0 AND ${HOST64_EXACT}, ${HOST64}, 0)`;
export const EXTERNAL32 = 'IPv4StringToNumOrDefault(external_ip)';
export const EXTERNAL32_EXACT = `(IPv4NumToString(${EXTERNAL32}) = external_ip)`;

/** The roll-up's key columns after account and day: an attempt's, then the few-valued ones. */
export const ROLLUP_DIMENSIONS = ['device_id', 'direction', 'ioc_list_id', 'severity', 'category'] as const;

/**
 * The aggregates of flow_hit rows as the roll-up stores them (its columns after the key): [column, type,
 * aggregate over flow_hit]. A read aggregates the hits of the days it does not take from the roll-up with the
 * same expressions (clickhouse.executor.ts), so that both merge alike. The distinct states split IPv4 from other
 * text as chAggregate() does, so merged they add up to the same exact counts.
 */
export const ROLLUP_STATES: ReadonlyArray<[column: string, type: string, aggregate: string]> = [
  ['hits', 'UInt64', 'count()'],
  ['packets', 'Int64', 'sum(packets_forward + packets_reverse)'],
  ['bytes', 'Int64', 'sum(bytes_forward + bytes_reverse)'],
  ['first_seen', 'Int64', 'min(first_seen_at)'],
  ['last_seen', 'Int64', 'max(last_seen_at)'],
  ['hosts_ip', 'AggregateFunction(uniqExactIf, UInt64, UInt8)', `uniqExactIfState(${HOST64}, ${HOST64_EXACT})`],
  ['hosts_text', 'AggregateFunction(uniqExactIf, Int64, String, UInt8)', `uniqExactIfState(device_id, toString(internal_ip), NOT ${HOST64_EXACT})`],
  ['externals_ip', 'AggregateFunction(uniqExactIf, UInt32, UInt8)', `uniqExactIfState(${EXTERNAL32}, ${EXTERNAL32_EXACT})`],
  ['externals_text', 'AggregateFunction(uniqExactIf, String, UInt8)', `uniqExactIfState(external_ip, NOT ${EXTERNAL32_EXACT})`],
  ['entries', 'AggregateFunction(uniqExact, Int64)', 'uniqExactState(ioc_id)'],
];

export function rollupTableDdl(): string {
  return `CREATE TABLE IF NOT EXISTS ${ANALYTICS_ROLLUP_TABLE} (
  account_id Int64,
  day Int64,
  upload_id Int64,
  attempt UInt32,
  device_id Int64,
  direction LowCardinality(String),
  ioc_list_id Int64,
  severity Int64,
  category LowCardinality(String),
  ${ROLLUP_STATES.map(([c, type]) => `${c} ${type}`).join(',\n  ')}
) ENGINE = ReplacingMergeTree(hits)
PARTITION BY toYYYYMM(toDateTime(intDiv(day, 1000), 'UTC'))
ORDER BY (account_id, day, upload_id, attempt, ${ROLLUP_DIMENSIONS.join(', ')})`;
}

/** The roll-up's aggregate columns over flow_hit rows, aliased as its columns. */
function rollupAggregates(): string {
  return ROLLUP_STATES.map(([c, , aggregate]) => `${aggregate} AS ${c}`).join(', ');
}

/** The roll-up's rows of the rows of `hitsTable` (flow_hit) matching `where` (an attempt's, or every row: the backfill). */
export function rollUpSelect(hitsTable: string, where: string): string {
  return `INSERT INTO ${ANALYTICS_ROLLUP_TABLE} (account_id, day, upload_id, attempt, ${ROLLUP_DIMENSIONS.join(', ')}, ${ROLLUP_STATES.map(([c]) => c).join(', ')})
SELECT account_id, intDiv(first_seen_at, ${DAY_MS}) * ${DAY_MS} AS day, upload_id, attempt, ${ROLLUP_DIMENSIONS.join(', ')}, ${rollupAggregates()}
FROM ${hitsTable} WHERE ${where}
GROUP BY account_id, day, upload_id, attempt, ${ROLLUP_DIMENSIONS.join(', ')}`;
}

/**
 * The first day (epoch ms, a UTC midnight) the roll-up may answer for. With retention (RETENTION_DAYS > 0), the
 * purge and the TTL remove the hits before now - RETENTION_DAYS: the day that cutoff falls in may have lost part
 * of its hits, and the day after it is left to the hits too (a margin for another process's clock), so the roll-up
 * answers from the second day after it. Without retention, every day.
 */
export function rollupFrom(retentionDays: number, now = Date.now()): number {
  if (retentionDays <= 0) return Number.MIN_SAFE_INTEGER;
  return (Math.floor((now - retentionDays * DAY_MS) / DAY_MS) + 2) * DAY_MS;
}
