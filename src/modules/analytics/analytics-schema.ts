import type { ClickHouseClient } from '@clickhouse/client';
import { HIT_COLUMNS, HitColumn } from '../flow-hit/flow-hit.columns';
import { triageTablesDdl } from './analytics-triage-schema';
import { ANALYTICS_ROLLUP_TABLE, HOST_IP, HOST_IP_EXPRESSION, rollUpSelect, rollupTableDdl } from './analytics-rollup';

/**
 * The analytics tier's tables in ClickHouse, created and migrated by the application at start (migrate() below):
 * versioned like the SQL migrations, each version's statements idempotent, the versions applied recorded in
 * `schema_migrations`. Add a version at the end; never edit one that has shipped.
 *
 * - `flow_hit`: the hits, one row per hit of an upload's processing attempt. Its columns are flow_hit's
 *   (flow-hit.columns.ts) and two of its own: `attempt`, the upload's processing attempt that wrote the row
 *   (reads keep the attempt committed in SQL), and `seq`, the hit's place in that attempt (its key: `id` is
 *   made from the upload and `seq`, so a re-run gives a hit the same id). Partitioned by month of first_seen_at,
 *   ordered for an account's time-window reads, retention by TTL (applyRetention()).
 */
export const ANALYTICS_HITS_TABLE = 'flow_hit';

/** How a flow_hit column is stored here (instants are epoch ms, as in SQL: the executors compare them exactly). */
export function clickhouseType(c: HitColumn): string {
  const base =
    c.codec === 'text'
      ? LOW_CARDINALITY.has(c.key)
        ? 'LowCardinality(String)'
        : 'String'
      : c.codec === 'instant'
        ? 'Int64 CODEC(Delta, ZSTD(1))'
        : c.key === 'id'
          ? 'UInt64'
          : 'Int64';
  return c.nullable ? `Nullable(${base})` : base;
}

/** Text columns with a handful of values per account. */
const LOW_CARDINALITY = new Set<HitColumn['key']>(['direction', 'protocol', 'matchedSide', 'category']);

/** The hits table's columns that are not flow_hit's. */
export const ANALYTICS_HIT_EXTRA_COLUMNS = [
  { sql: 'attempt', type: 'UInt32' },
  { sql: 'seq', type: 'UInt32' },
] as const;

function hitsTableDdl(): string {
  const columns = [...HIT_COLUMNS.map((c) => `${c.sql} ${clickhouseType(c)}`), ...ANALYTICS_HIT_EXTRA_COLUMNS.map((c) => `${c.sql} ${c.type}`)];
  return `CREATE TABLE IF NOT EXISTS ${ANALYTICS_HITS_TABLE} (
  ${columns.join(',\n  ')}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(first_seen_at, 1000), 'UTC'))
ORDER BY (account_id, first_seen_at, upload_id, attempt, seq)`;
}

export interface AnalyticsMigration {
  version: number;
  name: string;
  statements: () => string[];
}

export const ANALYTICS_MIGRATIONS: readonly AnalyticsMigration[] = [
  { version: 1, name: 'flow_hit', statements: () => [hitsTableDdl()] },
  // The writer asks for an upload's rows (a re-run's stale attempts, the found-by of its committed one) by
  // upload_id, which the sort key does not lead with: a min/max per granule skips the parts of other uploads
  // (ids grow with time, so an upload's rows sit in few granules). Version 20: the read side numbers its own below.
  {
    version: 20,
    name: 'flow_hit_upload_index',
    statements: () => [
      `ALTER TABLE ${ANALYTICS_HITS_TABLE} ADD INDEX IF NOT EXISTS flow_hit_upload upload_id TYPE minmax GRANULARITY 1`,
      `ALTER TABLE ${ANALYTICS_HITS_TABLE} MATERIALIZE INDEX flow_hit_upload`,
    ],
  },
  // Triage verdicts mirrored from SQL for the reads that filter on them (analytics-triage.ts).
  { version: 30, name: 'flow_hit_triage', statements: triageTablesDdl },
  // Smaller hits (#16: bytes per hit): codecs per column (the types stay, so no row is rewritten now and reads are
  // unchanged; parts written or merged from now on use them).
  { version: 31, name: 'flow_hit_codecs', statements: () => codecStatements() },
  // #16: the internal host (its text and its sortable key) and the CIDR matched take thousands of values, not
  // millions: dictionary-encoded, a read decompresses small indexes instead of every hit's text (the strings were
  // most of what the threats view read), and functions and GROUP BY run over the dictionary. Existing parts are
  // rewritten by the mutation, in the background on a server.
  {
    version: 32,
    name: 'flow_hit_low_cardinality_hosts',
    statements: () => DICTIONARY_TEXT_32.map((c) => `ALTER TABLE ${ANALYTICS_HITS_TABLE} MODIFY COLUMN ${c} LowCardinality(String) CODEC(ZSTD(3))`),
  },
  // #16: the daily roll-up (analytics-rollup.ts), filled from the hits already stored. The backfill writes each
  // key's whole aggregate, as the writer does: run twice (two processes starting at once), the rows are the same
  // and ReplacingMergeTree keeps one.
  {
    version: 33,
    name: 'flow_hit_daily',
    statements: () => [rollupTableDdl(), rollUpSelect(ANALYTICS_HITS_TABLE, '1')],
  },
  // #16: each hit's internal host as a number (HOST_IP), computed by ClickHouse as the row is written (MATERIALIZED:
  // no writer sends it, and SELECT * leaves it out). Hits stored before compute it when read until the mutation has
  // rewritten their parts (in the background on a server), so reads are right from the start. 2.4 bytes a hit.
  {
    version: 34,
    name: 'flow_hit_host_ip',
    statements: () => [
      `ALTER TABLE ${ANALYTICS_HITS_TABLE} ADD COLUMN IF NOT EXISTS ${HOST_IP} UInt64 MATERIALIZED ${HOST_IP_EXPRESSION} CODEC(T64, ZSTD(3))`,
      `ALTER TABLE ${ANALYTICS_HITS_TABLE} MATERIALIZE COLUMN ${HOST_IP}`,
    ],
  },
];

