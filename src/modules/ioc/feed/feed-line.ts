// One line of a threat-intel feed -> what to import. Pure. Formats: corpus/feeds/SOURCES.md.
//
// Rules: text before the first `#` or `;` is the entry, the rest is its comment; the first
// whitespace-separated token of the entry is an address, CIDR or range `a-b`; words after it (ipsum's
// `IP<TAB>count`) are kept as comment too. Host bits are cleared; networks broader than the limits
// (default IPv4 /8, IPv6 /16) are refused; anything else that is not an address is skipped.

import { Cidr, CidrErrorReason, CidrLimits, parseCidrOrRange } from '../../../common/net/cidr';

/** Why a feed line was not imported (ioc.enums.ts registers it for the API). */
export enum FeedSkipCode {
  NOT_AN_ADDRESS = 'NOT_AN_ADDRESS',
  INVALID_PREFIX = 'INVALID_PREFIX',
  INVALID_RANGE = 'INVALID_RANGE',
  TOO_BROAD = 'TOO_BROAD',
  LINE_TOO_LONG = 'LINE_TOO_LONG',
  NOT_TEXT = 'NOT_TEXT',
  // Domain feeds (DOMAIN lists, #18): the reasons of feed/domain-name.ts in capitals (`ip-address` -> IP_ADDRESS).
  NON_ASCII = 'NON_ASCII',
  URL = 'URL',
  IP_ADDRESS = 'IP_ADDRESS',
  INVALID_CHARACTER = 'INVALID_CHARACTER',
  WILDCARD_NOT_LEADING = 'WILDCARD_NOT_LEADING',
  EMPTY_NAME = 'EMPTY_NAME',
  EMPTY_LABEL = 'EMPTY_LABEL',
  LABEL_TOO_LONG = 'LABEL_TOO_LONG',
  NAME_TOO_LONG = 'NAME_TOO_LONG',
  SINGLE_LABEL = 'SINGLE_LABEL',
  INVALID_TLD = 'INVALID_TLD',
  MULTIPLE_TOKENS = 'MULTIPLE_TOKENS',
  HOSTS_NO_ADDRESS = 'HOSTS_NO_ADDRESS',
  HOSTS_NO_NAME = 'HOSTS_NO_NAME',
  HOSTS_BOILERPLATE = 'HOSTS_BOILERPLATE',
  ABP_COSMETIC = 'ABP_COSMETIC',
  ABP_EXCEPTION = 'ABP_EXCEPTION',
  ABP_OPTIONS = 'ABP_OPTIONS',
  ABP_NOT_DOMAIN_RULE = 'ABP_NOT_DOMAIN_RULE',
  RPZ_NON_QNAME_TRIGGER = 'RPZ_NON_QNAME_TRIGGER',
  RPZ_PASSTHRU = 'RPZ_PASSTHRU',
  RPZ_UNPARSABLE = 'RPZ_UNPARSABLE',
  /** A record of a structured feed (STIX, MISP) that names no address this service matches. */
  UNSUPPORTED_RECORD = 'UNSUPPORTED_RECORD',
  /** IP lists: a hosts-file line (`0.0.0.0 name`), whose indicator is the name. */
  HOSTS_ENTRY = 'HOSTS_ENTRY',
}

/** The addresses hosts-file block lists send their names to: never the indicator of such a line. */
export const HOSTS_SINKS = new Set(['0.0.0.0', '127.0.0.1', '::', '::1', '0:0:0:0:0:0:0:0', '0:0:0:0:0:0:0:1']);
/** A host name as hosts files write them (a letter somewhere: not a count such as ipsum's). */
const HOST_NAME = /^[A-Za-z0-9_.-]*[A-Za-z][A-Za-z0-9_.-]*$/;

export type FeedLineResult =
  | { readonly type: 'blank' }
  | { readonly type: 'comment' }
  | {
      readonly type: 'entry';
      /** One CIDR, or the minimal list for a range. */
      readonly cidrs: Cidr[];
      readonly comment?: string;
      /** Epoch ms after which the entry never matches (structured feeds such as STIX's valid_until). */
      readonly expiresAt?: number;
      /** Host bits were cleared (`10.1.2.3/8` -> `10.0.0.0/8`). */
      readonly normalized: boolean;
    }
  | { readonly type: 'skip'; readonly code: FeedSkipCode; readonly reason: string };

export type FeedLineOptions = CidrLimits;

const SKIP_CODES: Record<CidrErrorReason, FeedSkipCode> = {
  invalidAddress: FeedSkipCode.NOT_AN_ADDRESS,
  invalidPrefix: FeedSkipCode.INVALID_PREFIX,
  tooBroad: FeedSkipCode.TOO_BROAD,
  invalidRange: FeedSkipCode.INVALID_RANGE,
  rangeReversed: FeedSkipCode.INVALID_RANGE,
  mixedFamilies: FeedSkipCode.INVALID_RANGE,
};

function isSpace(c: number): boolean {
  // space, \t, \n, \v, \f, \r
  return c === 32 || (c >= 9 && c <= 13);
}

function commentCut(line: string): number {
  const hash = line.indexOf('#');
  const semi = line.indexOf(';');
  if (hash < 0) return semi;
  if (semi < 0) return hash;
  return Math.min(hash, semi);
}

export function parseFeedLine(line: string, options?: FeedLineOptions): FeedLineResult {
  const cut = commentCut(line);
  const end = cut < 0 ? line.length : cut;
  let i = 0;
  while (i < end && isSpace(line.charCodeAt(i))) i++;
  if (i === end) return cut < 0 ? { type: 'blank' } : { type: 'comment' };
  const tokenStart = i;
  while (i < end && !isSpace(line.charCodeAt(i))) i++;
  const token = line.slice(tokenStart, i);
  const parsed = parseCidrOrRange(token, options);
  if (!parsed.ok) return { type: 'skip', code: SKIP_CODES[parsed.reason], reason: parsed.message };

  const extra = line.slice(i, end).trim().replace(/\s+/g, ' ');
  // A hosts file (`0.0.0.0 ads.example`, `127.0.0.1 localhost`) names its indicators; the address is only where
  // they are sent, and would be a wrong entry (what README's "an IP list skips the names of a mixed feed" means).
  const name = extra.split(' ', 1)[0];
  if (name && HOSTS_SINKS.has(token) && HOST_NAME.test(name)) {
    return {
      type: 'skip',
      code: FeedSkipCode.HOSTS_ENTRY,
      reason: `a hosts-file line: the name '${name.slice(0, 80)}' is the indicator, ${token} only where it is sent (import the file into a DOMAIN list)`,
    };
  }
  const note = cut < 0 ? '' : line.slice(cut + 1).trim();
  // ipsum: `IP<TAB>count`, the number of blocklists naming the address.
  const parts = [/^\d+$/.test(extra) ? `count ${extra}` : extra, note].filter((p) => p.length > 0);
  const comment = parts.join(' ');
  return comment.length > 0
    ? { type: 'entry', cidrs: parsed.cidrs, comment, normalized: parsed.normalized }
    : { type: 'entry', cidrs: parsed.cidrs, normalized: parsed.normalized };
}
