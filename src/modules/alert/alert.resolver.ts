import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../../app/context';
import { idOfType } from '../../common/ids/global-id';
import { PayloadData, toPayload } from '../../common/graphql/user-error.type';
import { ConnectionData, PageArgs } from '../../common/pagination/connection';
import { nodeLoaders } from '../../common/node/node.resolver';
import { WRITE_ROLES } from '../auth/auth.types';
import { Device } from '../device/device.entity';
import { IocList } from '../ioc/ioc-list.entity';
import { AlertDestination } from './alert-destination.entity';
import { AlertAttempt, AlertDelivery, AlertDigest } from './alert-delivery.entity';
import { AlertRule } from './alert-rule.entity';
import { Alert } from './alert.entity';
import type { RuleFields } from './alert.service';
import {
  AlertDeliveryFilter,
  AlertDestinationCreateInput,
  AlertDestinationIdInput,
  AlertDestinationUpdateInput,
  AlertRuleCreateInput,
  AlertRuleIdInput,
  AlertRuleUpdateInput,
} from './alert.inputs';
import {
  AlertDeliveryConnection,
  AlertDestinationCreatePayload,
  AlertDestinationDeletePayload,
  AlertDestinationTestPayload,
  AlertDestinationUpdatePayload,
  AlertRuleCreatePayload,
  AlertRuleDeletePayload,
  AlertRuleUpdatePayload,
} from './alert.payloads';

// Alert configuration names endpoints and secrets: ADMIN only, reading included.
nodeLoaders.set('AlertDestination', { roles: WRITE_ROLES, load: (ctx, id) => ctx.services.alerts.findDestination(ctx.caller!.accountId, id) });
nodeLoaders.set('AlertRule', { roles: WRITE_ROLES, load: (ctx, id) => ctx.services.alerts.rule(ctx.caller!.accountId, id) });
nodeLoaders.set('Alert', { roles: WRITE_ROLES, load: (ctx, id) => ctx.services.alerts.alert(ctx.caller!.accountId, id) });

@ArgsType()
export class AlertDeliveriesArgs extends PageArgs {
  @Field(() => AlertDeliveryFilter, { nullable: true, description: 'Narrows the list.' })
  filter?: AlertDeliveryFilter | null;
}

const ids = (list: string[] | null | undefined, type: 'Device' | 'IocList' | 'AlertDestination') => list?.map((id) => idOfType(id, type));

/** GraphQL input to service fields: global IDs decoded. */
function ruleFields(input: AlertRuleCreateInput): RuleFields {
  const { devices, iocLists, destinations, ...rest } = input;
  delete (rest as { id?: string }).id;
  return { ...rest, deviceIds: ids(devices, 'Device'), iocListIds: ids(iocLists, 'IocList'), destinationIds: ids(destinations, 'AlertDestination')! };
}

@Resolver(() => AlertDestination)
export class AlertDestinationResolver {
  @Authorized(WRITE_ROLES)
  @Query(() => [AlertDestination], { description: "Your account's alert destinations, oldest first." })
  alertDestinations(@Ctx() ctx: RequestContext): Promise<AlertDestination[]> {
    return ctx.services.alerts.destinations(ctx.caller!.accountId);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertDestinationCreatePayload, { description: "Creates an alert destination; a webhook's signing secret is returned once." })
  async alertDestinationCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertDestinationCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<AlertDestinationCreatePayload> {
    const r = await ctx.services.alerts.createDestination(ctx.caller!.accountId, input);
    return r.ok
      ? { alertDestination: r.value.destination, secret: r.value.secret, userErrors: [] }
      : { alertDestination: null, secret: null, userErrors: r.errors };
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertDestinationUpdatePayload, {
    description: "Changes an alert destination's name or settings, or rotates a webhook's signing secret (the new one is returned once).",
  })
  async alertDestinationUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertDestinationUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<AlertDestinationUpdatePayload> {
    const { id, ...fields } = input;
    const r = await ctx.services.alerts.updateDestination(ctx.caller!.accountId, idOfType(id, 'AlertDestination'), fields);
    return r.ok
      ? { alertDestination: r.value.destination, secret: r.value.secret, userErrors: [] }
      : { alertDestination: null, secret: null, userErrors: r.errors };
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertDestinationDeletePayload, { description: 'Deletes an alert destination no rule sends to.' })
  async alertDestinationDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertDestinationIdInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.alerts.deleteDestination(ctx.caller!.accountId, idOfType(input.id, 'AlertDestination')), 'alertDestination');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertDestinationTestPayload, { description: 'Sends a sample alert to the destination now and says whether it was accepted.' })
  async alertDestinationTest(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertDestinationIdInput,
    @Ctx() ctx: RequestContext,
  ): Promise<AlertDestinationTestPayload> {
    const r = await ctx.services.alerts.testDestination(ctx.caller!.accountId, idOfType(input.id, 'AlertDestination'));
    return r.ok
      ? { alertDestination: r.value.destination, delivered: r.value.error === null, error: r.value.error, userErrors: [] }
      : { alertDestination: null, delivered: false, error: null, userErrors: r.errors };
  }
}

