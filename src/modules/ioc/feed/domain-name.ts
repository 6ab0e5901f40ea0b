// A domain IOC entry as written in a feed or typed by a user -> the name stored and matched. Pure.
// Rules (../shared/corpus/domains/SOURCES.md, "Name rules"): an entry means the name and all its subdomains;
// names are lowercase ASCII (IDNs as punycode `xn--`); URLs are refused, never reduced to their host.

import { domainToASCII } from 'node:url';

/** Why a domain entry was refused; the words of SOURCES.md (the API's FeedSkipCode spells them in capitals). */
export type DomainSkipReason =
  | 'non-ascii'
  | 'url'
  | 'ip-address'
  | 'invalid-character'
  | 'wildcard-not-leading'
  | 'empty-name'
  | 'empty-label'
  | 'label-too-long'
  | 'name-too-long'
  | 'single-label'
  | 'invalid-tld'
  | 'multiple-tokens'
  | 'hosts-no-address'
  | 'hosts-no-name'
  | 'hosts-boilerplate'
  | 'abp-cosmetic'
  | 'abp-exception'
  | 'abp-options'
  | 'abp-not-domain-rule'
  | 'rpz-non-qname-trigger'
  | 'rpz-passthru'
  | 'rpz-unparsable';

export type DomainNameResult = { ok: true; name: string } | { ok: false; reason: DomainSkipReason; message: string };

const LABEL = /^[a-z0-9_-]{1,63}$/;
const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const V4_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const V6 = /^[0-9a-f:.]+$/;

function isDottedQuad(s: string): boolean {
  const m = DOTTED_QUAD.exec(s);
  return m !== null && [m[1], m[2], m[3], m[4]].every((o) => Number(o) <= 255);
}

function isIpv6(s: string): boolean {
  const t = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const z = t.indexOf('%');
  const a = z >= 0 ? t.slice(0, z) : t;
  return a.includes(':') && V6.test(a) && a.split('::').length <= 2;
}

const refuse = (reason: DomainSkipReason, message: string): DomainNameResult => ({ ok: false, reason, message });

export interface DomainNameOptions {
  /** Convert a Unicode name to punycode (node's url.domainToASCII) instead of refusing it as non-ascii (iocAdd). Feeds keep the rule: IDNs must be written as punycode. */
  toAscii?: boolean;
}

/** Applies the name rules to the text of one entry (`*.x`, `.x`, `x.` and `x` all mean x and its subdomains). */
export function checkDomainName(token: string, options: DomainNameOptions = {}): DomainNameResult {
  let s = token;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(s)) {
    if (!options.toAscii) return refuse('non-ascii', 'not ASCII: write an internationalised name as punycode (xn--)');
    const base = s.replace(/^\*\./, '').replace(/^\./, '');
    if (base.includes('/')) return refuse('url', 'a URL, not a domain (URLs are not reduced to their host)');
    const ascii = domainToASCII(base);
    if (ascii === '') return refuse('invalid-character', 'not a valid internationalised domain name');
    s = ascii;
  }
  if (s.includes('/')) {
    // An address feed's network (`1.10.16.0/20`, `2a12:2640::/29`) is no URL: say where it belongs.
    const slash = s.indexOf('/');
    const address = s.slice(0, slash);
    if (/^\d{1,3}$/.test(s.slice(slash + 1)) && (isDottedQuad(address) || isIpv6(address.toLowerCase()))) {
      return refuse('ip-address', 'an IP network (import it into an IP list)');
    }
    return refuse('url', 'a URL, not a domain (URLs are not reduced to their host)');
  }
  if (s.startsWith('*.')) s = s.slice(2);
  else if (s.startsWith('.')) s = s.slice(1);
  if (s.endsWith('.')) s = s.slice(0, -1);
  s = s.replace(/[A-Z]+/g, (x) => x.toLowerCase());
  if (s.includes(':')) {
    if (isIpv6(s) || V4_PORT.test(s)) return refuse('ip-address', 'an IP address (import it into an IP list)');
    return refuse('invalid-character', 'contains ":"');
  }
  if (isDottedQuad(s)) return refuse('ip-address', 'an IPv4 address (import it into an IP list)');
  if (s.includes('*')) return refuse('wildcard-not-leading', 'a wildcard is allowed only as a leading "*."');
  if (s === '') return refuse('empty-name', 'empty name');
  const labels = s.split('.');
  if (labels.some((l) => l === '')) return refuse('empty-label', 'empty label ("..")');
  if (labels.some((l) => l.length > 63)) return refuse('label-too-long', 'a label is longer than 63 characters');
  if (s.length > 253) return refuse('name-too-long', 'longer than 253 characters');
  if (!labels.every((l) => LABEL.test(l))) return refuse('invalid-character', 'characters other than a-z, 0-9, "-" and "_"');
  if (labels.length < 2) return refuse('single-label', 'a single label (a TLD or local name would match a whole namespace)');
  const tld = labels[labels.length - 1];
  if (!/[a-z]/.test(tld) || tld.includes('_')) return refuse('invalid-tld', 'the last label must contain a letter and no "_"');
  return { ok: true, name: s };
}

/** A query name (already lowercased by the DNS parser, or not) as the matcher compares it: ASCII lowercase, no trailing dot. */
export function queryNameKey(name: string): string {
  let s = name.endsWith('.') && name.length > 1 ? name.slice(0, -1) : name;
  if (/[A-Z]/.test(s)) s = s.replace(/[A-Z]+/g, (x) => x.toLowerCase());
  return s;
}

export { isDottedQuad, isIpv6 };
