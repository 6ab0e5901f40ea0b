import { NodeTypeName, toGlobalId } from '../../../common/ids/global-id';
import { EXPORT_HEADER, EXPORTED_COLUMNS, ExportAs } from '../../flow-hit/flow-hit.columns';

/** The export's header (CSV) and NDJSON keys, from flow_hit's declaration: scripts depend on them. */
export const EXPORT_COLUMNS = EXPORT_HEADER;

/** flow_hit columns an export reads, by SQL name (the raw rows' column names). */
export const EXPORT_SQL_COLUMNS: readonly string[] = EXPORTED_COLUMNS.map((c) => c.sql);

/**
 * A raw flow_hit row as an array (better-sqlite3 builds an object per row at about half the speed), its
 * values in the order of the result's column names. mysql2 may hand BIGINT (instants, byte counters) back as strings.
 */
export type ExportRow = ReadonlyArray<string | number | null>;

export function csvCell(v: unknown): string {
  if (v == null) return '';
  const s = String(v);
  // Quote when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula. A negative number
  // is left as it is, but only a whole one: "-2+3+cmd|..." starts with a minus and a digit too, and is a formula.
  const safe = /^[=+\-@]/.test(s) && !/^-\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

// One test per name cell; csvCell only for the rare one that needs quoting or a formula prefix.
const CSV_SPECIAL = /^[=+\-@]|[",\n\r]/;

const HOUR = 3_600_000;

/**
 * One batch's lines written straight into a Buffer. Lines built as template strings were ropes of ~50 pieces,
 * which then had to be flattened and UTF-8-encoded again for the socket: with the garbage they made, that was
 * more than half of the export's CPU after the SQL. Here ASCII text is copied a character at a time and numbers
 * are written as digits; anything else (non-ASCII, a cell that needs CSV quoting or JSON escaping, a number
 * that is not a safe integer) takes the builtin formatting, so the bytes are exactly those of csvCell,
 * JSON.stringify, String(Number(v)) and Date#toISOString.
 */
class LineBuffer {
  private buf: Buffer;
  private pos = 0;

  constructor(private capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** The bytes written since the last take, as a Buffer of their own: the socket may hold it while the next batch is written. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    // Sized by the batch before (most are alike), so a batch rarely grows its buffer.
    this.capacity = Math.max(this.capacity, this.pos + (this.pos >> 3));
    this.buf = Buffer.allocUnsafe(this.capacity);
    this.pos = 0;
    return out;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.pos++] = c;
  }

  /** Any string, as UTF-8. */
  text(s: string): void {
    const start = this.pos;
    this.room(s.length);
    const buf = this.buf;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.pos = start;
        this.room(s.length * 3);
        this.pos += this.buf.write(s, this.pos, 'utf8');
        return;
      }
      buf[start + i] = c;
    }
    this.pos = start + s.length;
  }

  /** text[start..end), which the caller knows to be ASCII. */
  ascii(text: string, start: number, end: number): void {
    this.room(end - start);
    const buf = this.buf;
    let at = this.pos;
    for (let i = start; i < end; i++) buf[at++] = text.charCodeAt(i);
    this.pos = at;
  }

  /**
   * The CSV cell of the TabSeparated field text[start..end) when it is plain (not empty, printable ASCII without a
   * backslash escape, needing no quoting nor formula prefix): true. False, writing nothing, for any other.
   */
  csvPlain(text: string, start: number, end: number): boolean {
    if (end === start) return false;
    const first = text.charCodeAt(start);
    if (first === 0x3d || first === 0x2b || first === 0x2d || first === 0x40) return false;
    this.room(end - start);
    const buf = this.buf;
    const at = this.pos - start;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22 || c === 0x2c || c === 0x5c || c < 0x20 || c > 0x7e) return false;
      buf[at + i] = c;
    }
    this.pos = at + end;
    return true;
  }

  /** The JSON string of the TabSeparated field text[start..end) when it is plain (jsonText's rules): true; else false, writing nothing. */
  jsonPlain(text: string, start: number, end: number): boolean {
    this.room(end - start + 2);
    const buf = this.buf;
    const at = this.pos + 1 - start;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return false;
      buf[at + i] = c;
    }
    buf[this.pos] = 0x22;
    buf[at + end] = 0x22;
    this.pos = at + end + 1;
    return true;
  }

  /** A CSV cell: `s` as it is when it needs no quoting nor formula prefix (csvCell's rules), else csvCell(s). */
  csvText(v: string | number | null): void {
    if (v == null) return;
    if (typeof v !== 'string') return this.text(csvCell(v));
    const start = this.pos;
    this.room(v.length);
    const buf = this.buf;
    const first = v.charCodeAt(0);
    // = + - @ (a formula) at the start, or " , \n \r anywhere, or non-ASCII: csvCell decides.
    let plain = !(first === 0x3d || first === 0x2b || first === 0x2d || first === 0x40);
    for (let i = 0; plain && i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x22 || c === 0x2c || c === 0x0a || c === 0x0d || c > 0x7f) plain = false;
      else buf[start + i] = c;
    }
    if (plain) this.pos = start + v.length;
    else this.text(csvCell(v));
  }

  /** A JSON value: a printable-ASCII string without `"` or `\` quoted as it is, anything else JSON.stringify's text. */
  jsonText(v: string | number | null): void {
    if (typeof v !== 'string') return this.text(JSON.stringify(v));
    const start = this.pos;
    this.room(v.length + 2);
    const buf = this.buf;
    buf[start] = 0x22;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return this.text(JSON.stringify(v));
      buf[start + 1 + i] = c;
    }
    buf[start + 1 + v.length] = 0x22;
    this.pos = start + v.length + 2;
  }

  /** String(Number(v)): digits for a safe integer (mysql2 may give BIGINTs as strings), the builtin otherwise. */
  num(v: string | number): void {
    const n = typeof v === 'number' ? v : Number(v);
    if (!(Number.isSafeInteger(n) && n >= 0)) return this.text(String(n));
    let width = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) width++;
    this.digits(n, width);
  }

  /** A non-negative integer in exactly `width` digits, zero-padded. */
  digits(n: number, width: number): void {
    this.room(width);
    const buf = this.buf;
    let at = this.pos + width;
    this.pos = at;
    for (let i = 0; i < width; i++) {
      const q = Math.floor(n / 10);
      buf[--at] = 0x30 + (n - q * 10);
      n = q;
    }
  }
}

