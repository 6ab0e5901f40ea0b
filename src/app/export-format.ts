import { NodeTypeName, toGlobalId } from '../common/ids/global-id';

/** Stable column names: scripts depend on them. Add at the end, never rename. */
export const EXPORT_COLUMNS = [
  'id',
  'first_seen_at',
  'last_seen_at',
  'device_id',
  'device',
  'upload_id',
  'direction',
  'protocol',
  'internal_ip',
  'internal_port',
  'external_ip',
  'external_port',
  'destination_port',
  'matched_side',
  'matched_ip',
  'matched_cidr',
  'ioc_id',
  'ioc_list_id',
  'ioc_list',
  'severity',
  'category',
  'packets_sent',
  'packets_received',
  'bytes_sent',
  'bytes_received',
] as const;

/** flow_hit columns an export reads, by SQL name (the raw rows' column names). */
export const EXPORT_SQL_COLUMNS = [
  'id',
  'first_seen_at',
  'last_seen_at',
  'device_id',
  'upload_id',
  'direction',
  'protocol',
  'internal_ip',
  'internal_port',
  'external_ip',
  'external_port',
  'destination_port',
  'matched_side',
  'matched_ip',
  'matched_cidr',
  'ioc_id',
  'ioc_list_id',
  'severity',
  'category',
  'packets_forward',
  'packets_reverse',
  'bytes_forward',
  'bytes_reverse',
] as const;

/**
 * A raw flow_hit row as an array (better-sqlite3 builds a 23-key object per row at about half the speed), its
 * values in the order of the result's column names. mysql2 may hand BIGINT (instants, byte counters) back as strings.
 */
export type ExportRow = ReadonlyArray<string | number | null>;

export function csvCell(v: unknown): string {
  if (v == null) return '';
  const s = String(v);
  // Quote when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

// One test per text cell; csvCell only for the rare cell that needs quoting or a formula prefix.
const CSV_SPECIAL = /^[=+\-@]|[",\n\r]/;
const csvText = (v: unknown): string => (v == null ? '' : typeof v === 'string' && !CSV_SPECIAL.test(v) ? v : csvCell(v));
const csvNum = (v: unknown): string => (v == null ? '' : String(Number(v)));
const jsonNum = (v: unknown): string => (v == null ? 'null' : String(Number(v)));

const HOUR = 3_600_000;
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));
/**
 * Date#toISOString, with the "YYYY-MM-DDTHH:" part made once per hour: rows come in time order, and two Date
 * objects per row were a visible share of the export's time. Instants before 1970 or from year 10000 on take
 * the builtin (its signed six-digit years).
 */
function isoFormatter(): (ms: number | string | null) => string {
  let hourStart = NaN;
  let prefix = '';
  return (value) => {
    const ms = Number(value);
    if (!(Number.isInteger(ms) && ms >= 0 && ms < 253402300800000)) return new Date(ms).toISOString();
    let inHour = ms - hourStart;
    if (!(inHour >= 0 && inHour < HOUR)) {
      hourStart = ms - (ms % HOUR);
      prefix = new Date(hourStart).toISOString().slice(0, 14);
      inHour = ms - hourStart;
    }
    const s = Math.floor(inHour / 1000);
    return `${prefix}${pad2(Math.floor(s / 60))}:${pad2(s % 60)}.${pad3(inHour % 1000)}Z`;
  };
}

// Devices, lists, uploads and IOC entries repeat across rows: their ID strings are made once per export.
// Bounded, so an export over millions of distinct entries cannot grow memory without limit.
const CACHE_MAX = 50_000;
function cached(cache: Map<number, string>, id: number, make: (id: number) => string): string {
  let v = cache.get(id);
  if (v === undefined) {
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(id, (v = make(id)));
  }
  return v;
}

export type ExportFormat = 'csv' | 'ndjson';

export interface ExportLines {
  /** One line, with its newline. */
  line(r: ExportRow): string;
  /** The keyset cursor after a row: (first_seen_at, id). */
  cursor(r: ExportRow): { at: number; id: number };
}

/**
 * Formats raw rows whose values come in `columns` order (the SQL column names of EXPORT_SQL_COLUMNS, in whatever
 * order the query builder emitted them): values and key order exactly as EXPORT_COLUMNS, ISO instants, global
 * IDs, csvCell quoting (CSV) or JSON.stringify of a record in column order (NDJSON).
 * Names of devices and lists come from the maps (a hit of a deleted one has none: empty / null).
 */
