import type { NodeTypeName } from '../../common/ids/global-id';
import { ipv4Key, ipv6WordsKey } from '../ioc/ioc-range';
import type { Connection, ConnectionEndpoint } from '../log-upload/flows/fold';
import { MatchedSide, protocolName } from './flow-hit.enums';

/**
 * flow_hit's columns, declared once, with newHit() below that fills them for a new hit. The writer's insert (hit-writer.ts), the roll-ups (hit-rollup.ts), the
 * in-memory report store's loader (report/hit-memory.ts) and the export (report/export/) take their column
 * lists from here; the entity (flow-hit.entity.ts) and the migrations are checked against it by
 * test/integration/flow-hit/hit-columns.test.ts.
 *
 * Declaration order is the export's column order, which scripts depend on: add at the end, never reorder.
 */

/** What one hit is made from: a folded connection, the end of it that matched, and the entry that matched. */
export interface HitSource {
  accountId: number;
  deviceId: number;
  uploadId: number;
  connection: Connection;
  side: MatchedSide;
  /** The matched end (connection.initiator or connection.responder). */
  end: ConnectionEndpoint;
  match: HitMatch;
}

/** The matched BLOCK entry as it is when the upload is processed (copied into the hit). */
export interface HitMatch {
  entryId: number;
  listId: number;
  cidr: string;
  severity: number;
  category: string;
}

/** How a value is stored and read back: `instant` is epoch ms in a BIGINT (db/columns.ts). */
type Codec = 'int' | 'bigint' | 'instant' | 'text';

/**
 * How the export writes a column: `number`/`text`/`instant` (ISO 8601) as they are, `{ node }` as the global ID
 * of that type, followed by a `name` column with the object's name when one is given.
 */
export type ExportAs = 'number' | 'text' | 'instant' | { node: NodeTypeName; name?: string };

interface ColumnSpec {
  sql: string;
  codec: Codec;
  nullable?: boolean;
  /** Set by the database (the key): not in a new hit. */
  generated?: true;
  /** Header (and NDJSON key) in the export; absent: not exported. */
  export?: { header: string; as: ExportAs };
  /** Read by the in-memory report store's loader. */
  store?: boolean;
}

const key = (end: ConnectionEndpoint) => (end.v6 ? ipv6WordsKey(end.v6) : ipv4Key(end.v4));

