import { AlertDestinationKind, SyslogFormat, SyslogTransport, WebhookFormat } from '../alert.enums';

/** Where and how a destination sends; stored as JSON beside the destination (secrets apart, in their own column). */
export type DestinationSettings = WebhookSettingsData | SyslogSettingsData | EmailSettingsData;

export interface WebhookSettingsData {
  kind: AlertDestinationKind.WEBHOOK;
  url: string;
  format: WebhookFormat;
  /** PEM CA certificate(s) trusted instead of the system's; absent: the system's. Always verified. */
  caCertificate?: string | null;
}

export interface SyslogSettingsData {
  kind: AlertDestinationKind.SYSLOG;
  host: string;
  port: number;
  transport: SyslogTransport;
  format: SyslogFormat;
  /** PEM CA certificate(s) trusted instead of the system's; absent: the system's. Always verified. */
  caCertificate?: string | null;
}

export interface EmailSettingsData {
  kind: AlertDestinationKind.EMAIL;
  host: string;
  port: number;
  /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  username: string | null;
  from: string;
  to: string[];
  /** PEM CA certificate(s) trusted instead of the system's; absent: the system's. Always verified. */
  caCertificate?: string | null;
}
