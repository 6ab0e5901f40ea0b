/** The tables of the verdicts' mirror (analytics-triage.ts); apart, so the schema's migrations import nothing else. */
export const TRIAGE_TABLE = 'flow_hit_triage';
export const TRIAGE_SYNC_TABLE = 'flow_hit_triage_sync';

export function triageTablesDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${TRIAGE_TABLE} (
  account_id UInt64,
  upload_id Int64,
  identity String,
  status LowCardinality(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, upload_id, identity)`,
    `CREATE TABLE IF NOT EXISTS ${TRIAGE_SYNC_TABLE} (account_id UInt64, revision UInt64) ENGINE = ReplacingMergeTree(revision) ORDER BY account_id`,
  ];
}
