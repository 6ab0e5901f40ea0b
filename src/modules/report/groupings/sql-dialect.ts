import { DataSource } from 'typeorm';
import { dialectOf } from '../../../db/bulk';

/** Where the SQL executor's databases differ; everything else it sends is portable. */
export interface SqlDialect {
  /** Integer division of two integer expressions. */
  intDiv(a: string, b: number): string;
  /** Text joined, for one COUNT(DISTINCT) over several columns. */
  concat(parts: string[]): string;
  /** An ORDER BY term putting text in byte order, as SQLite and JavaScript do, so every executor ties alike. */
  bytewise(expr: string): string;
}

const SQLITE: SqlDialect = {
  intDiv: (a, b) => `(${a} / ${b})`,
  concat: (parts) => parts.join(` || '/' || `),
  bytewise: (expr) => expr,
};

const MYSQL: SqlDialect = {
  intDiv: (a, b) => `(${a} DIV ${b})`,
  concat: (parts) => `CONCAT(${parts.join(`, '/', `)})`,
  // The column collation would put ':' before digits and ignore case.
  bytewise: (expr) => `${expr} COLLATE utf8mb4_bin`,
};

export function sqlDialect(dataSource: DataSource): SqlDialect {
  return dialectOf(dataSource.manager) === 'mysql' ? MYSQL : SQLITE;
}
