import { registerEnumType } from 'type-graphql';
import { describeScope, IP_SCOPES, IpScope } from '../../common/net/ip';
import { FeedSkipCode } from './feed/feed-line';

export { FeedSkipCode };

/** BLOCK lists flag traffic; ALLOW lists exempt addresses from every BLOCK list of the same policy. */
export enum IocListKind {
  BLOCK = 'BLOCK',
  ALLOW = 'ALLOW',
}

/** Threat type of a list (the original product's "target" categories). */
export enum IocCategory {
  C2_BOTNET = 'C2_BOTNET',
  MALWARE = 'MALWARE',
  RANSOMWARE = 'RANSOMWARE',
  PHISHING = 'PHISHING',
  EXPLOIT = 'EXPLOIT',
  SCANNER = 'SCANNER',
  SPAM = 'SPAM',
  BRUTE_FORCE = 'BRUTE_FORCE',
  TOR_ANONYMIZER = 'TOR_ANONYMIZER',
  PROXY = 'PROXY',
  REPUTATION = 'REPUTATION',
  BOGON = 'BOGON',
  ALLOWLIST = 'ALLOWLIST',
  OTHER = 'OTHER',
}

/** How an import treats the entries already in the list. */
export enum ImportMode {
  APPEND = 'APPEND',
  REPLACE = 'REPLACE',
}

registerEnumType(IocListKind, {
  name: 'IocListKind',
  description: 'Whether a list flags or exempts addresses. ALLOW wins over BLOCK within a policy.',
  valuesConfig: {
    BLOCK: { description: 'Traffic with an address on the list is a hit.' },
    ALLOW: { description: 'Addresses on the list are never hits, whatever BLOCK list also holds them.' },
  },
});

registerEnumType(IocCategory, {
  name: 'IocCategory',
  description: 'The threat type a list describes.',
  valuesConfig: {
    C2_BOTNET: { description: 'Command-and-control servers and botnet infrastructure.' },
    MALWARE: { description: 'Malware distribution and infected hosts.' },
    RANSOMWARE: { description: 'Ransomware infrastructure.' },
    PHISHING: { description: 'Phishing sites and their hosting.' },
    EXPLOIT: { description: 'Exploit kits and exploitation sources.' },
    SCANNER: { description: 'Mass scanners and probes.' },
    SPAM: { description: 'Spam sources and hijacked networks (e.g. Spamhaus DROP).' },
    BRUTE_FORCE: { description: 'Brute-force and credential-stuffing sources.' },
    TOR_ANONYMIZER: { description: 'Tor nodes and other anonymizers (usually a policy matter, severity 1).' },
    PROXY: { description: 'Open and commercial proxies, VPN exits.' },
    REPUTATION: { description: 'Aggregated reputation lists (e.g. ipsum, FireHOL level 1).' },
    BOGON: { description: 'Unallocated or reserved space that should never be routed.' },
    ALLOWLIST: { description: 'Known-good services (for ALLOW lists).' },
    OTHER: { description: 'Anything else.' },
  },
});

registerEnumType(ImportMode, {
  name: 'ImportMode',
  description: 'How an import treats the entries already in the list.',
  valuesConfig: {
    APPEND: { description: "Add the file's entries; entries already in the list count as duplicates." },
    REPLACE: {
      description:
        "Make the list hold exactly the file's entries, atomically: entries the file keeps keep their IDs, the rest are removed; a failed import leaves the old entries in place.",
    },
  },
});

export enum LookupVerdict {
  BLOCKED = 'BLOCKED',
  ALLOWED = 'ALLOWED',
  NOT_LISTED = 'NOT_LISTED',
  NOT_MATCHABLE = 'NOT_MATCHABLE',
}

registerEnumType(LookupVerdict, {
  name: 'LookupVerdict',
  description: 'What a policy makes of an address.',
  valuesConfig: {
    BLOCKED: { description: 'An active BLOCK entry of the policy contains it, and no ALLOW entry does.' },
    ALLOWED: { description: 'An active ALLOW entry of the policy contains it: never a hit.' },
    NOT_LISTED: { description: 'No active entry of the policy contains it (only expired ones do).' },
    NOT_MATCHABLE: {
      description:
        'Uploads never match the address (internal or local scope, see `matchable` and `notMatchableReason`): whatever entries contain it, it is never a hit.',
    },
  },
});