@Resolver(() => AlertRule)
export class AlertRuleResolver {
  @Authorized(WRITE_ROLES)
  @Query(() => [AlertRule], { description: "Your account's alert rules, oldest first." })
  alertRules(@Ctx() ctx: RequestContext): Promise<AlertRule[]> {
    return ctx.services.alerts.rules(ctx.caller!.accountId);
  }

  @FieldResolver(() => [Device], { description: 'Devices whose hits raise alerts; empty: any.' })
  async devices(@Root() rule: AlertRule, @Ctx() ctx: RequestContext): Promise<Device[]> {
    return (await ctx.loaders.device.loadMany(rule.deviceIds)).filter((d): d is Device => d instanceof Device);
  }

  @FieldResolver(() => [IocList], { description: 'IOC lists whose entries raise alerts; empty: any.' })
  async iocLists(@Root() rule: AlertRule, @Ctx() ctx: RequestContext): Promise<IocList[]> {
    return (await ctx.loaders.iocList.loadMany(rule.iocListIds)).filter((d): d is IocList => d instanceof IocList);
  }

  @FieldResolver(() => [AlertDestination], { description: 'Where its alerts go.' })
  destinations(@Root() rule: AlertRule, @Ctx() ctx: RequestContext): Promise<AlertDestination[]> {
    return ctx.services.alerts.destinationsByIds(ctx.caller!.accountId, rule.destinationIds);
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertRuleCreatePayload, { description: 'Creates an alert rule.' })
  async alertRuleCreate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertRuleCreateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.alerts.createRule(ctx.caller!.accountId, ruleFields(input)), 'alertRule');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertRuleUpdatePayload, { description: "Replaces an alert rule's settings (every field as at creation); enabled: false pauses it." })
  async alertRuleUpdate(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertRuleUpdateInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.alerts.updateRule(ctx.caller!.accountId, idOfType(input.id, 'AlertRule'), ruleFields(input)), 'alertRule');
  }

  @Authorized(WRITE_ROLES)
  @Mutation(() => AlertRuleDeletePayload, { description: 'Deletes an alert rule (its alerts and deliveries stay in the history).' })
  async alertRuleDelete(
    @Arg('input', { description: 'What to do; see the input type.' }) input: AlertRuleIdInput,
    @Ctx() ctx: RequestContext,
  ): Promise<PayloadData> {
    return toPayload(await ctx.services.alerts.deleteRule(ctx.caller!.accountId, idOfType(input.id, 'AlertRule')), 'alertRule');
  }
}

@Resolver(() => AlertDelivery)
export class AlertDeliveryResolver {
  @Authorized(WRITE_ROLES)
  @Query(() => AlertDeliveryConnection, { description: 'Deliveries of alerts to destinations, newest first, each with its attempts.' })
  alertDeliveries(@Args() args: AlertDeliveriesArgs, @Ctx() ctx: RequestContext): Promise<ConnectionData<AlertDelivery>> {
    const f = args.filter;
    const filter = f && { status: f.status, destinationId: f.destination == null ? undefined : idOfType(f.destination, 'AlertDestination') };
    return ctx.services.alerts.deliveries(ctx.caller!.accountId, filter, args);
  }

  @FieldResolver(() => Alert, { nullable: true, description: 'The alert delivered; null for a digest.' })
  alert(@Root() d: AlertDelivery, @Ctx() ctx: RequestContext): Promise<Alert | null> {
    return d.alertId === null ? Promise.resolve(null) : ctx.services.alerts.alert(ctx.caller!.accountId, d.alertId);
  }

  @FieldResolver(() => AlertDigest, { nullable: true, description: 'The digest delivered; null for an alert.' })
  digest(@Root() d: AlertDelivery, @Ctx() ctx: RequestContext): Promise<AlertDigest | null> {
    return d.digestId === null ? Promise.resolve(null) : ctx.services.alerts.digest(ctx.caller!.accountId, d.digestId);
  }

  @FieldResolver(() => AlertDestination, { nullable: true, description: 'Where it goes; null once the destination is deleted.' })
  destination(@Root() d: AlertDelivery, @Ctx() ctx: RequestContext): Promise<AlertDestination | null> {
    return ctx.services.alerts.findDestination(ctx.caller!.accountId, d.destinationId);
  }

  @FieldResolver(() => [AlertAttempt], { description: 'Each attempt and its outcome, oldest first.' })
  attempts(@Root() d: AlertDelivery, @Ctx() ctx: RequestContext): Promise<AlertAttempt[]> {
    return ctx.services.alerts.attempts(d.id);
  }
}

@Resolver(() => Alert)
export class AlertResolver {
  @FieldResolver(() => AlertRule, { nullable: true, description: 'The rule that raised it; null once the rule is deleted.' })
  rule(@Root() a: Alert, @Ctx() ctx: RequestContext): Promise<AlertRule | null> {
    return ctx.services.alerts.rule(ctx.caller!.accountId, a.ruleId);
  }

  @FieldResolver(() => Device, { nullable: true, description: 'The device whose upload had the hits.' })
  device(@Root() a: Alert, @Ctx() ctx: RequestContext): Promise<Device | null> {
    return ctx.loaders.device.load(a.deviceId);
  }

  @FieldResolver(() => IocList, { nullable: true, description: 'The matched list.' })
  iocList(@Root() a: Alert, @Ctx() ctx: RequestContext): Promise<IocList | null> {
    return ctx.loaders.iocList.load(a.iocListId);
  }
}