export const FLOW_HIT_COLUMNS = {
  id: { sql: 'id', codec: 'int', generated: true, export: { header: 'id', as: { node: 'FlowHit' } }, store: true },
  accountId: { sql: 'account_id', codec: 'int' },
  firstSeenAt: { sql: 'first_seen_at', codec: 'instant', export: { header: 'first_seen_at', as: 'instant' }, store: true },
  lastSeenAt: { sql: 'last_seen_at', codec: 'instant', export: { header: 'last_seen_at', as: 'instant' }, store: true },
  deviceId: { sql: 'device_id', codec: 'int', export: { header: 'device_id', as: { node: 'Device', name: 'device' } }, store: true },
  uploadId: { sql: 'upload_id', codec: 'int', export: { header: 'upload_id', as: { node: 'LogUpload' } }, store: true },
  direction: { sql: 'direction', codec: 'text', export: { header: 'direction', as: 'text' }, store: true },
  protocol: { sql: 'protocol', codec: 'text', export: { header: 'protocol', as: 'text' }, store: true },
  internalIp: { sql: 'internal_ip', codec: 'text', export: { header: 'internal_ip', as: 'text' }, store: true },
  internalKey: { sql: 'internal_key', codec: 'text', store: true },
  internalPort: { sql: 'internal_port', codec: 'int', nullable: true, export: { header: 'internal_port', as: 'number' } },
  externalIp: { sql: 'external_ip', codec: 'text', export: { header: 'external_ip', as: 'text' }, store: true },
  externalKey: { sql: 'external_key', codec: 'text', store: true },
  externalPort: { sql: 'external_port', codec: 'int', nullable: true, export: { header: 'external_port', as: 'number' } },
  destinationPort: { sql: 'destination_port', codec: 'int', nullable: true, export: { header: 'destination_port', as: 'number' }, store: true },
  matchedSide: { sql: 'matched_side', codec: 'text', export: { header: 'matched_side', as: 'text' } },
  matchedIp: { sql: 'matched_ip', codec: 'text', export: { header: 'matched_ip', as: 'text' } },
  matchedCidr: { sql: 'matched_cidr', codec: 'text', export: { header: 'matched_cidr', as: 'text' }, store: true },
  iocId: { sql: 'ioc_id', codec: 'int', export: { header: 'ioc_id', as: { node: 'Ioc' } }, store: true },
  iocListId: { sql: 'ioc_list_id', codec: 'int', export: { header: 'ioc_list_id', as: { node: 'IocList', name: 'ioc_list' } }, store: true },
  severity: { sql: 'severity', codec: 'int', export: { header: 'severity', as: 'number' }, store: true },
  category: { sql: 'category', codec: 'text', export: { header: 'category', as: 'text' }, store: true },
  packetsForward: { sql: 'packets_forward', codec: 'int', export: { header: 'packets_sent', as: 'number' } },
  packetsReverse: { sql: 'packets_reverse', codec: 'int', export: { header: 'packets_received', as: 'number' } },
  bytesForward: { sql: 'bytes_forward', codec: 'bigint', export: { header: 'bytes_sent', as: 'number' } },
  bytesReverse: { sql: 'bytes_reverse', codec: 'bigint', export: { header: 'bytes_received', as: 'number' } },
  // How the hit was found (#17): set by the writer, which keeps them for a hit a re-run finds again.
  foundBy: { sql: 'found_by', codec: 'text', export: { header: 'found_by', as: 'text' }, store: true },
  foundAt: { sql: 'found_at', codec: 'instant', export: { header: 'found_at', as: 'instant' }, store: true },
  retroHuntId: { sql: 'retro_hunt_id', codec: 'int', nullable: true, export: { header: 'retro_hunt_id', as: { node: 'RetroHunt' } } },
} as const satisfies Record<string, ColumnSpec>;

type Columns = typeof FLOW_HIT_COLUMNS;
export type HitKey = keyof Columns;
/** The columns a new hit sets (all but the generated key). */
export type InsertKey = { [K in HitKey]: Columns[K] extends { generated: true } ? never : K }[HitKey];

/** The columns the in-memory report store reads. */
export type StoreKey = { [K in HitKey]: Columns[K] extends { store: true } ? K : never }[HitKey];

type ValueOf<C> = (C extends { codec: 'text' } ? string : number) | (C extends { nullable: true } ? null : never);

/** A hit about to be written, by property name. */
export type NewHit = { [K in InsertKey]: ValueOf<Columns[K]> };
/** A stored hit as the database gives it back, by property name. */
export type StoredHit = { [K in HitKey]: ValueOf<Columns[K]> };

export interface HitColumn {
  key: HitKey;
  sql: string;
  codec: Codec;
  nullable: boolean;
  export?: { header: string; as: ExportAs };
  store: boolean;
}

/** Every column, in declaration order. */
export const HIT_COLUMNS: readonly HitColumn[] = Object.entries(FLOW_HIT_COLUMNS).map(([k, c]: [string, ColumnSpec]) => ({
  key: k as HitKey,
  sql: c.sql,
  codec: c.codec,
  nullable: c.nullable ?? false,
  export: c.export,
  store: c.store ?? false,
}));

/** The columns the in-memory report store reads, in declaration order. */
export const STORE_COLUMNS = HIT_COLUMNS.filter((c) => c.store) as ReadonlyArray<HitColumn & { key: StoreKey }>;

/** The columns an INSERT sets, with their keys in NewHit. */
export const INSERT_COLUMNS: ReadonlyArray<{ key: InsertKey; sql: string }> = HIT_COLUMNS.filter((c) => !('generated' in FLOW_HIT_COLUMNS[c.key])).map((c) => ({
  key: c.key as InsertKey,
  sql: c.sql,
}));

/** The columns the export writes, in its order. */
export const EXPORTED_COLUMNS: ReadonlyArray<HitColumn & { export: { header: string; as: ExportAs } }> = HIT_COLUMNS.filter(
  (c): c is HitColumn & { export: { header: string; as: ExportAs } } => c.export !== undefined,
);

