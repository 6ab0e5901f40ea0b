import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Field, Int, ObjectType } from 'type-graphql';
import { TimestampColumn } from '../../db/columns';
import { Node } from '../../common/node/node';
import { Account } from '../account/account.entity';
import { AlertDestinationKind, SyslogFormat, SyslogTransport, WebhookFormat } from './alert.enums';
import type { DestinationSettings } from './destinations/destination-settings';

@ObjectType('WebhookSettings', { description: 'Where a webhook destination posts. Its signing secret is shown once, when it is created.' })
export class WebhookSettings {
  @Field({ description: 'The http(s) URL posted to.' })
  url: string;

  @Field(() => WebhookFormat, { description: 'The body posted.' })
  format: WebhookFormat;

  @Field(() => String, { nullable: true, description: "PEM certificate(s) trusted for its TLS instead of the system's trust store; null: the system's." })
  caCertificate: string | null;
}

@ObjectType('SyslogSettings', { description: 'Where a syslog destination sends (RFC 5424).' })
export class SyslogSettings {
  @Field({ description: 'Host name or address of the syslog server.' })
  host: string;

  @Field(() => Int, { description: 'Its port.' })
  port: number;

  @Field(() => SyslogTransport, { description: 'UDP, TCP or TLS.' })
  transport: SyslogTransport;

  @Field(() => SyslogFormat, { description: 'The message after the header: JSON or CEF.' })
  format: SyslogFormat;

  @Field(() => String, { nullable: true, description: "PEM certificate(s) trusted for its TLS instead of the system's trust store; null: the system's." })
  caCertificate: string | null;
}

@ObjectType('EmailSettings', { description: 'The SMTP server an e-mail destination sends through, and to whom. The password is never shown.' })
export class EmailSettings {
  @Field({ description: 'Host name or address of the SMTP server.' })
  host: string;

  @Field(() => Int, { description: 'Its port.' })
  port: number;

  @Field({ description: 'TLS from the start (port 465); otherwise STARTTLS when the server offers it.' })
  secure: boolean;

  @Field(() => String, { nullable: true, description: 'The SMTP user name; null sends without authentication.' })
  username: string | null;

  @Field({ description: 'The From address.' })
  from: string;

  @Field(() => [String], { description: 'The recipients.' })
  to: string[];

  @Field(() => String, { nullable: true, description: "PEM certificate(s) trusted for its TLS instead of the system's trust store; null: the system's." })
  caCertificate: string | null;
}

/** Where alerts go: a webhook, a syslog server or SMTP. Its secret (webhook key, SMTP password) never leaves the service. */
@Entity('alert_destination')
@Index('IDX_alert_destination_account', ['accountId'])
@ObjectType({ implements: Node, simpleResolvers: true, description: 'Where alerts go: a webhook, a syslog server or e-mail through SMTP.' })
export class AlertDestination {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'int' })
  accountId: number;

  @ManyToOne(() => Account, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'FK_alert_destination_account' })
  account?: Account;

  @Column({ type: 'varchar', length: 64 })
  @Field({ description: 'Name, 1-64 characters.' })
  name: string;

  @Column({ type: 'varchar', length: 16 })
  @Field(() => AlertDestinationKind, { description: 'What kind of destination it is; the matching settings field is set.' })
  kind: AlertDestinationKind;

  @Column({ type: 'simple-json' })
  settings: DestinationSettings;

  /** The webhook's HMAC key or the SMTP password; never returned after creation. */
  @Column({ type: 'varchar', length: 255, nullable: true })
  secret: string | null;

  @Column({ type: 'boolean', default: false })
  @Field({ description: 'Whether its last delivery failed; set back to false by the next one that succeeds.' })
  failing: boolean;

  @Column({ type: 'text', nullable: true })
  @Field(() => String, { nullable: true, description: 'Why its last failed delivery (or test) failed.' })
  lastError: string | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When it last failed.' })
  lastErrorAt: Date | null;

  @TimestampColumn({ nullable: true })
  @Field(() => Date, { nullable: true, description: 'When alertDestinationTest last sent to it.' })
  lastTestedAt: Date | null;

  @TimestampColumn()
  @Field({ description: 'When it was created.' })
  createdAt: Date;

  @TimestampColumn()
  @Field({ description: 'When it was last changed.' })
  updatedAt: Date;

  @Field(() => WebhookSettings, { nullable: true, description: 'Set for WEBHOOK destinations.' })
  get webhook(): WebhookSettings | null {
    const s = this.settings;
    return s.kind === AlertDestinationKind.WEBHOOK ? { url: s.url, format: s.format, caCertificate: s.caCertificate ?? null } : null;
  }

  @Field(() => SyslogSettings, { nullable: true, description: 'Set for SYSLOG destinations.' })
  get syslog(): SyslogSettings | null {
    const s = this.settings;
    return s.kind === AlertDestinationKind.SYSLOG
      ? { host: s.host, port: s.port, transport: s.transport, format: s.format, caCertificate: s.caCertificate ?? null }
      : null;
  }

  @Field(() => EmailSettings, { nullable: true, description: 'Set for EMAIL destinations.' })
  get email(): EmailSettings | null {
    const s = this.settings;
    return s.kind === AlertDestinationKind.EMAIL
      ? { host: s.host, port: s.port, secure: s.secure, username: s.username, from: s.from, to: s.to, caCertificate: s.caCertificate ?? null }
      : null;
  }
}
