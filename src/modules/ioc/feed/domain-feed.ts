// Lines of a domain feed -> entry decisions. Pure. Formats and rules: ../shared/corpus/domains/SOURCES.md
// (plain/wildcard lists and maltrail trails, hosts files, Adblock `||x^`, RPZ zones); every corpus feed gives
// exactly its expected/ decisions. Every line is ignored (blank, comment, header, zone structure) or yields
// entries that are added, duplicates (a name already added from the same file) or skipped with a reason.

import net from 'node:net';
import { HOSTS_SINKS } from './feed-line';
import { checkDomainName, DomainSkipReason } from './domain-name';

export enum DomainFeedFormat {
  DOMAINS = 'DOMAINS',
  HOSTS = 'HOSTS',
  ADBLOCK = 'ADBLOCK',
  RPZ = 'RPZ',
}

export type DomainDecision =
  | { readonly status: 'added' | 'duplicate'; readonly domain: string; readonly token: string }
  | { readonly status: 'skipped'; readonly reason: DomainSkipReason; readonly message: string; readonly token: string };

const HOSTS_BOILERPLATE = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
]);
const RPZ_TRIGGER_LABELS = new Set(['rpz-ip', 'rpz-client-ip', 'rpz-nsip', 'rpz-nsdname']);
const RPZ_RECORD = /^\S+\s+(?:\d+\s+)?(?:IN\s+)?(?:CNAME|A|AAAA|TXT)\s+\S/i;
const CLASSES = new Set(['IN', 'CH', 'CHAOS', 'HS', 'ANY']);
const WS = /[ \t]+/;

function isAddress(token: string): boolean {
  const z = token.indexOf('%');
  const a = z >= 0 ? token.slice(0, z) : token;
  return net.isIPv4(a) || net.isIPv6(a);
}

/** Picks the format from the first 200 lines that are not blank and do not start with `# ! ; [` (SOURCES.md). */
export function detectDomainFeedFormat(lines: Iterable<string>): DomainFeedFormat {
  const sample: string[] = [];
  for (const line of lines) {
    if (line.trim() === '' || '#!;['.includes(line[0])) continue;
    sample.push(line);
    if (sample.length === 200) break;
  }
  if (sample.some((l) => /^\$(TTL|ORIGIN)\b/i.test(l))) return DomainFeedFormat.RPZ;
  if (sample.some((l) => l.startsWith('||'))) return DomainFeedFormat.ADBLOCK;
  if (sample.some((l) => RPZ_RECORD.test(l))) return DomainFeedFormat.RPZ;
  const hosts = sample.filter((l) => {
    const t = l.trim().split(WS);
    return t.length >= 2 && isAddress(t[0]);
  }).length;
  if (hosts * 2 > sample.length) return DomainFeedFormat.HOSTS;
  return DomainFeedFormat.DOMAINS;
}

/** Entries of one JavaScript Set at most (V8 refuses the next one with a RangeError). */
const SET_LIMIT = 2 ** 24;

/**
 * Distinct names, in Sets of at most `perSet` each: a feed within MAX_FEED_BYTES can hold more names than one Set
 * takes (17M names of 10 bytes are 170 MB). Below the limit it is one Set.
 */
export class DistinctNames {
  private readonly sets = [new Set<string>()];
  private count = 0;

  constructor(private readonly perSet = SET_LIMIT) {}

  get size(): number {
    return this.count;
  }

  has(name: string): boolean {
    for (const set of this.sets) if (set.has(name)) return true;
    return false;
  }

  /** Adds a name not yet here (has() said false). */
  add(name: string): void {
    let last = this.sets[this.sets.length - 1];
    if (last.size === this.perSet) {
      last = new Set<string>();
      this.sets.push(last);
    }
    last.add(name);
    this.count++;
  }
}

/**
 * Reads one file's lines in order; record() returns the decisions of one line (empty: ignored). Keeps the
 * names added so far (duplicates; `added`) and, for RPZ, the previous owner and the `( ... )` state.
 */
export class DomainFeedReader {
  /** The distinct names the file has added so far. */
  readonly added: DistinctNames;
  private rpzOwner = '';
  private rpzInParens = false;

  constructor(
    readonly format: DomainFeedFormat,
    namesPerSet?: number,
  ) {
    this.added = new DistinctNames(namesPerSet);
  }

  record(line: string): DomainDecision[] {
    switch (this.format) {
      case DomainFeedFormat.DOMAINS:
        return this.domainsLine(line);
      case DomainFeedFormat.HOSTS:
        return this.hostsLine(line);
      case DomainFeedFormat.ADBLOCK:
        return this.adblockLine(line);
      case DomainFeedFormat.RPZ:
        return this.rpzLine(line);
    }
  }

  private entry(token: string): DomainDecision {
    const r = checkDomainName(token);
    if (!r.ok) return { status: 'skipped', reason: r.reason, message: r.message, token };
    if (this.added.has(r.name)) return { status: 'duplicate', domain: r.name, token };
    this.added.add(r.name);
    return { status: 'added', domain: r.name, token };
  }