// The feed reader's own set (feed/ stays free of GraphQL).
registerEnumType(FeedSkipCode, {
  name: 'IocSkipReason',
  description: 'Why a line of a feed was not imported.',
  valuesConfig: {
    NOT_AN_ADDRESS: { description: 'Its first word is not an IP address, CIDR or range.' },
    INVALID_PREFIX: { description: 'A CIDR whose prefix length is not valid for its address family (e.g. /33 for IPv4).' },
    INVALID_RANGE: { description: 'A range `a-b` whose ends are reversed, of different families, or not addresses.' },
    TOO_BROAD: { description: 'A network broader than entries may be (IPv4 /8, IPv6 /16).' },
    LINE_TOO_LONG: { description: 'Longer than the per-line limit of a feed.' },
    NOT_TEXT: { description: 'Not UTF-8 text.' },
    NON_ASCII: { description: 'Domain lists: a name with non-ASCII characters (feeds must write internationalised names as punycode `xn--`).' },
    URL: { description: 'Domain lists: a URL or path (`host/path`, `http://...`); URLs are never reduced to their host, which may be shared or compromised.' },
    IP_ADDRESS: { description: 'Domain lists: an IP address or `IP:port` (it belongs in an IP list).' },
    INVALID_CHARACTER: { description: 'Domain lists: characters other than a-z, 0-9, `-` and `_` in a label (e.g. a regex).' },
    WILDCARD_NOT_LEADING: { description: 'Domain lists: a `*` other than a leading `*.`.' },
    EMPTY_NAME: { description: 'Domain lists: nothing left of the name.' },
    EMPTY_LABEL: { description: 'Domain lists: an empty label (`a..b`).' },
    LABEL_TOO_LONG: { description: 'Domain lists: a label longer than 63 characters.' },
    NAME_TOO_LONG: { description: 'Domain lists: a name longer than 253 characters.' },
    SINGLE_LABEL: { description: 'Domain lists: a single label such as a TLD (`.xyz`) or a local name, which would match a whole namespace.' },
    INVALID_TLD: { description: 'Domain lists: the last label has no letter or has an underscore.' },
    MULTIPLE_TOKENS: { description: 'Domain lists: more than one word on a line of a plain list.' },
    HOSTS_NO_ADDRESS: { description: 'Hosts files: the line does not start with an IP address.' },
    HOSTS_NO_NAME: { description: 'Hosts files: an address without a name.' },
    HOSTS_BOILERPLATE: { description: 'Hosts files: a standard name such as localhost or ip6-allnodes, not an indicator.' },
    ABP_COSMETIC: { description: 'Adblock lists: an element-hiding rule (`##`), not a domain.' },
    ABP_EXCEPTION: { description: 'Adblock lists: an exception rule (`@@`), an allow rule that a block list does not import.' },
    ABP_OPTIONS: { description: 'Adblock lists: a `||name^$options` rule, whose options narrow it to some requests.' },
    ABP_NOT_DOMAIN_RULE: { description: 'Adblock lists: a rule that is not `||name^` or a bare name.' },
    RPZ_NON_QNAME_TRIGGER: { description: 'RPZ zones: an IP, client-IP or name-server trigger, not a query name.' },
    RPZ_PASSTHRU: { description: 'RPZ zones: a `CNAME rpz-passthru.` allow rule.' },
    RPZ_UNPARSABLE: { description: 'RPZ zones: an owner without a record.' },
    UNSUPPORTED_RECORD: {
      description: 'A record of a structured feed that names no IP address or network: another STIX pattern, another MISP attribute type, to_ids false.',
    },
    HOSTS_ENTRY: {
      description:
        'IP lists: a hosts-file line (`0.0.0.0 ads.example`, `127.0.0.1 localhost`): its indicator is the name, and the address only where the name is sent; import the file into a DOMAIN list.',
    },
  },
});

/** What a list's entries are (#18): addresses and networks (table ioc) or domains (table ioc_domain). */
export enum IocEntryKind {
  IP = 'IP',
  DOMAIN = 'DOMAIN',
}

registerEnumType(IocEntryKind, {
  name: 'IocEntryKind',
  description: "What a list's entries are.",
  valuesConfig: {
    IP: { description: 'IPv4/IPv6 addresses and networks, matched against the addresses of the traffic.' },
    DOMAIN: { description: 'Domains, each matching itself and every subdomain, matched against the names the traffic looks up in DNS.' },
  },
});

export const SEVERITY_DESCRIPTION =
  'Severity 0-5: 0 no threat, 1 policy violation (e.g. Tor), 2 spam or scanning, 3 minor attacks, 4 serious attacks, 5 full adversarial control (e.g. C2).';

/** The IANA special-purpose class of an address (common/net's IpScope, named for the schema). */
export enum AddressScope {
  PUBLIC = 'PUBLIC',
  PRIVATE = 'PRIVATE',
  UNIQUE_LOCAL = 'UNIQUE_LOCAL',
  LOOPBACK = 'LOOPBACK',
  LINK_LOCAL = 'LINK_LOCAL',
  MULTICAST = 'MULTICAST',
  BROADCAST = 'BROADCAST',
  UNSPECIFIED = 'UNSPECIFIED',
  THIS_NETWORK = 'THIS_NETWORK',
  CARRIER_GRADE_NAT = 'CARRIER_GRADE_NAT',
  IETF_PROTOCOL = 'IETF_PROTOCOL',
  DOCUMENTATION = 'DOCUMENTATION',
  BENCHMARKING = 'BENCHMARKING',
  DISCARD = 'DISCARD',
  NAT64 = 'NAT64',
  RESERVED = 'RESERVED',
  /** Not an address: iocLookup was given a domain name (#18). */
  DOMAIN = 'DOMAIN',
}

/** common/net's scope names (camelCase, it imports no GraphQL) to the enum's values. */
export function addressScopeOf(scope: IpScope): AddressScope {
  return scope.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase() as AddressScope;
}

registerEnumType(AddressScope, {
  name: 'AddressScope',
  description: 'What kind of address it is, by the IANA special-purpose registries (RFC 6890 and successors). Only PUBLIC addresses can cross the internet.',
  valuesConfig: {
    ...Object.fromEntries(IP_SCOPES.map((s) => [addressScopeOf(s), { description: `${describeScope(s)[0].toUpperCase()}${describeScope(s).slice(1)}.` }])),
    DOMAIN: { description: 'Not an address: a domain name (iocLookup of a name; its entries are in `domainMatches`).' },
  },
});
