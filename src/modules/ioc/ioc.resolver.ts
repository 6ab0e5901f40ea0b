import { IocScope } from './ioc-scope.entity';
import { Device } from '../device/device.entity';
import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { payloadTooLarge, spoolToFile, UploadTooLargeError } from '../../common/upload/spool';
import { READ_ROLES, WRITE_ROLES } from '../auth/auth.types';
import { ImportMode } from './ioc.enums';
import { Ioc } from './ioc.entity';
import { IocList } from './ioc-list.entity';
import { IocDomainsArgs, IocEntriesArgs, IocListsArgs, IocsArgs } from './ioc.args';
import { IocDomain } from './ioc-domain.entity';
import { IocAddInput, IocListCreateInput, IocListDeleteInput, IocListImportInput, IocListUpdateInput, IocRemoveInput } from './ioc.inputs';
import {
  IocAddPayload,
  IocConnection,
  IocDomainConnection,
  IocListConnection,
  IocListCreatePayload,
  IocListDeletePayload,
  IocListImportPayload,
  IocListUpdatePayload,
  IocLookup,
  IocRemovePayload,
} from './ioc.payloads';

nodeLoaders.set('IocList', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.iocList.load(id) });
nodeLoaders.set('Ioc', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.ioc.load(id) });
nodeLoaders.set('IocDomain', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.iocDomain.load(id) });

@Resolver(() => IocList)
export class IocListResolver {
  @Authorized(READ_ROLES)
  @Query(() => IocList, { nullable: true, description: 'An IOC list of your account by ID; null when there is none.' })
  iocList(@Arg('id', () => ID, { description: 'Global ID of the list.' }) id: string, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    const pk = idOfType(id, 'IocList');
    return pk == null ? Promise.resolve(null) : ctx.loaders.iocList.load(pk);
  }

