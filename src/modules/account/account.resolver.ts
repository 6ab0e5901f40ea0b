import { Arg, Args, Authorized, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Device } from '../device/device.entity';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { nodeLoaders } from '../../common/node/node.resolver';
import { requireCaller } from '../auth/auth.checker';
import { WRITE_ROLES } from '../auth/auth.types';
import { Role } from './account.enums';
import { ApiKey } from './api-key.entity';
import { ApiKeyCreateInput, ApiKeyRevokeInput } from './account.inputs';
import { ApiKeyConnection, ApiKeyCreatePayload, ApiKeyRevokePayload, Viewer } from './account.payloads';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';

nodeLoaders.set('ApiKey', { roles: [Role.ADMIN], load: (ctx, id) => ctx.services.accounts.findApiKey(ctx.caller!.accountId, id) });
nodeLoaders.set('Account', {
  roles: Object.values(Role),
  load: async (ctx, id) => (id === ctx.caller!.accountId ? ctx.services.accounts.findAccount(id) : null),
});

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  @FieldResolver(() => Device, { nullable: true, description: 'The device an UPLOADER key is bound to, if any.' })
  device(@Root() key: ApiKey, @Ctx() ctx: RequestContext): Promise<Device | null> {
    return key.deviceId == null ? Promise.resolve(null) : ctx.loaders.device.load(key.deviceId);
  }
}

@Resolver()
export class AccountResolver {
  @Query(() => Viewer, { description: 'The caller: account, API key and role. Any valid key may ask.' })
  async viewer(@Ctx() ctx: RequestContext): Promise<Viewer> {
    const caller = requireCaller(ctx);
    const [account, apiKey] = await Promise.all([
      ctx.services.accounts.findAccount(caller.accountId),
      ctx.services.accounts.findApiKey(caller.accountId, caller.apiKeyId),
    ]);
    if (!account || !apiKey) throw new Error('authenticated key without account');
    return { account, apiKey, role: caller.role };
  }

  @Authorized(WRITE_ROLES)
  @Query(() => ApiKeyConnection, { description: 'The API keys of your account, revoked ones included, oldest first (ADMIN only).' })
  apiKeys(@Args() page: PageArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<ApiKey>> {
    return ctx.services.accounts.listApiKeys(ctx.caller!.accountId, page);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => ApiKeyCreatePayload, { description: 'Creates an API key; the secret is in the payload, once.' })
  async apiKeyCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: ApiKeyCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<ApiKeyCreatePayload> {
    const deviceId = input.device == null ? undefined : idOfType(input.device, 'Device');
    const outcome = await ctx.services.accounts.createApiKey(ctx.caller!.accountId, { name: input.name, role: input.role, deviceId });
    return outcome.ok
      ? { apiKey: outcome.value.apiKey, secret: outcome.value.secret, userErrors: [] }
      : { apiKey: null, secret: null, userErrors: outcome.errors };
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => ApiKeyRevokePayload, { description: 'Revokes an API key at once; requests with it then fail as UNAUTHENTICATED.' })
  async apiKeyRevoke(
    @Arg('input', { description: 'What to do; see the input type.' }) input: ApiKeyRevokeInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.accounts.revokeApiKey(ctx.caller!.accountId, idOfType(input.id, 'ApiKey')), 'apiKey');
  }
}
