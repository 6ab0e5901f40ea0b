import { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, FieldResolver, ID, Info, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { requireCaller } from '../../modules/auth/auth.checker';
import { Role } from '../../modules/account/account.enums';
import { forbidden } from '../errors/graphql-errors';
import { fromGlobalId, NodeTypeName, toGlobalId } from '../ids/global-id';
import { Node } from './node';

interface NodeLoader {
  /** Roles that may read this type. */
  roles: Role[];
  load: (ctx: RequestContext, id: number) => Promise<object | null>;
}

/** How `node(id)` fetches each type; every loader is scoped to the caller's account. Modules register theirs. */
export const nodeLoaders = new Map<NodeTypeName, NodeLoader>();

@Resolver(() => Node)
export class NodeResolver {
  /** Inherited by every type implementing Node: the integer key becomes the opaque global ID. */
  @FieldResolver(() => ID)
  id(@Root() root: { id: number }, @Info() info: GraphQLResolveInfo): string {
    return toGlobalId(info.parentType.name as NodeTypeName, root.id);
  }

  @Query(() => Node, { nullable: true, description: 'Fetches any object by its global ID; null when it does not exist in your account.' })
  async node(@Arg('id', () => ID, { description: 'A global ID.' }) id: string, @Ctx() ctx: RequestContext): Promise<object | null> {
    const caller = requireCaller(ctx);
    const decoded = fromGlobalId(id);
    const loader = decoded && nodeLoaders.get(decoded.type);
    if (!decoded || !loader) return null;
    if (!loader.roles.includes(caller.role)) throw forbidden();
    return loader.load(ctx, decoded.id);
  }
}
