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