export function exportLineFormatter(format: ExportFormat, deviceName: Map<number, string>, listName: Map<number, string>, columns: readonly string[]): ExportLines {
  const at = (c: (typeof EXPORT_SQL_COLUMNS)[number]): number => {
    const i = columns.indexOf(c);
    if (i < 0) throw new Error(`export: the query did not select ${c}`);
    return i;
  };
  const [ID, FIRST_SEEN, LAST_SEEN, DEVICE, UPLOAD, DIRECTION, PROTOCOL, INTERNAL_IP, INTERNAL_PORT, EXTERNAL_IP, EXTERNAL_PORT, DESTINATION_PORT] =
    EXPORT_SQL_COLUMNS.slice(0, 12).map(at);
  const [MATCHED_SIDE, MATCHED_IP, MATCHED_CIDR, IOC, IOC_LIST, SEVERITY, CATEGORY, PACKETS_FORWARD, PACKETS_REVERSE, BYTES_FORWARD, BYTES_REVERSE] =
    EXPORT_SQL_COLUMNS.slice(12).map(at);
  const cursor = (r: ExportRow) => ({ at: Number(r[FIRST_SEEN]), id: Number(r[ID]) });
  const idCache = (type: NodeTypeName) => {
    const cache = new Map<number, string>();
    const make = (id: number) => toGlobalId(type, id);
    return (id: unknown) => cached(cache, Number(id), make);
  };
  const uploadId = idCache('LogUpload');
  const iocId = idCache('Ioc');
  // first_seen_at is ascending; last_seen_at is mostly within the same hour: one formatter (and cache) each.
  const firstIso = isoFormatter();
  const lastIso = isoFormatter();
  // Device and list: the ID and the name cell together, already formatted.
  const devices = new Map<number, string>();
  const lists = new Map<number, string>();
  if (format === 'csv') {
    const device = (id: number) => `${toGlobalId('Device', id)},${csvText(deviceName.get(id))}`;
    const list = (id: number) => `${toGlobalId('IocList', id)},${csvText(listName.get(id))}`;
    const line = (r: ExportRow) =>
      `${toGlobalId('FlowHit', Number(r[ID]))},${firstIso(r[FIRST_SEEN])},${lastIso(r[LAST_SEEN])},${cached(devices, Number(r[DEVICE]), device)},` +
      `${uploadId(r[UPLOAD])},${csvText(r[DIRECTION])},${csvText(r[PROTOCOL])},${csvText(r[INTERNAL_IP])},${csvNum(r[INTERNAL_PORT])},` +
      `${csvText(r[EXTERNAL_IP])},${csvNum(r[EXTERNAL_PORT])},${csvNum(r[DESTINATION_PORT])},${csvText(r[MATCHED_SIDE])},${csvText(r[MATCHED_IP])},` +
      `${csvText(r[MATCHED_CIDR])},${iocId(r[IOC])},${cached(lists, Number(r[IOC_LIST]), list)},${csvNum(r[SEVERITY])},${csvText(r[CATEGORY])},` +
      `${csvNum(r[PACKETS_FORWARD])},${csvNum(r[PACKETS_REVERSE])},${csvNum(r[BYTES_FORWARD])},${csvNum(r[BYTES_REVERSE])}\n`;
    return { line, cursor };
  }
  const str = JSON.stringify;
  const device = (id: number) => `"device_id":"${toGlobalId('Device', id)}","device":${str(deviceName.get(id) ?? null)}`;
  const list = (id: number) => `"ioc_list_id":"${toGlobalId('IocList', id)}","ioc_list":${str(listName.get(id) ?? null)}`;
  // Global IDs (base64url) and ISO instants need no JSON escaping.
  const line = (r: ExportRow) =>
    `{"id":"${toGlobalId('FlowHit', Number(r[ID]))}","first_seen_at":"${firstIso(r[FIRST_SEEN])}","last_seen_at":"${lastIso(r[LAST_SEEN])}",` +
    `${cached(devices, Number(r[DEVICE]), device)},"upload_id":"${uploadId(r[UPLOAD])}","direction":${str(r[DIRECTION])},` +
    `"protocol":${str(r[PROTOCOL])},"internal_ip":${str(r[INTERNAL_IP])},"internal_port":${jsonNum(r[INTERNAL_PORT])},` +
    `"external_ip":${str(r[EXTERNAL_IP])},"external_port":${jsonNum(r[EXTERNAL_PORT])},"destination_port":${jsonNum(r[DESTINATION_PORT])},` +
    `"matched_side":${str(r[MATCHED_SIDE])},"matched_ip":${str(r[MATCHED_IP])},"matched_cidr":${str(r[MATCHED_CIDR])},` +
    `"ioc_id":"${iocId(r[IOC])}",${cached(lists, Number(r[IOC_LIST]), list)},"severity":${jsonNum(r[SEVERITY])},` +
    `"category":${str(r[CATEGORY])},"packets_sent":${jsonNum(r[PACKETS_FORWARD])},"packets_received":${jsonNum(r[PACKETS_REVERSE])},` +
    `"bytes_sent":${jsonNum(r[BYTES_FORWARD])},"bytes_received":${jsonNum(r[BYTES_REVERSE])}}\n`;
  return { line, cursor };
}