  @Authorized(READ_ROLES)
  @Query(() => IocListConnection, { description: "Your account's IOC lists, oldest first." })
  iocLists(@Args() args: IocListsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<IocList>> {
    return ctx.services.iocLists.list(ctx.caller!.accountId, args.filter, args);
  }

  @Authorized(READ_ROLES)
  @Query(() => IocConnection, { description: 'Entries of a list in address order; empty when the list is not in your account.' })
  iocs(@Args() args: IocsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<Ioc>> {
    return ctx.services.iocs.list(ctx.caller!.accountId, idOfType(args.list, 'IocList'), args.filter, args);
  }

  @Authorized(READ_ROLES)
  @Query(() => IocLookup, {
    description:
      '"Why is this address (or domain) flagged?": every entry of your lists that contains the address, the policies that use them and their devices. A domain name gives the DOMAIN-list entries that contain it (`domainMatches`).',
  })
  iocLookup(
    @Arg('address', { description: 'An IPv4 or IPv6 address, or a domain name (case, a trailing dot and Unicode are normalised; a URL is refused).' })
    address: string,
    @Ctx() ctx: RequestContext,
  ): Promise<IocLookup> {
    return ctx.services.iocs.lookup(ctx.caller!.accountId, address);
  }

  @FieldResolver(() => IocConnection, { name: 'iocs', description: "The list's entries in address order." })
  entries(@Root() list: IocList, @Args() args: IocEntriesArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<Ioc>> {
    return ctx.services.iocs.list(list.accountId, list.id, args.filter, args);
  }

  @FieldResolver(() => IocDomainConnection, { description: "A DOMAIN list's entries in name order; empty for IP lists (their entries are `iocs`)." })
  domains(@Root() list: IocList, @Args() args: IocDomainsArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<IocDomain>> {
    return ctx.services.iocs.listDomains(list.accountId, list.id, args.nameContains, args);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocListCreatePayload, { description: 'Creates an IOC list.' })
  async iocListCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocListCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocLists.create(ctx.caller!.accountId, input), 'iocList');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocListUpdatePayload, { description: "Changes an IOC list's name, kind, severity, category or source." })
  async iocListUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocListUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocLists.update(ctx.caller!.accountId, idOfType(input.id, 'IocList'), input), 'iocList');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocListDeletePayload, { description: 'Deletes an IOC list and its entries; refused (IN_USE) while a policy uses it.' })
  async iocListDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocListDeleteInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.iocLists.delete(ctx.caller!.accountId, idOfType(input.id, 'IocList')), 'iocList');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocAddPayload, { description: 'Adds entries to a list. Duplicates are counted, not errors; one invalid value refuses the call.' })
  async iocAdd(@Arg('input', { description: 'What to do; see the input type.' }) input: IocAddInput, @Ctx() ctx: RequestContext): Promise<IocAddPayload> {
    const outcome = await ctx.services.iocs.add(ctx.caller!.accountId, idOfType(input.list, 'IocList'), input.entries);
    return outcome.ok
      ? {
          iocList: outcome.value.list,
          added: outcome.value.added,
          duplicates: outcome.value.duplicates,
          iocs: outcome.value.entries,
          domains: outcome.value.domains ?? [],
          userErrors: [],
        }
      : { iocList: null, added: 0, duplicates: 0, iocs: [], domains: [], userErrors: outcome.errors };
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocRemovePayload, { description: 'Removes entries by ID: address entries (`Ioc`) and entries of DOMAIN lists (`IocDomain`) alike.' })
  async iocRemove(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocRemoveInput,
    @Ctx() ctx: RequestContext,
  ): Promise<IocRemovePayload> {
    const outcome = await ctx.services.iocs.remove(
      ctx.caller!.accountId,
      input.ids.map((id) => {
        const domain = idOfType(id, 'IocDomain');
        return domain == null ? idOfType(id, 'Ioc') : { domain };
      }),
    );
    return outcome.ok
      ? { removed: outcome.value.removed, removedDomains: outcome.value.removedDomains, userErrors: [] }
      : { removed: [], removedDomains: [], userErrors: outcome.errors };
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => IocListImportPayload, {
    description: 'Imports a feed file (multipart upload) into a list, streaming. APPEND adds; REPLACE swaps all entries atomically.',
  })
  async iocListImport(
    @Arg('input', { description: 'What to do; see the input type.' }) input: IocListImportInput,
    @Ctx() ctx: RequestContext,
  ): Promise<IocListImportPayload> {
    const limit = ctx.services.config.maxFeedBytes;
    const upload = await input.file;
    let spooled;
    try {
      spooled = await spoolToFile(upload.createReadStream(), limit);
    } catch (err) {
      if (err instanceof UploadTooLargeError) throw payloadTooLarge(limit);
      throw err;
    }
    try {
      const outcome = await ctx.services.feedImport.importFile(
        ctx.caller!.accountId,
        idOfType(input.list, 'IocList'),
        spooled,
        input.mode ?? ImportMode.APPEND,
      );
      return outcome.ok
        ? { iocList: outcome.value.list, summary: outcome.value, userErrors: [] }
        : { iocList: null, summary: null, userErrors: outcome.errors };
    } finally {
      await spooled.remove();
    }
  }
}

@Resolver(() => IocLookup)
export class IocLookupResolver {
  @FieldResolver(() => Int, {
    description:
      'Flow hits in your account where this address matched (all time kept); for a domain name, the DNS queries in DNS hits for it or a name under it.',
  })
  async hitCount(@Root() l: IocLookup, @Ctx() ctx: RequestContext): Promise<number> {
    if (l.domain) return (await ctx.loaders.domainStats.load(l.domain)).hits;
    return (await ctx.loaders.addressStats.load(l.address)).hits;
  }

