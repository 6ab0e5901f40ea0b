import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PageArgs, ConnectionData } from '../../common/pagination/connection';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { nodeLoaders } from '../../common/node/node.resolver';
import { READ_ROLES, WRITE_ROLES } from '../auth/auth.types';
import { IocList } from '../ioc/ioc-list.entity';
import { IocSkippedLine } from '../ioc/ioc.payloads';
import { FeedSkippedLine } from '../ioc/feed/feed-import-tally';
import { IocSource, IocSourceFetch } from './ioc-source.entity';
import { IocSourceCreateInput, IocSourceIdInput, IocSourceUpdateInput } from './ioc-source.inputs';
import {
  IocSourceConnection,
  IocSourceCreatePayload,
  IocSourceDeletePayload,
  IocSourceFetchConnection,
  IocSourceFetchNowPayload,
  IocSourceUpdatePayload,
} from './ioc-source.payloads';
import { headerNamesOf, skippedLinesOf } from './ioc-source.service';

nodeLoaders.set('IocSource', {
  roles: READ_ROLES,
  load: async (ctx, id) => (await ctx.services.iocSources.findMany(ctx.caller!.accountId, [id]))[0],
});

@Resolver(() => IocSource)
export class IocSourceResolver {
  @Authorized(READ_ROLES)
  @Query(() => IocSource, { nullable: true, description: 'A threat-intel source of your account by ID; null when there is none.' })
  async iocSource(@Arg('id', () => ID, { description: 'Global ID of the source.' }) id: string, @Ctx() ctx: RequestContext): Promise<IocSource | null> {
    const pk = idOfType(id, 'IocSource');
    return pk == null ? null : (await ctx.services.iocSources.findMany(ctx.caller!.accountId, [pk]))[0];
  }

  @Authorized(READ_ROLES)
  @Query(() => IocSourceConnection, { description: "Your account's threat-intel sources, oldest first." })
  iocSources(@Args() args: PageArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<IocSource>> {
    return ctx.services.iocSources.list(ctx.caller!.accountId, args);
  }

  @FieldResolver(() => IocList, { description: 'The list each fetch replaces.' })
  async list(@Root() source: IocSource, @Ctx() ctx: RequestContext): Promise<IocList> {
    const list = await ctx.loaders.iocList.load(source.listId);
    if (!list) throw new Error(`ioc source ${source.id} references missing list ${source.listId}`);
    return list;
  }

  @FieldResolver(() => [String], { description: 'Names of the headers sent with each fetch; their values are secrets and never shown.' })
  headerNames(@Root() source: IocSource): string[] {
    return headerNamesOf(source);
  }

  @FieldResolver(() => IocSourceFetchConnection, { description: 'What each fetch did, newest first.' })
  fetches(@Root() source: IocSource, @Args() args: PageArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<IocSourceFetch>> {
    return ctx.services.iocSources.fetches(source.id, args);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocSourceCreatePayload, {
    description: 'Creates a threat-intel source: the server fetches the URL on its schedule and replaces the list with it.',
  })
  async iocSourceCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocSourceCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocSources.create(ctx.caller!.accountId, idOfType(input.list, 'IocList'), input), 'iocSource');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocSourceUpdatePayload, { description: "Changes a source's URL, format, schedule or headers." })
  async iocSourceUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocSourceUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocSources.update(ctx.caller!.accountId, idOfType(input.id, 'IocSource'), input), 'iocSource');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocSourceDeletePayload, { description: 'Deletes a source and its fetch history; its list keeps its entries.' })
  async iocSourceDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocSourceIdInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocSources.delete(ctx.caller!.accountId, idOfType(input.id, 'IocSource')), 'iocSource');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocSourceFetchNowPayload, { description: 'Fetches a source now and answers when the fetch is done (its schedule restarts from now).' })
  async iocSourceFetchNow(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocSourceIdInput,
    @Ctx() ctx: RequestContext,
  ): Promise<IocSourceFetchNowPayload> {
    const outcome = await ctx.services.iocSources.fetchNow(ctx.caller!.accountId, idOfType(input.id, 'IocSource'));
    return outcome.ok
      ? { iocSource: outcome.value.source, fetch: outcome.value.fetch, userErrors: [] }
      : { iocSource: null, fetch: null, userErrors: outcome.errors };
  }
}

@Resolver(() => IocSourceFetch)
export class IocSourceFetchResolver {
  @FieldResolver(() => [IocSkippedLine], { description: 'The first lines or records not imported (at most 100), with their reasons.' })
  skippedLines(@Root() fetch: IocSourceFetch): FeedSkippedLine[] {
    return skippedLinesOf(fetch);
  }
}
