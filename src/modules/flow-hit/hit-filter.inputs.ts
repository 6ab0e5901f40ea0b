import { Field, ID, InputType, Int } from 'type-graphql';
import { Direction, HitKind, TimeRangePreset, TransportProtocol } from './flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { FoundBy } from '../retro-hunt/retro-hunt.enums';
import { TriageStatus } from './hit-triage.enums';

/** The conditions flow hits and DNS hits share: the window, devices, directions, severity, lists and categories. */
// Registered so that its fields are inherited; no field or argument takes it, so the schema does not show it.
@InputType()
export abstract class HitWindowFilter {
  @Field(() => Date, { nullable: true, description: 'Start of the window (inclusive), on capture time. Give with `to`, or use `preset`.' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'End of the window (exclusive).' })
  to?: Date | null;

  @Field(() => TimeRangePreset, { nullable: true, description: 'A window ending now, instead of from/to.' })
  preset?: TimeRangePreset | null;

  @Field(() => [ID], { nullable: true, description: 'Only hits from these devices.' })
  devices?: string[] | null;

  @Field(() => [Direction], { nullable: true, description: 'Only these directions.' })
  directions?: Direction[] | null;

  @Field(() => Int, { nullable: true, description: 'Only hits at least this severe (0-5).' })
  minSeverity?: number | null;

  @Field(() => [ID], { nullable: true, description: 'Only hits on these IOC lists.' })
  iocLists?: string[] | null;

  @Field(() => [IocCategory], { nullable: true, description: 'Only hits on lists of these categories.' })
  categories?: IocCategory[] | null;
}

@InputType({
  description:
    'Which hits a report, the drill-down or an export covers: flow hits (kind IP, the default) or DNS hits (kind DNS). A window is required: `from`+`to` or a `preset`. All given conditions must hold. The window applies to capture time (first packet or query). Each list takes at most 1,000 values (a repeated value counts once); more is refused with BAD_USER_INPUT naming the field.',
})
export class HitFilter extends HitWindowFilter {
  @Field(() => HitKind, {
    nullable: true,
    description:
      'Which hits: IP (flow hits, the default) or DNS (DNS hits: questions whose name a domain entry contains). With DNS, the conditions only flow hits have (externalAddress, destination ports, protocols, foundBy, foundSince) are refused, internalAddress takes one address (not a CIDR), and DNS hits count as never triaged (OPEN).',
  })
  kind?: HitKind | null;

  @Field(() => [Int], { nullable: true, description: 'Only these severities.' })
  severities?: number[] | null;

  @Field(() => String, { nullable: true, description: 'Only hits whose internal address is this address or lies in this CIDR.' })
  internalAddress?: string | null;

  @Field(() => String, { nullable: true, description: 'Only hits whose external address is this address or lies in this CIDR.' })
  externalAddress?: string | null;

  @Field(() => [Int], { nullable: true, description: 'Only hits to these destination (responder) ports.' })
  destinationPorts?: number[] | null;

  @Field(() => [Int], { nullable: true, description: 'Leave out hits to these destination ports.' })
  excludeDestinationPorts?: number[] | null;

  @Field(() => [TransportProtocol], { nullable: true, description: 'Only these protocols.' })
  protocols?: TransportProtocol[] | null;

  @Field(() => [FoundBy], { nullable: true, description: 'Only hits found this way (RETRO_HUNT: found in stored uploads after a list change).' })
  foundBy?: FoundBy[] | null;

  @Field(() => Date, { nullable: true, description: 'Only hits found at or after this instant ("new since the list change"), whatever their capture time.' })
  foundSince?: Date | null;

  @Field(() => [TriageStatus], {
    nullable: true,
    description:
      'Only hits with these triage verdicts (OPEN: never triaged, or set back to OPEN). A verdict follows the hit across reprocessing and retro-hunts.',
  })
  triageStatuses?: TriageStatus[] | null;
}
