import { TableColumnOptions, TableForeignKey, TableIndex } from 'typeorm';

/**
 * Small builders for portable migrations (TypeORM's Table API): each maps to the same column an entity
 * declares, so the schema-agreement test finds nothing pending on SQLite or MySQL.
 */
export function idColumn(name = 'id', type: 'integer' | 'bigint' = 'integer'): TableColumnOptions {
  // 'integer' (not 'int'): SQLite allows AUTOINCREMENT only on INTEGER PRIMARY KEY; MySQL reads it as INT.
  return { name, type, isPrimary: true, isGenerated: true, generationStrategy: 'increment' };
}

export const col = {
  // 'integer' is what TypeORM turns an entity's 'int' into on SQLite; MySQL reads it as INT.
  int: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'integer', isNullable: nullable }),
  intDefault: (name: string, defaultValue: number): TableColumnOptions => ({ name, type: 'integer', default: defaultValue }),
  bigintDefault: (name: string, defaultValue: number): TableColumnOptions => ({ name, type: 'bigint', default: defaultValue }),
  bigint: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'bigint', isNullable: nullable }),
  smallint: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'smallint', isNullable: nullable }),
  varchar: (name: string, length: number, nullable = false): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: String(length),
    isNullable: nullable,
  }),
  text: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'text', isNullable: nullable }),
  // Defaults as 0/1: the form both drivers report back for an entity's boolean default.
  boolean: (name: string, defaultValue: boolean): TableColumnOptions => ({ name, type: 'boolean', default: defaultValue ? 1 : 0 }),
  blob: (name: string, nullable = false): TableColumnOptions => ({ name, type: 'blob', isNullable: nullable }),
};

/** created_at and updated_at as epoch milliseconds (see src/db/columns.ts). */
export function timestamps(): TableColumnOptions[] {
  return [col.bigint('created_at'), col.bigint('updated_at')];
}

export function index(name: string, columnNames: string[], isUnique = false): TableIndex {
  return new TableIndex({ name, columnNames, isUnique });
}

export function fk(name: string, column: string, referencedTableName: string, onDelete: 'CASCADE' | 'RESTRICT' | 'SET NULL' | 'NO ACTION'): TableForeignKey {
  return new TableForeignKey({ name, columnNames: [column], referencedTableName, referencedColumnNames: ['id'], onDelete, onUpdate: 'NO ACTION' });
}
