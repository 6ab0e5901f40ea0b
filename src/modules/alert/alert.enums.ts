import { registerEnumType } from 'type-graphql';

/** Where an alert destination sends. */
export enum AlertDestinationKind {
  WEBHOOK = 'WEBHOOK',
  SYSLOG = 'SYSLOG',
  EMAIL = 'EMAIL',
}

/** The body a webhook destination posts. */
export enum WebhookFormat {
  /** The documented alert JSON (see README, "Alerts"). */
  JSON = 'JSON',
  /** `{ "text": ... }`, what Slack's (and Mattermost's, Rocket.Chat's) incoming webhooks accept. */
  SLACK = 'SLACK',
}

export enum SyslogTransport {
  UDP = 'UDP',
  /** RFC 6587 octet counting. */
  TCP = 'TCP',
  /** RFC 5425: octet counting over TLS (port 6514 is usual). */
  TLS = 'TLS',
}

/** What follows the RFC 5424 header. */
export enum SyslogFormat {
  JSON = 'JSON',
  /** ArcSight Common Event Format. */
  CEF = 'CEF',
}

/** How a hit was found. Rules key on flow_hit.found_by where the column exists (retro-hunt, #17); until then every hit is UPLOAD. */
export enum HitFoundBy {
  UPLOAD = 'UPLOAD',
  RETRO_HUNT = 'RETRO_HUNT',
}

// Hit kinds are reports' too: declared and registered with the other hit enums.
export { HitKind } from '../flow-hit/flow-hit.enums';

/** How a rule's alerts go out. */
export enum AlertDigestMode {
  /** Each alert as it is raised. */
  IMMEDIATE = 'IMMEDIATE',
  /** One digest a day at the rule's local time. */
  DAILY = 'DAILY',
  /** One digest a week, on the rule's weekday at its local time. */
  WEEKLY = 'WEEKLY',
}

/** Where one alert's delivery to one destination stands. */
export enum AlertDeliveryStatus {
  PENDING = 'PENDING',
  DELIVERED = 'DELIVERED',
  /** Retried for the whole retry period (24 h) without success, or refused for good. */
  FAILED = 'FAILED',
}

registerEnumType(AlertDestinationKind, {
  name: 'AlertDestinationKind',
  description: 'Where an alert destination sends.',
  valuesConfig: {
    WEBHOOK: { description: 'An HTTP(S) POST, signed with HMAC-SHA256.' },
    SYSLOG: { description: 'An RFC 5424 syslog message over UDP or TCP.' },
    EMAIL: { description: 'An e-mail through an SMTP server.' },
  },
});
registerEnumType(WebhookFormat, {
  name: 'WebhookFormat',
  description: 'The body a webhook destination posts.',
  valuesConfig: {
    JSON: { description: 'The documented alert JSON.' },
    SLACK: { description: 'A Slack-compatible `{ "text": ... }` body (incoming webhooks of Slack, Mattermost, Rocket.Chat).' },
  },
});
registerEnumType(SyslogTransport, {
  name: 'SyslogTransport',
  description: 'How syslog messages travel.',
  valuesConfig: {
    UDP: { description: 'One datagram per message.' },
    TCP: { description: 'A stream, messages framed by octet counting (RFC 6587).' },
    TLS: { description: 'Octet counting over TLS (RFC 5425), the certificate verified.' },
  },
});
registerEnumType(SyslogFormat, {
  name: 'SyslogFormat',
  description: 'The message after the RFC 5424 header.',
  valuesConfig: { JSON: { description: 'The documented alert JSON.' }, CEF: { description: 'ArcSight Common Event Format.' } },
});
registerEnumType(HitFoundBy, {
  name: 'HitFoundBy',
  description: 'How a hit was found.',
  valuesConfig: {
    UPLOAD: { description: 'When its upload was processed.' },
    RETRO_HUNT: { description: 'When a list change re-judged a stored upload (retro-hunt).' },
  },
});
registerEnumType(AlertDeliveryStatus, {
  name: 'AlertDeliveryStatus',
  description: 'Where the delivery of one alert to one destination stands.',
  valuesConfig: {
    PENDING: { description: 'Not delivered yet; the worker tries (again) at nextAttemptAt.' },
    DELIVERED: { description: 'The destination accepted it.' },
    FAILED: { description: 'Given up: refused for good, or failing for the whole retry period (24 h).' },
  },
});
registerEnumType(AlertDigestMode, {
  name: 'AlertDigestMode',
  description: "How a rule's alerts go out.",
  valuesConfig: {
    IMMEDIATE: { description: 'Each alert as it is raised.' },
    DAILY: { description: 'One digest a day, at digestTime in digestTimeZone, of the alerts raised since the last one.' },
    WEEKLY: { description: 'One digest a week, on digestWeekday at digestTime in digestTimeZone.' },
  },
});