/**
 * Date#toISOString, with the "YYYY-MM-DDTHH:" part made once per hour: rows come in time order, and two Date
 * objects per row were a visible share of the export's time. Instants before 1970 or from year 10000 on take
 * the builtin (its signed six-digit years).
 */
function isoWriter(): (out: LineBuffer, value: number | string | null) => void {
  let hourStart = NaN;
  let prefix = '';
  return (out, value) => {
    const ms = Number(value);
    if (!(Number.isInteger(ms) && ms >= 0 && ms < 253402300800000)) return out.text(new Date(ms).toISOString());
    let inHour = ms - hourStart;
    if (!(inHour >= 0 && inHour < HOUR)) {
      hourStart = ms - (ms % HOUR);
      prefix = new Date(hourStart).toISOString().slice(0, 14);
      inHour = ms - hourStart;
    }
    const s = Math.floor(inHour / 1000);
    out.text(prefix);
    out.digits(Math.floor(s / 60), 2);
    out.byte(0x3a);
    out.digits(s % 60, 2);
    out.byte(0x2e);
    out.digits(inHour % 1000, 3);
    out.byte(0x5a);
  };
}

/**
 * toGlobalId for one type, without a Buffer per call: every row's own ID is distinct, so it cannot be cached, and
 * Buffer.from(...).toString('base64url') per row was a quarter of the formatting time. When `pd1:Type:` is a whole
 * number of 3-byte groups, its base64 is a fixed head and the digits encode 3 at a time from tables (base64url
 * has no padding, so a 1- or 2-digit tail is 2 or 3 characters). Other types, and anything but a non-negative
 * safe integer, take toGlobalId.
 */
