import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { READ_ROLES, WRITE_ROLES } from '../auth/auth.types';
import { Policy } from './policy.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { PolicyIocListsInput } from '../ioc/ioc.inputs';
import { PolicyAttachIocListsPayload, PolicyDetachIocListsPayload } from '../ioc/ioc.payloads';
import { PoliciesArgs } from './policy.args';
import { PolicyCreateInput, PolicyDeleteInput, PolicyUpdateInput } from './policy.inputs';
import { PolicyConnection, PolicyCreatePayload, PolicyDeletePayload, PolicyUpdatePayload } from './policy.payloads';

nodeLoaders.set('Policy', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.policy.load(id) });

@Resolver(() => Policy)
export class PolicyResolver {
  @Authorized(READ_ROLES)
  @Query(() => Policy, { nullable: true, description: 'A policy of your account by ID; null when there is none.' })
  policy(@Arg('id', () => ID, { description: 'Global ID of the policy.' }) id: string, @Ctx() ctx: RequestContext): Promise<Policy | null> {
    const pk = idOfType(id, 'Policy');
    return pk == null ? Promise.resolve(null) : ctx.loaders.policy.load(pk);
  }

  @Authorized(READ_ROLES)
  @Query(() => PolicyConnection, { description: "Your account's policies, oldest first." })
  policies(@Args() args: PoliciesArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<Policy>> {
    return ctx.services.policies.list(ctx.caller!.accountId, args.filter, args);
  }

  @FieldResolver(() => Int, { description: 'How many devices use this policy.' })
  deviceCount(@Root() policy: Policy, @Ctx() ctx: RequestContext): Promise<number> {
    return ctx.loaders.deviceCountByPolicy.load(policy.id);
  }

  @FieldResolver(() => [IocList], { description: "The IOC lists uploads of this policy's devices are matched against." })
  iocLists(@Root() policy: Policy, @Ctx() ctx: RequestContext): Promise<IocList[]> {
    return ctx.loaders.iocListsByPolicy.load(policy.id);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => PolicyAttachIocListsPayload, { description: "Adds IOC lists to a policy; its devices' next uploads are matched against them." })
  async policyAttachIocLists(
    @Arg('input', { description: 'What to do; see the input type.' }) input: PolicyIocListsInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    const ids = input.iocLists.map((id) => idOfType(id, 'IocList'));
    return toPayload(await ctx.services.policies.attachIocLists(ctx.caller!.accountId, idOfType(input.policy, 'Policy'), ids), 'policy');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => PolicyDetachIocListsPayload, { description: 'Removes IOC lists from a policy.' })
  async policyDetachIocLists(
    @Arg('input', { description: 'What to do; see the input type.' }) input: PolicyIocListsInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    const ids = input.iocLists.map((id) => idOfType(id, 'IocList'));
    return toPayload(await ctx.services.policies.detachIocLists(ctx.caller!.accountId, idOfType(input.policy, 'Policy'), ids), 'policy');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => PolicyCreatePayload, { description: 'Creates a policy.' })
  async policyCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: PolicyCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.policies.create(ctx.caller!.accountId, input), 'policy');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => PolicyUpdatePayload, { description: "Changes a policy's name or description." })
  async policyUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: PolicyUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.policies.update(ctx.caller!.accountId, idOfType(input.id, 'Policy'), input), 'policy');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => PolicyDeletePayload, { description: 'Deletes a policy; refused (IN_USE) while a device uses it.' })
  async policyDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: PolicyDeleteInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.policies.delete(ctx.caller!.accountId, idOfType(input.id, 'Policy')), 'policy');
  }
}
