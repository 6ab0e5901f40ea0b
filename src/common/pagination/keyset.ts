import { Brackets, EntityTarget, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { badUserInput } from '../errors/graphql-errors';
import { ConnectionData, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './connection';
import { CursorValue, decodeCursor, encodeCursor } from './cursor';

export interface SortKey<T> {
  /** SQL expression, e.g. `d.id` or `d.nicknameKey` (a query builder property path). */
  expression: string;
  direction: 'ASC' | 'DESC';
  /** Reads the key's value from a loaded row. */
  value: (row: T) => CursorValue;
}

export interface KeysetPage {
  first?: number | null;
  after?: string | null;
}

export interface KeysetOptions {
  /**
   * Find the page's primary keys first and read its rows by key in the same statement (a deferred join).
   * Where an index holds the filter's columns and the sort keys, the keyset scan reads index entries only, and
   * rows are read for the page alone, not for each entry the filter skips on the way (MariaDB scans a
   * descending range without pushing the filter into the index). The alias's primary key must be `id`.
   */
  rowsByKey?: boolean;
}

export function pageSize(first: number | null | undefined, max = MAX_PAGE_SIZE): number {
  if (first == null) return Math.min(DEFAULT_PAGE_SIZE, max);
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw badUserInput(`"first" must be between 1 and ${max}.`);
  }
  return first;
}

/**
 * Keyset pagination over a query builder: the last key of the page becomes the cursor, and the next page
 * starts strictly after it ((k1 > a) OR (k1 = a AND k2 > b) ...). No OFFSET, so page 50 costs what page 1 does.
 * The last key must be unique (the primary key).
 */
export async function keysetPaginate<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  tag: string,
  keys: SortKey<T>[],
  page: KeysetPage,
  options: KeysetOptions = {},
): Promise<ConnectionData<T>> {
  const limit = pageSize(page.first);
  const countQb = qb.clone();
  const pageQb = qb.clone();
  if (page.after != null) {
    const values = decodeCursor(page.after, tag, keys.length);
    if (!values) throw badUserInput('"after" is not a cursor from this list.');
    // The first key bounded on its own as well: a plain range the index can seek to (the OR below alone
    // makes some planners scan from the start of the window on every page).
    pageQb.andWhere(`${keys[0].expression} ${keys[0].direction === 'ASC' ? '>=' : '<='} :ks_0`);
    pageQb.andWhere(
      new Brackets((outer) => {
        keys.forEach((_, i) => {
          outer.orWhere(
            new Brackets((inner) => {
              for (let j = 0; j < i; j++) inner.andWhere(`${keys[j].expression} = :ks_${j}`);
              const op = keys[i].direction === 'ASC' ? '>' : '<';
              inner.andWhere(`${keys[i].expression} ${op} :ks_${i}`);
            }),
          );
        });
      }),
    );
    values.forEach((v, i) => pageQb.setParameter(`ks_${i}`, v));
  }
  const orderBy = (q: SelectQueryBuilder<T>) =>
    keys.forEach((k, i) => (i === 0 ? q.orderBy(k.expression, k.direction) : q.addOrderBy(k.expression, k.direction)));
  orderBy(pageQb);
  pageQb.limit(limit + 1);
  let rows: T[];
  if (options.rowsByKey) {
    const alias = pageQb.alias;
    pageQb.select(`${alias}.id`, 'page_id');
    const rowsQb = qb.connection
      .createQueryBuilder(qb.expressionMap.mainAlias!.target as EntityTarget<T>, alias)
      .innerJoin(`(${pageQb.getQuery()})`, 'page', `page.page_id = ${alias}.id`)
      .setParameters(pageQb.getParameters());
    orderBy(rowsQb);
    rows = await rowsQb.getMany();
  } else {
    rows = await pageQb.getMany();
  }
  const hasNextPage = rows.length > limit;
  const pageRows = hasNextPage ? rows.slice(0, limit) : rows;
  const edges = pageRows.map((node) => ({
    node,
    cursor: encodeCursor(
      tag,
      keys.map((k) => k.value(node)),
    ),
  }));
  return {
    edges,
    pageInfo: {
      hasNextPage,
      hasPreviousPage: page.after != null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
    countTotal: () => countQb.getCount(),
  };
}
