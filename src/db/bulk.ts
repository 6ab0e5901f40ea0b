import { Duplex, Readable } from 'node:stream';
import { nextTurn } from '../common/async/next-turn';
import { EntityManager } from 'typeorm';

/** The SQL dialect behind a manager: the only place that asks. */
export function dialectOf(em: EntityManager): 'sqlite' | 'mysql' {
  return em.connection.options.type === 'better-sqlite3' ? 'sqlite' : 'mysql';
}

// SQLite allows 32766 bound parameters per statement; MySQL 65535. Stay well under both, and keep
// statements small enough that a batch never holds a lock for long.
const MAX_PARAMS = 16_000;
const MAX_ROWS = 1_000;
/** Statement time between two turns given back to the event loop. */
const SLICE_MS = 15;

/**
 * Multi-row INSERTs (TypeORM's save() sends one statement per row). With `ignoreDuplicates`, rows that hit a
 * unique index are skipped (INSERT IGNORE / INSERT OR IGNORE) and the return value counts only inserted rows.
 * Must run inside a transaction (`em` from `dataSource.transaction`) when the caller needs all-or-nothing.
 */
export async function bulkInsert(
  em: EntityManager,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  options: { ignoreDuplicates?: boolean } = {},
): Promise<number> {
  return insertChunks(
    em,
    table,
    columns,
    rows,
    (row, params) => {
      for (const v of row) params.push(v);
    },
    options,
  );
}

/**
 * bulkInsert of named rows: each column's value is `row[key]`, its values pushed straight into the statement's
 * parameters (no array per row).
 */
export async function bulkInsertObjects<K extends string>(
  em: EntityManager,
  table: string,
  columns: ReadonlyArray<{ key: K; sql: string }>,
  rows: ReadonlyArray<{ readonly [k in K]: unknown }>,
  options: { ignoreDuplicates?: boolean } = {},
): Promise<number> {
  const keys = columns.map((c) => c.key);
  return insertChunks(
    em,
    table,
    columns.map((c) => c.sql),
    rows,
    (row, params) => {
      for (let k = 0; k < keys.length; k++) params.push(row[keys[k]]);
    },
    options,
  );
}

async function insertChunks<R>(
  em: EntityManager,
  table: string,
  columns: readonly string[],
  rows: readonly R[],
  values: (row: R, params: unknown[]) => void,
  options: { ignoreDuplicates?: boolean },
): Promise<number> {
  if (rows.length === 0) return 0;
  const dialect = dialectOf(em);
  const quote = (name: string) => (dialect === 'mysql' ? `\`${name}\`` : `"${name}"`);
  const verb = options.ignoreDuplicates ? (dialect === 'mysql' ? 'INSERT IGNORE INTO' : 'INSERT OR IGNORE INTO') : 'INSERT INTO';
  const head = `${verb} ${quote(table)} (${columns.map(quote).join(', ')}) VALUES `;
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const perStatement = Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / columns.length)));
  const runner = em.queryRunner;
  if (!runner) throw new Error('bulkInsert needs a transactional EntityManager');
  let inserted = 0;
  let slice = performance.now();
  for (let i = 0; i < rows.length; i += perStatement) {
    const end = Math.min(rows.length, i + perStatement);
    const params: unknown[] = [];
    for (let j = i; j < end; j++) values(rows[j], params);
    const result = await runner.query(head + tuple.concat(`, ${tuple}`.repeat(end - i - 1)), params, true);
    inserted += Number(result.affected ?? end - i);
    // SQLite runs each statement synchronously: tens of thousands of rows would hold the event loop throughout.
    if (end < rows.length && performance.now() - slice > SLICE_MS) {
      await nextTurn();
      slice = performance.now();
    }
  }
  return inserted;
}

/** Runs a write statement and returns how many rows it changed, on either driver. */
export async function execute(em: EntityManager, sql: string, params: unknown[] = []): Promise<number> {
  const own = em.queryRunner ? null : em.connection.createQueryRunner();
  const runner = em.queryRunner ?? own!;
  try {
    const result = await runner.query(sql, params, true);
    return Number(result.affected ?? 0);
  } finally {
    if (own) await own.release();
  }
}

/** Servers (or clients) that refused LOAD DATA LOCAL INFILE: multi-row INSERTs for them from then on. */
const localLoadRefused = new WeakSet<object>();

/**
 * Error numbers of a refused LOAD DATA LOCAL INFILE (local_infile off on the server, the default on MySQL 8, or
 * local files off on the client): ER_NOT_ALLOWED_COMMAND, MySQL's ER_CLIENT_LOCAL_FILES_DISABLED and
 * CR_LOAD_DATA_LOCAL_INFILE_REJECTED, MariaDB's ER_LOAD_INFILE_CAPABILITY_DISABLED (seen here for both causes).
 * The server refuses before it reads a byte, so nothing was written.
 */
const LOCAL_LOAD_REFUSED = new Set([1148, 3948, 2068, 4166]);

