import { Field, ID, InputType, Int } from 'type-graphql';
import { Direction } from '../flow-hit/flow-hit.enums';
import { IocCategory } from '../ioc/ioc.enums';
import { AlertDeliveryStatus, AlertDigestMode, HitFoundBy, HitKind, SyslogFormat, SyslogTransport, WebhookFormat } from './alert.enums';

@InputType({ description: 'A webhook destination.' })
export class WebhookDestinationInput {
  @Field({ description: 'The http(s) URL to POST to.' })
  url: string;

  @Field(() => WebhookFormat, { nullable: true, description: 'The body; JSON when not given.' })
  format?: WebhookFormat | null;

  @Field(() => String, {
    nullable: true,
    description:
      "PEM certificate(s) of the CA (or the self-signed certificate) to trust for this destination's TLS instead of the system's trust store; the server's certificate and name are always verified.",
  })
  caCertificate?: string | null;
}

@InputType({ description: 'A syslog destination (RFC 5424).' })
export class SyslogDestinationInput {
  @Field({ description: 'Host name or address of the syslog server.' })
  host: string;

  @Field(() => Int, { description: 'Its port (514 is usual).' })
  port: number;

  @Field(() => SyslogTransport, { description: 'UDP, TCP or TLS (RFC 5425).' })
  transport: SyslogTransport;

  @Field(() => SyslogFormat, { nullable: true, description: 'The message; JSON when not given.' })
  format?: SyslogFormat | null;

  @Field(() => String, {
    nullable: true,
    description:
      "PEM certificate(s) of the CA (or the self-signed certificate) to trust for this destination's TLS instead of the system's trust store; the server's certificate and name are always verified.",
  })
  caCertificate?: string | null;
}

@InputType({ description: 'An e-mail destination through an SMTP server.' })
export class EmailDestinationInput {
  @Field({ description: 'Host name or address of the SMTP server.' })
  host: string;

  @Field(() => Int, { description: 'Its port (587 with STARTTLS, 465 with secure).' })
  port: number;

  @Field(() => Boolean, { nullable: true, description: 'TLS from the start (port 465); false when not given.' })
  secure?: boolean | null;

  @Field(() => String, { nullable: true, description: 'SMTP user name; none: no authentication.' })
  username?: string | null;

  @Field(() => String, { nullable: true, description: 'SMTP password; stored, never shown again.' })
  password?: string | null;

  @Field({ description: 'The From address.' })
  from: string;

  @Field(() => [String], { description: 'The recipients (1-20).' })
  to: string[];

  @Field(() => String, {
    nullable: true,
    description:
      "PEM certificate(s) of the CA (or the self-signed certificate) to trust for this destination's TLS instead of the system's trust store; the server's certificate and name are always verified.",
  })
  caCertificate?: string | null;
}

@InputType({ description: 'A new alert destination: a name and exactly one of webhook, syslog and email.' })
export class AlertDestinationCreateInput {
  @Field({ description: 'Name, 1-64 characters.' })
  name: string;

  @Field(() => WebhookDestinationInput, { nullable: true, description: 'Set for a webhook.' })
  webhook?: WebhookDestinationInput | null;

  @Field(() => SyslogDestinationInput, { nullable: true, description: 'Set for syslog.' })
  syslog?: SyslogDestinationInput | null;

  @Field(() => EmailDestinationInput, { nullable: true, description: 'Set for e-mail.' })
  email?: EmailDestinationInput | null;
}

@InputType({
  description:
    'Changes an alert destination. Fields left out keep their value; new settings (of its own kind) replace the old ones and are checked as on creation.',
})
export class AlertDestinationUpdateInput {
  @Field(() => ID, { description: 'Global ID of the destination.' })
  id: string;

  @Field(() => String, { nullable: true, description: 'New name, 1-64 characters.' })
  name?: string | null;