/** Version 32's columns (the external side stays plain text: a listed range can match millions of addresses). */
const DICTIONARY_TEXT_32 = ['internal_ip', 'internal_key', 'matched_cidr'];

/**
 * Each column's codec: integers (ports, ids, counters, severity) keep only the bits they use (T64) then ZSTD;
 * counters that grow along the sort order (the hit's id and place in its attempt) are stored as deltas; text is ZSTD.
 * Instants had Delta + ZSTD from version 1.
 */
export function columnCodec(c: { key: string; codec: string }): string | null {
  if (c.key === 'firstSeenAt') return null;
  if (c.codec === 'text') return 'ZSTD(3)';
  return 'T64, ZSTD(3)';
}

function codecStatements(): string[] {
  const statements: string[] = [];
  for (const c of HIT_COLUMNS) {
    const codec = columnCodec(c);
    if (codec) statements.push(`ALTER TABLE ${ANALYTICS_HITS_TABLE} MODIFY COLUMN ${c.sql} ${clickhouseType(c).replace(/ CODEC\(.*\)/, '')} CODEC(${codec})`);
  }
  statements.push(`ALTER TABLE ${ANALYTICS_HITS_TABLE} MODIFY COLUMN seq UInt32 CODEC(T64, ZSTD(3))`);
  statements.push(`ALTER TABLE ${ANALYTICS_HITS_TABLE} MODIFY COLUMN attempt UInt32 CODEC(T64, ZSTD(3))`);
  return statements;
}

const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Creates the database if it is missing (through `bootstrap`, a client without a database), applies the
 * versions not yet recorded, in order, and sets the retention TTL. Safe to run again, and from processes
 * starting at once (each statement is idempotent; a version recorded twice is read once).
 */
export async function migrateAnalytics(
  client: ClickHouseClient,
  opts: { database: string; bootstrap?: ClickHouseClient; retentionDays: number },
): Promise<number[]> {
  if (opts.bootstrap) await opts.bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${opts.database}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version`,
  });
  const applied = new Set(
    (await (await client.query({ query: `SELECT DISTINCT version FROM ${MIGRATIONS_TABLE}`, format: 'JSONEachRow' })).json<{ version: number }>()).map((r) =>
      Number(r.version),
    ),
  );
  const ran: number[] = [];
  for (const m of ANALYTICS_MIGRATIONS) {
    if (applied.has(m.version)) continue;
    for (const statement of m.statements()) await client.command({ query: statement });
    await client.insert({ table: MIGRATIONS_TABLE, values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
    ran.push(m.version);
  }
  await applyRetention(client, opts.retentionDays);
  return ran;
}

/**
 * The hits' TTL from RETENTION_DAYS (0: none), changed only when it differs from the table's; the roll-up's two
 * days longer (a day of it is read only while none of its hits can have gone: analytics-rollup.ts).
 */
export async function applyRetention(client: ClickHouseClient, days: number): Promise<void> {
  const tables = [
    { table: ANALYTICS_HITS_TABLE, instant: 'first_seen_at', days },
    { table: ANALYTICS_ROLLUP_TABLE, instant: 'day', days: days === 0 ? 0 : days + 2 },
  ];
  for (const t of tables) {
    const [row] = await (
      await client.query({
        query: `SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}`,
        query_params: { table: t.table },
        format: 'JSONEachRow',
      })
    ).json<{ engine_full: string }>();
    // A table of a version not yet migrated (the roll-up before version 33) has nothing to expire.
    if (!row) continue;
    const current = /\bTTL\b.*toIntervalDay\((\d+)\)/.exec(row.engine_full);
    const currentDays = current ? Number(current[1]) : 0;
    if (currentDays === t.days) continue;
    const query =
      t.days === 0
        ? `ALTER TABLE ${t.table} REMOVE TTL`
        : `ALTER TABLE ${t.table} MODIFY TTL toDateTime(intDiv(${t.instant}, 1000), 'UTC') + INTERVAL ${Math.floor(t.days)} DAY`;
    await client.command({ query });
  }
}