/** One value in LOAD DATA's default text format (tab-separated, backslash escapes, \N for NULL). */
function loadField(v: unknown): string {
  if (v == null) return '\\N';
  if (typeof v === 'bigint') return String(v);
  // LOAD DATA IGNORE would store NaN or Infinity as 0 with a warning; an INSERT refuses them.
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`bulkLoad: ${v} is not a value a column can hold`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v !== 'string') throw new TypeError(`bulkLoad: a ${typeof v} value has no text form`);
  return /[\\\t\n\r\0]/.test(v) ? v.replace(/[\\\t\n\r\0]/g, (c) => LOAD_ESCAPES[c]) : v;
}

const LOAD_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };

interface MysqlCallbackConnection {
  query(options: { sql: string; infileStreamFactory: () => Readable }, cb: (err: unknown, result: { affectedRows?: number }) => void): void;
  /** The socket. */
  stream: Duplex;
}

/**
 * bulkInsert with `ignoreDuplicates`, for large batches: on MySQL one LOAD DATA LOCAL INFILE per call, the rows
 * streamed as text (about 1.6x the rate of multi-row INSERTs into an indexed table here; the server parses no SQL per
 * row). Rows that hit a unique index are skipped, as INSERT IGNORE skips them (LOCAL loads always do), with the same
 * warnings for values that do not fit; the return value counts inserted rows. A server that refuses local loads gets
 * bulkInsert's INSERTs, and is not asked again. SQLite: bulkInsert. Values are numbers, strings or null.
 *
 * `set` gives columns the same integer in every row (a list's ID, an instant): LOAD DATA's SET clause, so that they
 * are neither formatted nor parsed per row; the INSERTs append them to each row.
 */
export async function bulkLoad(
  em: EntityManager,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  set: Readonly<Record<string, number>> = {},
): Promise<number> {
  if (rows.length === 0) return 0;
  const constants = Object.entries(set);
  for (const [column, value] of constants) {
    if (!Number.isSafeInteger(value)) throw new TypeError(`bulkLoad: ${column} = ${value} is not an integer`);
  }
  const inserts = () =>
    bulkInsert(em, table, [...columns, ...constants.map(([c]) => c)], constants.length ? rows.map((row) => [...row, ...constants.map(([, v]) => v)]) : rows, {
      ignoreDuplicates: true,
    });
  if (dialectOf(em) !== 'mysql' || localLoadRefused.has(em.connection)) return inserts();
  const runner = em.queryRunner;
  if (!runner) throw new Error('bulkLoad needs a transactional EntityManager');
  const connection = (await runner.connect()) as MysqlCallbackConnection;
  const sql =
    `LOAD DATA LOCAL INFILE 'rows' IGNORE INTO TABLE \`${table}\` CHARACTER SET utf8mb4 ` +
    `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${columns.map((c) => `\`${c}\``).join(', ')})` +
    (constants.length ? ` SET ${constants.map(([c, v]) => `\`${c}\` = ${v}`).join(', ')}` : '');
  // A server that closes the connection while it reads the rows (KILL CONNECTION, a restart) leaves the socket
  // half-closed with rows still queued to send: mysql2 waits for them to drain and never answers (seen with MariaDB
  // 10.11 and mysql2 3.24). The socket is destroyed with an error instead, which fails the call and the connection.
  const closed = () =>
    connection.stream.destroy(Object.assign(new Error('The server closed the connection during LOAD DATA.'), { code: 'PROTOCOL_CONNECTION_LOST' }));
  connection.stream.once('end', closed);
  // mysql2 adds 'pause' and 'drain' listeners to the socket for the load and removes them only when it succeeds or
  // the connection fails: after an error of the statement (KILL QUERY, a lock wait timeout) or of the rows, the
  // pooled connection would keep them, one pair more each time. Those it adds are removed here.
  const before = { pause: connection.stream.listeners('pause'), drain: connection.stream.listeners('drain') };
  try {
    return await new Promise<number>((resolve, reject) =>
      connection.query({ sql, infileStreamFactory: () => Readable.from(loadChunks(rows)) }, (err, result) =>
        err ? reject(err) : resolve(Number(result?.affectedRows ?? 0)),
      ),
    );
  } catch (err) {
    if (!LOCAL_LOAD_REFUSED.has(Number((err as { errno?: unknown }).errno))) throw err;
    localLoadRefused.add(em.connection);
    return inserts();
  } finally {
    connection.stream.removeListener('end', closed);
    for (const event of ['pause', 'drain'] as const)
      for (const listener of connection.stream.listeners(event))
        if (!before[event].includes(listener)) connection.stream.removeListener(event, listener as (...args: unknown[]) => void);
  }
}

/** The rows as LOAD DATA text, in chunks of about 64 KB (formatted while the server reads the ones before). */
function* loadChunks(rows: readonly unknown[][]): Generator<Buffer> {
  let text = '';
  for (const row of rows) {
    for (let c = 0; c < row.length; c++) text += c === 0 ? loadField(row[c]) : `\t${loadField(row[c])}`;
    text += '\n';
    if (text.length >= 65_536) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
  if (text) yield Buffer.from(text, 'utf8');
}