function globalIdWriter(type: NodeTypeName): (out: LineBuffer, id: number) => void {
  const prefix = `pd1:${type}:`;
  if (prefix.length % 3 !== 0) return (out, id) => out.text(toGlobalId(type, id));
  const head = Buffer.from(prefix, 'latin1').toString('base64url');
  const table = (digits: number) =>
    Array.from({ length: 10 ** digits }, (_, n) => Buffer.from(String(n).padStart(digits, '0'), 'latin1').toString('base64url'));
  const [one, two, three] = [table(1), table(2), table(3)];
  return (out, id) => {
    if (!(Number.isSafeInteger(id) && id >= 0)) return out.text(toGlobalId(type, id));
    const s = String(id);
    out.text(head);
    let i = 0;
    for (; i + 3 <= s.length; i += 3) out.text(three[(s.charCodeAt(i) - 48) * 100 + (s.charCodeAt(i + 1) - 48) * 10 + (s.charCodeAt(i + 2) - 48)]);
    if (s.length - i === 2) out.text(two[(s.charCodeAt(i) - 48) * 10 + (s.charCodeAt(i + 1) - 48)]);
    else if (s.length - i === 1) out.text(one[s.charCodeAt(i) - 48]);
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
  /** The batch's lines, each with its newline, as UTF-8. */
  lines(rows: readonly ExportRow[]): Buffer;
  /**
   * The same lines from rows as ClickHouse's TabSeparated text (AnalyticsFlowHits.exportRows: one line per row, its
   * fields in the formatter's `columns` order). The bytes are those lines() makes of the same rows decoded (tsvField()).
   */
  tsv(text: string): Buffer;
}

/** ClickHouse's TabSeparated output escapes exactly these characters (\N alone is NULL). */
const TSV_UNESCAPE: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0', "'": "'", '\\': '\\' };

/** The value of the TabSeparated field text[start..end): NULL for \N, else the text unescaped. */
export function tsvField(text: string, start: number, end: number): string | null {
  if (end - start === 2 && text.charCodeAt(start) === 0x5c && text.charCodeAt(start + 1) === 0x4e) return null;
  const raw = text.slice(start, end);
  return raw.includes('\\') ? raw.replace(/\\([\s\S])/g, (_, c: string) => TSV_UNESCAPE[c] ?? c) : raw;
}

/**
 * Whether a field is a plain integer: an optional minus and 1 to 15 digits without a leading zero (exact as a
 * double), not -0. Its characters are then what String(Number(field)) prints, so a cell can copy them.
 */
function isPlainInteger(text: string, start: number, end: number): boolean {
  let i = start;
  const negative = i < end && text.charCodeAt(i) === 0x2d;
  if (negative) i++;
  const digits = end - i;
  if (digits < 1 || digits > 15 || (text.charCodeAt(i) === 0x30 && (digits > 1 || negative))) return false;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** The value of a plain integer field (isPlainInteger() said so). */
function integerAt(text: string, start: number, end: number): number {
  let i = start;
  const negative = text.charCodeAt(i) === 0x2d;
  if (negative) i++;
  let n = 0;
  for (; i < end; i++) n = n * 10 + (text.charCodeAt(i) - 0x30);
  return negative ? -n : n;
}

/** Names of the objects an exported column names (flow-hit.columns.ts `{ node, name }`), by type and id. */
export type ExportNames = Partial<Record<NodeTypeName, Map<number, string>>>;

type Cell = (out: LineBuffer, v: string | number | null) => void;
/** A cell from the TabSeparated field text[start..end), written as the Cell of its value (tsvField()) would write it. */
type TsvCell = (out: LineBuffer, text: string, start: number, end: number) => void;

/**
 * Formats raw rows whose values come in `columns` order (the SQL column names of EXPORT_SQL_COLUMNS, in whatever
 * order the query builder emitted them): one cell per exported column as flow-hit.columns.ts declares it, keys
 * exactly as EXPORT_COLUMNS, ISO instants, global IDs, csvCell quoting (CSV) or JSON.stringify of a record in
 * column order (NDJSON). Names come from `names` (a hit of a deleted device or list has none: empty / null).
 */
export function exportLineFormatter(format: ExportFormat, names: ExportNames, columns: readonly string[]): ExportLines {
  const out = new LineBuffer(1 << 20);
  const csv = format === 'csv';
  const str = JSON.stringify;
  const csvName = (v: string | null | undefined) => (v == null ? '' : CSV_SPECIAL.test(v) ? csvCell(v) : v);
  /** Each column's cell from a value, and from a TabSeparated field: the same bytes, the field's without decoding it when it is plain. */
  const cellOf = (as: ExportAs): { value: Cell; tsv: TsvCell } => {
    const fromValue = (value: Cell, plain: TsvCell | null): { value: Cell; tsv: TsvCell } => ({
      value,
      tsv: plain ?? ((o, text, start, end) => value(o, tsvField(text, start, end))),
    });
    if (as === 'instant') {
      // One writer (and hour cache) per column: first_seen_at is ascending, last_seen_at mostly within its hour.
      const iso = isoWriter();
      const value: Cell = (o, v) => {
        if (!csv) o.byte(0x22);
        iso(o, v);
        if (!csv) o.byte(0x22);
      };
      return fromValue(value, (o, text, start, end) => {
        if (!isPlainInteger(text, start, end)) return value(o, tsvField(text, start, end));
        if (!csv) o.byte(0x22);
        iso(o, integerAt(text, start, end));
        if (!csv) o.byte(0x22);
      });
    }
    if (as === 'number') {
      const value: Cell = csv ? (o, v) => v != null && o.num(v) : (o, v) => (v == null ? o.text('null') : o.num(v));
      return fromValue(value, (o, text, start, end) => (isPlainInteger(text, start, end) ? o.ascii(text, start, end) : value(o, tsvField(text, start, end))));
    }
    if (as === 'text') {
      const value: Cell = csv ? (o, v) => o.csvText(v) : (o, v) => o.jsonText(v);
      return fromValue(value, (o, text, start, end) => {
        if (!(csv ? o.csvPlain(text, start, end) : o.jsonPlain(text, start, end))) value(o, tsvField(text, start, end));
      });
    }
    const { node, name } = as;
    if (!name && node === 'FlowHit') {
      // The row's own ID: distinct per row, so written without a cache.
      const id = globalIdWriter(node);
      const value: Cell = (o, v) => {
        if (!csv) o.byte(0x22);
        id(o, Number(v));
        if (!csv) o.byte(0x22);
      };
      return fromValue(value, (o, text, start, end) => {
        if (!isPlainInteger(text, start, end)) return value(o, tsvField(text, start, end));
        if (!csv) o.byte(0x22);
        id(o, integerAt(text, start, end));
        if (!csv) o.byte(0x22);
      });
    }
    const byId = name ? names[node] : undefined;
    if (name && !byId) throw new Error(`export: no names of ${node}`);
    // IDs repeat across rows (devices, lists, uploads, entries): each one's text is made once per export, with
    // its name cell when it has one.
    const make = (n: number): string => {
      const gid = csv ? toGlobalId(node, n) : `"${toGlobalId(node, n)}"`;
      if (!name) return gid;
      return csv ? `${gid},${csvName(byId!.get(n))}` : `${gid},${str(name)}:${str(byId!.get(n) ?? null)}`;
    };
    const cache = new Map<number, string>();
    // A nullable reference (retro_hunt_id): empty in CSV, null in NDJSON.
    const value: Cell = (o, v) => (v == null ? (csv ? undefined : o.text('null')) : o.text(cached(cache, Number(v), make)));
    return fromValue(value, (o, text, start, end) =>
      isPlainInteger(text, start, end) ? o.text(cached(cache, integerAt(text, start, end), make)) : value(o, tsvField(text, start, end)),
    );
  };
  const cellsOf = EXPORTED_COLUMNS.map((c) => cellOf(c.export.as));
  const cells = cellsOf.map((c) => c.value);
  const tsvCells = cellsOf.map((c) => c.tsv);
  const at = EXPORTED_COLUMNS.map((c) => {
    const i = columns.indexOf(c.sql);
    if (i < 0) throw new Error(`export: the query did not select ${c.sql}`);
    return i;
  });
  // NDJSON: `{"key":` before the first value, `,"key":` before each other.
  const keys = EXPORTED_COLUMNS.map((c, i) => `${i === 0 ? '{' : ','}${str(c.export.header)}:`);
  const n = cells.length;
  return {
    lines(rows) {
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        if (csv) {
          for (let i = 0; i < n; i++) {
            if (i > 0) out.byte(0x2c);
            cells[i](out, row[at[i]]);
          }
          out.byte(0x0a);
        } else {
          for (let i = 0; i < n; i++) {
            out.text(keys[i]);
            cells[i](out, row[at[i]]);
          }
          out.text('}\n');
        }
      }
      return out.take();
    },
    tsv(text) {
      const width = columns.length;
      const starts = new Int32Array(width);
      const ends = new Int32Array(width);
      let line = 0;
      while (line < text.length) {
        // The line's fields: tabs and newlines inside values are escaped, so each one ends a field.
        let field = 0;
        let start = line;
        let i = line;
        for (; ; i++) {
          const c = text.charCodeAt(i);
          if (c !== 0x09 && c !== 0x0a && i < text.length) continue;
          if (field === width) throw new Error(`export: a ClickHouse row has more than the ${width} columns asked for`);
          starts[field] = start;
          ends[field++] = i;
          start = i + 1;
          if (c !== 0x09) break;
        }
        if (field !== width || i >= text.length) throw new Error(`export: a ClickHouse row has ${field} of the ${width} columns asked for, or no line end`);
        line = i + 1;
        if (csv) {
          for (let k = 0; k < n; k++) {
            if (k > 0) out.byte(0x2c);
            tsvCells[k](out, text, starts[at[k]], ends[at[k]]);
          }
          out.byte(0x0a);
        } else {
          for (let k = 0; k < n; k++) {
            out.text(keys[k]);
            tsvCells[k](out, text, starts[at[k]], ends[at[k]]);
          }
          out.text('}\n');
        }
      }
      return out.take();
    },
  };
}
