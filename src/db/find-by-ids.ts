import { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';

interface Plan {
  sql: string;
  columns: ColumnMetadata[];
}

const plans = new WeakMap<DataSource, Map<EntityTarget<ObjectLiteral>, Plan>>();

/** IDs per statement: well under both databases' bound-parameter limits. */
const CHUNK = 1_000;

/**
 * An account's rows of an entity by ID, in the order of `ids` (null where missing or another account's): what the
 * per-request DataLoaders ask on every report, sent as one plain statement built once per entity and hydrated
 * from the entity's column metadata as TypeORM's own find does (its driver conversions and column transformers).
 * The query builder cost the event loop more per call than the lookup itself. Columns only: relations stay unset,
 * as they do for a find without `relations`.
 */
export async function findByIds<T extends ObjectLiteral>(
  dataSource: DataSource,
  target: EntityTarget<T>,
  accountId: number,
  ids: readonly number[],
): Promise<(T | null)[]> {
  if (ids.length === 0) return [];
  const plan = planFor(dataSource, target);
  const metadata = dataSource.getMetadata(target);
  const driver = dataSource.driver;
  const byId = new Map<number, T>();
  const distinct = [...new Set(ids)];
  for (let i = 0; i < distinct.length; i += CHUNK) {
    const chunk = distinct.slice(i, i + CHUNK);
    const rows: Array<Record<string, unknown>> = await dataSource.query(`${plan.sql}(${chunk.map(() => '?').join(', ')})`, [accountId, ...chunk]);
    for (const raw of rows) {
      const entity = metadata.create() as T;
      for (const column of plan.columns) column.setEntityValue(entity, driver.prepareHydratedValue(raw[column.databaseName], column));
      byId.set(Number(raw[plan.columns[0].databaseName]), entity);
    }
  }
  return ids.map((id) => byId.get(id) ?? null);
}

function planFor(dataSource: DataSource, target: EntityTarget<ObjectLiteral>): Plan {
  let byEntity = plans.get(dataSource);
  if (!byEntity) plans.set(dataSource, (byEntity = new Map()));
  let plan = byEntity.get(target);
  if (!plan) {
    const metadata = dataSource.getMetadata(target);
    const primary = metadata.primaryColumns;
    const account = metadata.findColumnWithPropertyName('accountId');
    if (primary.length !== 1 || !account) throw new Error(`findByIds: ${metadata.name} needs one primary column and an accountId column.`);
    // The primary column first: hydrated rows are keyed by it.
    const columns = [primary[0], ...metadata.columns.filter((c) => c !== primary[0] && !c.isVirtual)];
    const q = (name: string) => dataSource.driver.escape(name);
    plan = {
      columns,
      sql: `SELECT ${columns.map((c) => q(c.databaseName)).join(', ')} FROM ${q(metadata.tableName)} WHERE ${q(account.databaseName)} = ? AND ${q(primary[0].databaseName)} IN `,
    };
    byEntity.set(target, plan);
  }
  return plan;
}