  private domainsLine(line: string): DomainDecision[] {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) return [];
    // `#` and `;` (address feeds' comments, e.g. Spamhaus's) start a comment: neither is part of a name.
    const hash = t.search(/[#;]/);
    const body = (hash < 0 ? t : t.slice(0, hash)).trim();
    if (body === '') return [];
    const tokens = body.split(WS);
    if (tokens.length > 1) return [{ status: 'skipped', reason: 'multiple-tokens', message: 'more than one token on the line', token: body }];
    return [this.entry(tokens[0])];
  }

  private hostsLine(line: string): DomainDecision[] {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return [];
    const hash = t.indexOf('#');
    const body = (hash < 0 ? t : t.slice(0, hash)).trim();
    if (body === '') return [];
    const tokens = body.split(WS);
    if (!isAddress(tokens[0])) return [{ status: 'skipped', reason: 'hosts-no-address', message: 'a hosts line starts with an IP address', token: tokens[0] }];
    // An address feed read as a hosts file (`IP # host`, ipsum's `IP<TAB>count`): no name after an address that is
    // no sink is an address indicator, not a hosts line without its name.
    if (!HOSTS_SINKS.has(tokens[0]) && !tokens.slice(1).some((x) => /[A-Za-z]/.test(x))) {
      return [{ status: 'skipped', reason: 'ip-address', message: 'an IP address (import it into an IP list)', token: tokens[0] }];
    }
    if (tokens.length === 1) return [{ status: 'skipped', reason: 'hosts-no-name', message: 'an address without a name', token: tokens[0] }];
    return tokens
      .slice(1)
      .map((name) =>
        HOSTS_BOILERPLATE.has(name.toLowerCase())
          ? { status: 'skipped', reason: 'hosts-boilerplate', message: 'a standard hosts-file name, not an indicator', token: name }
          : this.entry(name),
      );
  }

  private adblockLine(line: string): DomainDecision[] {
    const t = line.trim();
    if (t === '' || t.startsWith('!') || (t.startsWith('[') && t.endsWith(']'))) return [];
    if (/##|#@#|#\?#|#\$#|#%#/.test(t)) return [{ status: 'skipped', reason: 'abp-cosmetic', message: 'an element-hiding rule', token: t }];
    if (t.startsWith('#')) return [];
    if (t.startsWith('@@')) return [{ status: 'skipped', reason: 'abp-exception', message: 'an exception (allow) rule', token: t }];
    const m = /^\|\|([^|^$/*]+)\^(\$.*)?$/.exec(t);
    if (m !== null) {
      if (m[2] !== undefined) return [{ status: 'skipped', reason: 'abp-options', message: 'a rule with options', token: t }];
      return [this.entry(m[1])];
    }
    if (!/[|^$/*\s]/.test(t)) return [this.entry(t)];
    return [{ status: 'skipped', reason: 'abp-not-domain-rule', message: 'not a domain rule', token: t }];
  }

  private rpzLine(line: string): DomainDecision[] {
    const text = rpzStripComment(line);
    if (this.rpzInParens) {
      if (text.includes(')')) this.rpzInParens = false;
      return [];
    }
    if (text.trim() === '') return [];
    if (/^\$(TTL|ORIGIN|INCLUDE)\b/i.test(text)) return [];
    const opens = text.includes('(') && !text.includes(')');
    const indented = text[0] === ' ' || text[0] === '\t';
    const tokens = text.trim().split(WS);
    let owner: string;
    let i: number;
    if (indented) {
      owner = this.rpzOwner;
      i = 0;
    } else {
      owner = tokens[0];
      this.rpzOwner = owner;
      i = 1;
    }
    if (opens) this.rpzInParens = true;
    while (i < tokens.length && (/^\d+[smhdw]?$/i.test(tokens[i]) || CLASSES.has(tokens[i].toUpperCase()))) i++;
    const type = i < tokens.length ? tokens[i].toUpperCase() : '';
    if (owner === '@' || type === 'SOA' || type === 'NS') return [];
    if (owner.split('.').some((l) => RPZ_TRIGGER_LABELS.has(l.toLowerCase()))) {
      return [{ status: 'skipped', reason: 'rpz-non-qname-trigger', message: 'an IP, client or NS trigger, not a query name', token: owner }];
    }
    if (type === '') return [{ status: 'skipped', reason: 'rpz-unparsable', message: 'no record after the owner', token: owner }];
    if (type === 'CNAME' && tokens[i + 1]?.toLowerCase() === 'rpz-passthru.') {
      return [{ status: 'skipped', reason: 'rpz-passthru', message: 'a passthru (allow) rule', token: owner }];
    }
    return [this.entry(owner)];
  }
}

/** The text before the first `;` outside double quotes. */
function rpzStripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === ';' && !quoted) return line.slice(0, i);
  }
  return line;
}
