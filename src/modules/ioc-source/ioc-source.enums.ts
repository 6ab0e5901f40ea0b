import { registerEnumType } from 'type-graphql';

/** How a source's body is read. */
export enum IocSourceFormat {
  AUTO = 'AUTO',
  TEXT = 'TEXT',
  STIX2 = 'STIX2',
  MISP_EVENT = 'MISP_EVENT',
  MISP_WARNINGLIST = 'MISP_WARNINGLIST',
}

registerEnumType(IocSourceFormat, {
  name: 'IocSourceFormat',
  description: 'How a source is parsed.',
  valuesConfig: {
    AUTO: {
      description:
        'Detected from the body: gzip is inflated first; text feeds, STIX bundles, MISP events and warninglists are told apart; HTML and anything else is refused.',
    },
    TEXT: {
      description: 'One address, CIDR or range a line with `#`/`;` comments: plain lists, Spamhaus DROP, ipsum, maltrail, FireHOL (as iocListImport reads).',
    },
    STIX2: {
      description:
        "A STIX 2.x bundle: indicators with [ipv4-addr:value = '...'], [ipv6-addr:value = '...'] and OR of those (valid_until becomes the expiry); other patterns are skipped with their reason.",
    },
    MISP_EVENT: { description: 'A MISP event (feed event file): ip-src, ip-dst, ip-src|port and ip-dst|port attributes with to_ids set, objects included.' },
    MISP_WARNINGLIST: { description: 'A MISP warninglist of type cidr or string: its addresses and networks, for an ALLOW list.' },
  },
});

/** Where a source stands after its last fetch. */
export enum IocSourceStatus {
  NEW = 'NEW',
  OK = 'OK',
  FAILING = 'FAILING',
  HELD = 'HELD',
}

registerEnumType(IocSourceStatus, {
  name: 'IocSourceStatus',
  description: "A source's state after its last fetch.",
  valuesConfig: {
    NEW: { description: 'Never fetched yet.' },
    OK: { description: 'The last fetch imported the feed or found it unchanged.' },
    FAILING: { description: 'The last fetch failed (see statusReason); the list kept its entries.' },
    HELD: { description: 'The last fetch would have removed most of the list; it was held for review and the list kept its entries.' },
  },
});

/** What one fetch did. */
export enum IocSourceFetchOutcome {
  IMPORTED = 'IMPORTED',
  NOT_MODIFIED = 'NOT_MODIFIED',
  FAILED = 'FAILED',
  HELD = 'HELD',
}

registerEnumType(IocSourceFetchOutcome, {
  name: 'IocSourceFetchOutcome',
  description: 'What one fetch of a source did.',
  valuesConfig: {
    IMPORTED: { description: "The feed replaced the list's entries (kept entries keep their IDs)." },
    NOT_MODIFIED: { description: 'The server answered 304 Not Modified to the conditional request: nothing changed.' },
    FAILED: { description: 'Nothing changed: see error.' },
    HELD: { description: 'Nothing changed: the feed would have removed most of the list (IOC_SOURCE_HOLD_BELOW_PERCENT).' },
  },
});
