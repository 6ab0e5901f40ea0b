import { Brackets, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
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
  keys.forEach((k, i) => (i === 0 ? pageQb.orderBy(k.expression, k.direction) : pageQb.addOrderBy(k.expression, k.direction)));
  const rows = await pageQb.limit(limit + 1).getMany();
  const hasNextPage = rows.length > limit;
  const pageRows = hasNextPage ? rows.slice(0, limit) : rows;
  const edges = pageRows.map((node) => ({ node, cursor: encodeCursor(tag, keys.map((k) => k.value(node))) }));
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
