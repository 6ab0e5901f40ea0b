import { EntityManager } from 'typeorm';
import { bulkInsert, dialectOf, execute } from '../../db/bulk';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const HOUR_COLUMNS = ['account_id', 'upload_id', 'bucket_at', 'device_id', 'direction', 'ioc_list_id', 'severity', 'category', 'protocol', 'hits', 'packets', 'bytes', 'first_seen_at', 'last_seen_at'] as const;
export const DAY_HOST_COLUMNS = ['account_id', 'upload_id', 'bucket_at', 'device_id', 'internal_ip', 'direction', 'ioc_list_id', 'severity', 'category', 'hits', 'packets', 'first_seen_at', 'last_seen_at'] as const;

/**
 * The roll-up rows (hit_hour, hit_day_host; see hit-rollup.entity.ts) of one upload's flow hits, given as the
 * rows written to flow_hit and their column names.
 */
export function rollupRows(hits: readonly unknown[][], columns: readonly string[]): { hour: unknown[][]; dayHost: unknown[][] } {
  const at = (name: string) => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`flow_hit rows lack ${name}`);
    return i;
  };
  const c = {
    account: at('account_id'),
    upload: at('upload_id'),
    device: at('device_id'),
    first: at('first_seen_at'),
    last: at('last_seen_at'),
    direction: at('direction'),
    protocol: at('protocol'),
    internal: at('internal_ip'),
    list: at('ioc_list_id'),
    severity: at('severity'),
    category: at('category'),
    pf: at('packets_forward'),
    pr: at('packets_reverse'),
    bf: at('bytes_forward'),
    br: at('bytes_reverse'),
  };
  const hour = new Map<string, unknown[]>();
  const dayHost = new Map<string, unknown[]>();
  for (const h of hits) {
    const first = Number(h[c.first]);
    const last = Number(h[c.last]);
    const packets = Number(h[c.pf]) + Number(h[c.pr]);
    const bytes = Number(h[c.bf]) + Number(h[c.br]);
    const hourAt = Math.floor(first / HOUR_MS) * HOUR_MS;
    const dayAt = Math.floor(first / DAY_MS) * DAY_MS;
    const dims = `${h[c.upload]}|${h[c.device]}|${h[c.direction]}|${h[c.list]}|${h[c.severity]}|${h[c.category]}`;
    const hk = `${hourAt}|${dims}|${h[c.protocol]}`;
    const r = hour.get(hk);
    if (r) {
      (r[9] as number)++;
      (r[10] as number) += packets;
      (r[11] as number) += bytes;
      if (first < (r[12] as number)) r[12] = first;
      if (last > (r[13] as number)) r[13] = last;
    } else {
      hour.set(hk, [h[c.account], h[c.upload], hourAt, h[c.device], h[c.direction], h[c.list], h[c.severity], h[c.category], h[c.protocol], 1, packets, bytes, first, last]);
    }
    const dk = `${dayAt}|${dims}|${h[c.internal]}`;
    const d = dayHost.get(dk);
    if (d) {
      (d[9] as number)++;
      (d[10] as number) += packets;
      if (first < (d[11] as number)) d[11] = first;
      if (last > (d[12] as number)) d[12] = last;
    } else {
      dayHost.set(dk, [h[c.account], h[c.upload], dayAt, h[c.device], h[c.internal], h[c.direction], h[c.list], h[c.severity], h[c.category], 1, packets, first, last]);
    }
  }
  return { hour: [...hour.values()], dayHost: [...dayHost.values()] };
}

/**
 * Replaces an upload's roll-ups; called in the transaction that replaces its flow hits. `existing: false` (the
 * caller saw none) skips the DELETEs, whose next-key lock on the end of the upload_id index would make two
 * workers' inserts deadlock (see the processor).
 */
export async function replaceRollups(em: EntityManager, uploadId: number, hits: readonly unknown[][], columns: readonly string[], existing = true): Promise<void> {
  if (existing) {
    await execute(em, `DELETE FROM hit_hour WHERE upload_id = ?`, [uploadId]);
    await execute(em, `DELETE FROM hit_day_host WHERE upload_id = ?`, [uploadId]);
  }
  const { hour, dayHost } = rollupRows(hits, columns);
  await bulkInsert(em, 'hit_hour', HOUR_COLUMNS, hour);
  await bulkInsert(em, 'hit_day_host', DAY_HOST_COLUMNS, dayHost);
}

const bucketSql = (em: EntityManager, ms: number) => (dialectOf(em) === 'mysql' ? `(first_seen_at DIV ${ms}) * ${ms}` : `(first_seen_at / ${ms}) * ${ms}`);

/**
 * Recomputes, from the flow hits left, the roll-up rows of the hour and the day that contain `at` (every
 * account). Retention purges hits up to an exact instant, which usually falls inside a bucket; this keeps that
 * bucket's roll-ups equal to what is left of it.
 */
export async function rebuildRollupsAround(em: EntityManager, at: number): Promise<void> {
  const hour = Math.floor(at / HOUR_MS) * HOUR_MS;
  const day = Math.floor(at / DAY_MS) * DAY_MS;
  await execute(em, `DELETE FROM hit_hour WHERE bucket_at = ?`, [hour]);
  await execute(
    em,
    `INSERT INTO hit_hour (${HOUR_COLUMNS.join(', ')})
     SELECT account_id, upload_id, ${bucketSql(em, HOUR_MS)}, device_id, direction, ioc_list_id, severity, category, protocol, COUNT(*),
            SUM(packets_forward + packets_reverse), SUM(bytes_forward + bytes_reverse), MIN(first_seen_at), MAX(last_seen_at)
       FROM flow_hit WHERE first_seen_at >= ? AND first_seen_at < ?
      GROUP BY account_id, upload_id, ${bucketSql(em, HOUR_MS)}, device_id, direction, ioc_list_id, severity, category, protocol`,
    [hour, hour + HOUR_MS],
  );
  await execute(em, `DELETE FROM hit_day_host WHERE bucket_at = ?`, [day]);
  await execute(
    em,
    `INSERT INTO hit_day_host (${DAY_HOST_COLUMNS.join(', ')})
     SELECT account_id, upload_id, ${bucketSql(em, DAY_MS)}, device_id, internal_ip, direction, ioc_list_id, severity, category, COUNT(*),
            SUM(packets_forward + packets_reverse), MIN(first_seen_at), MAX(last_seen_at)
       FROM flow_hit WHERE first_seen_at >= ? AND first_seen_at < ?
      GROUP BY account_id, upload_id, ${bucketSql(em, DAY_MS)}, device_id, internal_ip, direction, ioc_list_id, severity, category`,
    [day, day + DAY_MS],
  );
}
