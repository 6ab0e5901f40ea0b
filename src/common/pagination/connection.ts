import { ArgsType, ClassType, Field, FieldResolver, Int, ObjectType, Resolver, Root } from 'type-graphql';

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

@ObjectType({ simpleResolvers: true, description: 'Where a page sits in its list (Relay cursor connections).' })
export class PageInfo {
  @Field({ description: 'True when more items follow the last edge of this page.' })
  hasNextPage: boolean;

  @Field({ description: 'True when this page was requested with `after` (items precede it).' })
  hasPreviousPage: boolean;

  @Field(() => String, { nullable: true, description: 'Cursor of the first edge; null on an empty page.' })
  startCursor: string | null;

  @Field(() => String, { nullable: true, description: 'Cursor of the last edge: pass it as `after` for the next page.' })
  endCursor: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, description: `How many items to return (1-${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE}).` })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "Return the items after this cursor (a previous page's `pageInfo.endCursor`)." })
  after?: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

/** What a service hands a resolver: a page plus a lazily computed total (only queried when selected). */
export interface ConnectionData<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  countTotal: () => Promise<number>;
}

/** Resolvers the connection types need (their totalCount); schema.ts registers them with the rest. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- type-graphql's resolvers option takes Function
export const connectionResolvers: Function[] = [];

/**
 * A Relay connection type for `Item`, named `<name>Connection` with `<name>Edge` edges. `itemsDescription` is
 * the plural for the page's description, given rather than made ("IOC entries", "policies", not "entrys").
 */
export function Connection<T extends object>(Item: ClassType<T>, name: string, itemDescription: string, itemsDescription: string) {
  @ObjectType(`${name}Edge`, { simpleResolvers: true, description: `One ${itemDescription} in a page, with its cursor.` })
  class EdgeType {
    @Field({ description: 'Opaque cursor of this edge; pass it as `after` to continue after it.' })
    cursor: string;

    @Field(() => Item, { description: `The ${itemDescription}.` })
    node: T;
  }

  @ObjectType(`${name}Connection`, { simpleResolvers: true, description: `A page of ${itemsDescription} (Relay cursor connection).` })
  class ConnectionType {
    @Field(() => [EdgeType], { description: 'The items of this page, in order.' })
    edges: EdgeType[];

    @Field(() => PageInfo, { description: 'Cursors and whether more pages exist.' })
    pageInfo: PageInfo;
  }

  @Resolver(() => ConnectionType)
  class ConnectionTotalResolver {
    // A field resolver, so the COUNT(*) runs only when totalCount is selected.
    @FieldResolver(() => Int, { description: 'How many items match the filter in all pages (counted only when selected).' })
    totalCount(@Root() connection: ConnectionData<T>): Promise<number> {
      return connection.countTotal();
    }
  }
  connectionResolvers.push(ConnectionTotalResolver);

  return ConnectionType;
}
