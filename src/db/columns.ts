import { Column, ColumnOptions, ValueTransformer } from 'typeorm';

/**
 * Instants are stored as BIGINT milliseconds since the epoch on both drivers: SQLite has no datetime
 * precision and MySQL's DATETIME has no zone, while integers compare, index and bucket the same everywhere.
 * mysql2 hands BIGINT back as a string when it exceeds 2^53; ours never do, but both forms are accepted.
 */
export const epochMs: ValueTransformer = {
  to: (value: Date | null | undefined) => (value == null ? value : value.getTime()),
  from: (value: string | number | null) => (value == null ? null : new Date(Number(value))),
};

export function TimestampColumn(options: Omit<ColumnOptions, 'type' | 'transformer'> = {}): PropertyDecorator {
  return Column({ ...options, type: 'bigint', transformer: epochMs });
}

/** BIGINT counters (mysql2 may return them as strings). */
export const bigintNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value == null ? null : Number(value)),
};
