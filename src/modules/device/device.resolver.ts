import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { READ_ROLES, WRITE_ROLES } from '../auth/auth.types';
import { Policy } from '../policy/policy.entity';
import { Device } from './device.entity';
import { DevicesArgs } from './device.args';
import { DeviceCreateInput, DeviceDeleteInput, DeviceUpdateInput } from './device.inputs';
import { DeviceConnection, DeviceCreatePayload, DeviceDeletePayload, DeviceUpdatePayload } from './device.payloads';
import { DeviceFields } from './device.validation';

nodeLoaders.set('Device', { roles: READ_ROLES, load: (ctx, id) => ctx.loaders.device.load(id) });

/** GraphQL input to service fields: global IDs decoded, absent fields left undefined. */
function deviceFields(input: DeviceCreateInput | DeviceUpdateInput): DeviceFields {
  const { policy, ...rest } = input as DeviceCreateInput & { id?: string };
  delete (rest as { id?: string }).id;
  return { ...rest, ...(policy !== undefined && policy !== null ? { policyId: idOfType(policy, 'Policy') } : {}) };
}

@Resolver(() => Device)
export class DeviceResolver {
  @Authorized(READ_ROLES)
  @Query(() => Device, { nullable: true, description: 'A device of your account by ID; null when there is none.' })
  device(@Arg('id', () => ID, { description: 'Global ID of the device.' }) id: string, @Ctx() ctx: RequestContext): Promise<Device | null> {
    const pk = idOfType(id, 'Device');
    return pk == null ? Promise.resolve(null) : ctx.loaders.device.load(pk);
  }

  @Authorized(READ_ROLES)
  @Query(() => DeviceConnection, { description: "Your account's devices, oldest first." })
  devices(@Args() args: DevicesArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<Device>> {
    const f = args.filter;
    const filter = f && { ...f, policyIds: f.policies?.map((p) => idOfType(p, 'Policy')) ?? null };
    return ctx.services.devices.list(ctx.caller!.accountId, filter, args);
  }

  @FieldResolver(() => Policy, { description: 'The policy whose IOC lists uploads from this device are matched against.' })
  async policy(@Root() device: Device, @Ctx() ctx: RequestContext): Promise<Policy> {
    const policy = await ctx.loaders.policy.load(device.policyId);
    if (!policy) throw new Error(`device ${device.id} references missing policy ${device.policyId}`);
    return policy;
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => DeviceCreatePayload, { description: 'Creates a PCAP device.' })
  async deviceCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: DeviceCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.devices.create(ctx.caller!.accountId, deviceFields(input)), 'device');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => DeviceUpdatePayload, { description: 'Changes a device.' })
  async deviceUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: DeviceUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    const outcome = await ctx.services.devices.update(ctx.caller!.accountId, idOfType(input.id, 'Device'), deviceFields(input));
    return toPayload(outcome, 'device');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => DeviceDeletePayload, { description: 'Deletes a device.' })
  async deviceDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: DeviceDeleteInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.devices.delete(ctx.caller!.accountId, idOfType(input.id, 'Device')), 'device');
  }
}