  @Field(() => WebhookDestinationInput, { nullable: true, description: 'New settings of a webhook (its secret is kept unless rotateSecret).' })
  webhook?: WebhookDestinationInput | null;

  @Field(() => SyslogDestinationInput, { nullable: true, description: 'New settings of a syslog destination.' })
  syslog?: SyslogDestinationInput | null;

  @Field(() => EmailDestinationInput, { nullable: true, description: 'New settings of an e-mail destination (its password is kept when none is given).' })
  email?: EmailDestinationInput | null;

  @Field(() => Boolean, { nullable: true, description: "A webhook's new signing secret, shown once in the payload; the old one stops signing at once." })
  rotateSecret?: boolean | null;
}

@InputType({ description: 'Names an alert destination.' })
export class AlertDestinationIdInput {
  @Field(() => ID, { description: 'Global ID of the destination.' })
  id: string;
}

@InputType({ description: 'A new alert rule. Condition lists left out or empty match anything.' })
export class AlertRuleCreateInput {
  @Field({ description: 'Name, 1-64 characters.' })
  name: string;

  @Field(() => Boolean, { nullable: true, description: 'Whether it raises alerts; true when not given.' })
  enabled?: boolean | null;

  @Field(() => Int, { nullable: true, description: 'Lowest severity (0-5) that raises an alert; 0 when not given.' })
  minSeverity?: number | null;

  @Field(() => [Direction], { nullable: true, description: 'Directions that raise alerts.' })
  directions?: Direction[] | null;

  @Field(() => [ID], { nullable: true, description: 'Devices whose hits raise alerts.' })
  devices?: string[] | null;

  @Field(() => [ID], { nullable: true, description: 'IOC lists whose entries raise alerts.' })
  iocLists?: string[] | null;

  @Field(() => [IocCategory], { nullable: true, description: 'Categories that raise alerts.' })
  categories?: IocCategory[] | null;

  @Field(() => [HitFoundBy], { nullable: true, description: 'How the hit was found (upload or retro-hunt).' })
  foundBy?: HitFoundBy[] | null;

  @Field(() => [HitKind], { nullable: true, description: 'What the hit matched (IP: an address entry, DNS: a domain entry).' })
  hitKinds?: HitKind[] | null;

  @Field(() => Int, { nullable: true, description: 'Throttle window in minutes (1-10080); 60 when not given.' })
  throttleMinutes?: number | null;

  @Field(() => [ID], { description: 'Destinations its alerts go to (at least one).' })
  destinations: string[];

  @Field(() => AlertDigestMode, { nullable: true, description: 'Each alert as raised (IMMEDIATE, when not given), or a DAILY or WEEKLY digest.' })
  digest?: AlertDigestMode | null;

  @Field(() => String, { nullable: true, description: 'Local time (HH:MM) of a digest.' })
  digestTime?: string | null;

  @Field(() => String, { nullable: true, description: 'IANA time zone of digestTime, e.g. Europe/Paris.' })
  digestTimeZone?: string | null;

  @Field(() => Int, { nullable: true, description: 'Weekday of a WEEKLY digest: 1 Monday ... 7 Sunday.' })
  digestWeekday?: number | null;
}

@InputType({ description: "An alert rule's new settings: every field as at creation (a field left out takes its default)." })
export class AlertRuleUpdateInput extends AlertRuleCreateInput {
  @Field(() => ID, { description: 'Global ID of the rule.' })
  id: string;
}

@InputType({ description: 'Names an alert rule.' })
export class AlertRuleIdInput {
  @Field(() => ID, { description: 'Global ID of the rule.' })
  id: string;
}

@InputType({ description: 'Narrows alertDeliveries.' })
export class AlertDeliveryFilter {
  @Field(() => AlertDeliveryStatus, { nullable: true, description: 'Only deliveries in this state.' })
  status?: AlertDeliveryStatus | null;

  @Field(() => ID, { nullable: true, description: 'Only deliveries to this destination.' })
  destination?: string | null;
}