/** The export's header: each exported column, and after one that names an object, its name column. */
export const EXPORT_HEADER: readonly string[] = EXPORTED_COLUMNS.flatMap((c) => {
  const as = c.export.as;
  return typeof as === 'object' && as.name ? [c.export.header, as.name] : [c.export.header];
});

/**
 * A new hit from its connection and match: each column's value, beside the declaration above (NewHit is derived
 * from it, so a column declared and not set here, or set and not declared, does not compile). An object
 * literal: built in a loop over the declaration, a hit cost several times as much.
 */
export function newHit(s: HitSource): NewHit {
  const c = s.connection;
  return {
    accountId: s.accountId,
    firstSeenAt: Math.floor(c.firstMicros / 1000),
    lastSeenAt: Math.floor(c.lastMicros / 1000),
    deviceId: s.deviceId,
    uploadId: s.uploadId,
    direction: c.direction,
    protocol: protocolName(c.protocol),
    internalIp: c.internal.ip,
    internalKey: key(c.internal),
    internalPort: c.internal.port,
    externalIp: c.external.ip,
    externalKey: key(c.external),
    externalPort: c.external.port,
    destinationPort: c.responder.port,
    matchedSide: s.side,
    matchedIp: s.end.ip,
    matchedCidr: s.match.cidr,
    iocId: s.match.entryId,
    iocListId: s.match.listId,
    severity: s.match.severity,
    category: s.match.category,
    packetsForward: c.packetsForward,
    packetsReverse: c.packetsReverse,
    bytesForward: c.bytesForward,
    bytesReverse: c.bytesReverse,
    // The writer decides these (HitWriter.replaceUpload): a first run's hits are found by the upload, now.
    foundBy: 'UPLOAD',
    foundAt: 0,
    retroHuntId: null,
  };
}

/**
 * A hit's stable identity within its upload: the connection (protocol and both ends, as ours/theirs), the matched
 * side and the entry. A re-run of the upload (reprocess, retro-hunt) that finds the same hit gives the same
 * identity, whatever row id it gets: its foundBy/foundAt and its triage are keyed by it.
 */
export function hitIdentity(h: Pick<NewHit, 'protocol' | 'internalKey' | 'internalPort' | 'externalKey' | 'externalPort' | 'matchedSide' | 'iocId'>): string {
  return `${h.protocol}|${h.internalKey}|${h.internalPort ?? ''}|${h.externalKey}|${h.externalPort ?? ''}|${h.matchedSide}|${h.iocId}`;
}

/** The identity of a stored hit read as a row of flow_hit's columns (SQL's or ClickHouse's: numbers may be text). */
export function rowIdentity(r: {
  protocol: unknown;
  internal_key: unknown;
  internal_port: unknown;
  external_key: unknown;
  external_port: unknown;
  matched_side: unknown;
  ioc_id: unknown;
}): string {
  return hitIdentity({
    protocol: String(r.protocol),
    internalKey: String(r.internal_key),
    internalPort: r.internal_port == null ? null : Number(r.internal_port),
    externalKey: String(r.external_key),
    externalPort: r.external_port == null ? null : Number(r.external_port),
    matchedSide: String(r.matched_side) as NewHit['matchedSide'],
    iocId: Number(r.ioc_id),
  });
}

/**
 * Sums of paired columns that reports and roll-ups measure as one: both directions of a connection. Declared
 * once so the roll-ups, their rebuild SQL and the store's loader add the same columns.
 */
export const HIT_SUMS = {
  packets: ['packetsForward', 'packetsReverse'],
  bytes: ['bytesForward', 'bytesReverse'],
} as const satisfies Record<string, readonly InsertKey[]>;
export type HitSum = keyof typeof HIT_SUMS;

export function hitSum(hit: Pick<NewHit, (typeof HIT_SUMS)[HitSum][number]>, sum: HitSum): number {
  const [a, b] = HIT_SUMS[sum];
  return Number(hit[a]) + Number(hit[b]);
}

/** The sum as SQL over flow_hit's columns (optionally qualified by a table alias). */
export function hitSumSql(sum: HitSum, alias = ''): string {
  return HIT_SUMS[sum].map((k) => `${alias ? `${alias}.` : ''}${FLOW_HIT_COLUMNS[k].sql}`).join(' + ');
}
