import { registerEnumType } from 'type-graphql';
import { Direction } from '../log-upload/flows/direction';
import { Protocol } from '../log-upload/parsing/packet-batch';

// The pure cores own these enums (they import no GraphQL); they are registered for the schema here.
export { Direction };

/** What a hit matched: an address entry (a flow hit) or a domain entry (a DNS hit). */
export enum HitKind {
  IP = 'IP',
  DNS = 'DNS',
}

/** Which end of the connection held the matched address. */
export enum MatchedSide {
  INITIATOR = 'INITIATOR',
  RESPONDER = 'RESPONDER',
}

/** Transport protocol as tcpdump's line says it. */
export enum TransportProtocol {
  TCP = 'TCP',
  UDP = 'UDP',
  ICMP = 'ICMP',
  ICMP6 = 'ICMP6',
  UNKNOWN = 'UNKNOWN',
}

/** The parser's numeric protocol as the stored name. */
export function protocolName(p: Protocol): TransportProtocol {
  switch (p) {
    case Protocol.TCP:
      return TransportProtocol.TCP;
    case Protocol.UDP:
      return TransportProtocol.UDP;
    case Protocol.ICMP:
      return TransportProtocol.ICMP;
    case Protocol.ICMP6:
      return TransportProtocol.ICMP6;
    default:
      return TransportProtocol.UNKNOWN;
  }
}

registerEnumType(HitKind, {
  name: 'HitKind',
  description: 'What a hit matched.',
  valuesConfig: {
    IP: { description: 'An address entry, by a flow (a flow hit).' },
    DNS: { description: 'A domain entry, by a DNS query (a DNS hit).' },
  },
});
registerEnumType(Direction, {
  name: 'Direction',
  description: 'Who opened a connection.',
  valuesConfig: {
    INBOUND: { description: "Opened from outside (also when neither or both ends are internal: the original product's default)." },
    OUTBOUND: { description: "Opened by an internal host (RFC 1918, fc00::/7 or the device's internal networks) towards an external one." },
  },
});

registerEnumType(MatchedSide, {
  name: 'MatchedSide',
  description: 'Which end of the connection held the matched address.',
  valuesConfig: {
    INITIATOR: { description: 'The end that opened the connection (source of the SYN, or of the first packet).' },
    RESPONDER: { description: 'The end that answered.' },
  },
});

registerEnumType(TransportProtocol, {
  name: 'TransportProtocol',
  description: 'Transport protocol as the tcpdump line shows it.',
  valuesConfig: {
    TCP: { description: 'TCP (the line has `Flags [...]`).' },
    UDP: { description: 'UDP (the line says UDP).' },
    ICMP: { description: 'ICMP.' },
    ICMP6: { description: 'ICMPv6.' },
    UNKNOWN: { description: 'Anything else (application printers without a transport name, ESP, fragments...).' },
  },
});

/** Common report windows, ending now. */
export enum TimeRangePreset {
  LAST_24_HOURS = 'LAST_24_HOURS',
  LAST_7_DAYS = 'LAST_7_DAYS',
  LAST_30_DAYS = 'LAST_30_DAYS',
}

export const PRESET_MS: Record<TimeRangePreset, number> = {
  LAST_24_HOURS: 24 * 3600_000,
  LAST_7_DAYS: 7 * 24 * 3600_000,
  LAST_30_DAYS: 30 * 24 * 3600_000,
};

/** How drill-down pages are ordered. */
export enum FlowHitOrder {
  FIRST_SEEN_DESC = 'FIRST_SEEN_DESC',
  FIRST_SEEN_ASC = 'FIRST_SEEN_ASC',
  PACKETS_DESC = 'PACKETS_DESC',
  SEVERITY_DESC = 'SEVERITY_DESC',
}

registerEnumType(TimeRangePreset, {
  name: 'TimeRangePreset',
  description: 'A report window ending now.',
  valuesConfig: {
    LAST_24_HOURS: { description: 'The last 24 hours.' },
    LAST_7_DAYS: { description: 'The last 7 days.' },
    LAST_30_DAYS: { description: 'The last 30 days.' },
  },
});

registerEnumType(FlowHitOrder, {
  name: 'FlowHitOrder',
  description: 'Order of flow hits in the drill-down.',
  valuesConfig: {
    FIRST_SEEN_DESC: { description: 'Newest capture time first (default).' },
    FIRST_SEEN_ASC: { description: 'Oldest capture time first.' },
    PACKETS_DESC: { description: 'Most packets first.' },
    SEVERITY_DESC: { description: 'Most severe first, then newest.' },
  },
});