  @FieldResolver(() => Date, { nullable: true, description: 'Capture time of the first hit on this address (or DNS hit for this name); null without hits.' })
  async firstSeenAt(@Root() l: IocLookup, @Ctx() ctx: RequestContext): Promise<Date | null> {
    if (l.domain) return (await ctx.loaders.domainStats.load(l.domain)).firstSeenAt;
    return (await ctx.loaders.addressStats.load(l.address)).firstSeenAt;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description: 'Capture time of the last packet of a hit on this address (or the last query of a DNS hit for this name); null without hits.',
  })
  async lastSeenAt(@Root() l: IocLookup, @Ctx() ctx: RequestContext): Promise<Date | null> {
    if (l.domain) return (await ctx.loaders.domainStats.load(l.domain)).lastSeenAt;
    return (await ctx.loaders.addressStats.load(l.address)).lastSeenAt;
  }
}

@Resolver(() => Ioc)
export class IocResolver {
  @FieldResolver(() => IocList, { description: 'The list the entry belongs to.' })
  async list(@Root() ioc: Ioc, @Ctx() ctx: RequestContext): Promise<IocList> {
    const list = await ctx.loaders.iocList.load(ioc.listId);
    if (!list) throw new Error(`ioc ${ioc.id} references missing list ${ioc.listId}`);
    return list;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      'When a feed import or source fetch last held the entry; null for entries added by hand. On a list with a grace period the entry stops matching once it has not been seen for that long.',
  })
  lastSeenInSource(@Root() ioc: Ioc, @Ctx() ctx: RequestContext): Promise<Date | null> {
    return lastSeenInSource(ioc, ctx);
  }

  @FieldResolver(() => [IocScope], {
    description:
      'ALLOW entries only: the devices (or internal hosts of them) the entry is limited to, e.g. by a FALSE_POSITIVE verdict; empty: it applies wherever its list is attached.',
  })
  allowScopes(@Root() ioc: Ioc, @Ctx() ctx: RequestContext): Promise<IocScope[]> {
    return ctx.loaders.iocScopes.load(ioc.id);
  }
}

/**
 * An entry's last sighting in a feed: the later of its own column and its list's entriesSeenAt (a REPLACE without
 * ageing marks what it keeps through the list); null for entries no feed ever held.
 */
async function lastSeenInSource(
  entry: { listId: number; firstSeenInSource: Date | null; lastSeenInSource: Date | null },
  ctx: RequestContext,
): Promise<Date | null> {
  if (entry.firstSeenInSource == null) return null;
  const own = entry.lastSeenInSource?.getTime() ?? 0;
  const list = (await ctx.loaders.iocList.load(entry.listId))?.entriesSeenAt?.getTime() ?? 0;
  return new Date(Math.max(own, list, entry.firstSeenInSource.getTime()));
}

@Resolver(() => IocDomain)
export class IocDomainResolver {
  @FieldResolver(() => IocList, { description: 'The DOMAIN list the entry belongs to.' })
  async list(@Root() d: IocDomain, @Ctx() ctx: RequestContext): Promise<IocList> {
    const list = await ctx.loaders.iocList.load(d.listId);
    if (!list) throw new Error(`ioc_domain ${d.id} references missing list ${d.listId}`);
    return list;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      'When a feed import or source fetch last held the entry; null for entries added by hand. On a list with a grace period the entry stops matching once it has not been seen for that long.',
  })
  lastSeenInSource(@Root() d: IocDomain, @Ctx() ctx: RequestContext): Promise<Date | null> {
    return lastSeenInSource(d, ctx);
  }
}

@Resolver(() => IocScope)
export class IocScopeResolver {
  @FieldResolver(() => Device, { nullable: true, description: 'The device the entry applies to; null once deleted (the scope goes with it).' })
  device(@Root() s: IocScope, @Ctx() ctx: RequestContext): Promise<Device | null> {
    return ctx.loaders.device.load(s.deviceId);
  }

  @FieldResolver(() => String, { nullable: true, description: 'The internal host the entry applies to on that device; null: every host of the device.' })
  internalHost(@Root() s: IocScope): string | null {
    return s.internalHost || null;
  }
}
