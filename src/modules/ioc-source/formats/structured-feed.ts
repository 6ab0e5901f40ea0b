// Structured threat-intel documents (STIX 2.x bundles, MISP events, MISP warninglists) as numbered feed
// records, the same FeedLine the text reader yields, so the one import path stores them. Pure.
//
// A record is one object of the document (a STIX object, a MISP attribute, a warninglist value), numbered
// from 1 in document order; records that are not indicators at all (STIX identities, relationships) count
// as comments, indicators this service cannot match are skipped with their reason.

import { parseCidrOrRange } from '../../../common/net/cidr';
import { clip } from '../../../common/text';
import { FeedLineResult, FeedSkipCode } from '../../ioc/feed/feed-line';
import { FeedLine } from '../../ioc/feed/feed-reader';

export type StructuredFormat = 'STIX2' | 'MISP_EVENT' | 'MISP_WARNINGLIST';

const TEXT_MAX = 200;

/**
 * The event UUIDs of a MISP feed's manifest.json (an object of event UUID -> { info, timestamp, ... }), or
 * null when the document is not one. The feed's events are `<uuid>.json` beside it.
 */
export function mispManifestEvents(doc: unknown): string[] | null {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const entries = Object.entries(doc as Record<string, unknown>);
  if (entries.length === 0) return null;
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  for (const [key, value] of entries) {
    if (!uuid.test(key) || !value || typeof value !== 'object' || !('info' in value)) return null;
  }
  return entries.map(([key]) => key);
}

/** Which structured format a parsed JSON document is, or null. */
export function detectStructured(doc: unknown): StructuredFormat | null {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const o = doc as Record<string, unknown>;
  if (o.type === 'bundle' && Array.isArray(o.objects)) return 'STIX2';
  if (o.Event && typeof o.Event === 'object') return 'MISP_EVENT';
  if (Array.isArray(o.Attribute) && typeof o.uuid === 'string') return 'MISP_EVENT';
  if (Array.isArray(o.list) && typeof o.name === 'string' && typeof o.type === 'string') return 'MISP_WARNINGLIST';
  return null;
}

const skip = (reason: string): FeedLineResult => ({ type: 'skip', code: FeedSkipCode.UNSUPPORTED_RECORD, reason });

function entry(value: string, comment: string | undefined, expiresAt?: number): FeedLineResult {
  const parsed = parseCidrOrRange(value.trim());
  if (!parsed.ok) {
    const code = parsed.reason === 'tooBroad' ? FeedSkipCode.TOO_BROAD : FeedSkipCode.NOT_AN_ADDRESS;
    return { type: 'skip', code, reason: parsed.message };
  }
  return {
    type: 'entry',
    cidrs: parsed.cidrs,
    normalized: parsed.normalized,
    ...(comment ? { comment } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

function line(lineNumber: number, text: string, result: FeedLineResult): FeedLine {
  return { lineNumber, text: text.length > TEXT_MAX ? `${text.slice(0, TEXT_MAX)}...` : text, result };
}

const SIMPLE_ONLY = 'only [ipv4-addr|ipv6-addr|domain-name:value = ...] and OR of those are read';
const PATTERN_TYPES = new Set(['ipv4-addr:value', 'ipv6-addr:value', 'domain-name:value']);
/** Longest pattern read (some 30,000 addresses OR-ed); a longer one is skipped with its length. */
export const MAX_PATTERN_CHARS = 1_000_000;

type PatternToken = { kind: 'word' | 'string' | 'punct'; text: string };

/**
 * The tokens of a STIX pattern in one pass: words (object paths, keywords), quoted strings with their escapes
 * undone, and single punctuation characters; whitespace only separates. Null for an unterminated string.
 */
function patternTokens(pattern: string): PatternToken[] | null {
  const tokens: PatternToken[] = [];
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = '';
      let j = i + 1;
      for (; j < pattern.length && pattern[j] !== "'"; j++) {
        if (pattern[j] === '\\' && j + 1 < pattern.length) j++;
        value += pattern[j];
      }
      if (j >= pattern.length) return null;
      tokens.push({ kind: 'string', text: value });
      i = j + 1;
    } else if (/[\w:.-]/.test(c)) {
      let j = i + 1;
      while (j < pattern.length && /[\w:.-]/.test(pattern[j])) j++;
      tokens.push({ kind: 'word', text: pattern.slice(i, j) });
      i = j;
    } else {
      tokens.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return tokens;
}

/**
 * The values of a simple STIX pattern, or the reason it is not one: `[path = 'v' OR path = 'w']` in one or
 * several observations joined by OR (`[a = 'x'] OR [b = 'y']`), path one of ipv4-addr:value, ipv6-addr:value
 * and domain-name:value. Read token by token, so time grows with the pattern's length alone.
 */
export function stixPatternValues(pattern: string): { ok: true; values: Array<{ type: string; value: string }> } | { ok: false; reason: string } {
  if (pattern.length > MAX_PATTERN_CHARS)
    return { ok: false, reason: `the pattern is ${pattern.length} characters long; at most ${MAX_PATTERN_CHARS} are read` };
  const refused = { ok: false as const, reason: SIMPLE_ONLY };
  const tokens = patternTokens(pattern);
  if (!tokens || tokens.length === 0) return refused;
  const values: Array<{ type: string; value: string }> = [];
  let i = 0;
  const is = (kind: PatternToken['kind'], text?: string) => i < tokens.length && tokens[i].kind === kind && (text === undefined || tokens[i].text === text);
  for (;;) {
    if (!is('punct', '[')) return refused;
    i++;
    for (;;) {
      // path = 'value'
      if (!is('word') || !PATTERN_TYPES.has(tokens[i].text)) return refused;
      const type = tokens[i++].text.replace(/:value$/, '');
      if (!is('punct', '=')) return refused;
      i++;
      if (!is('string')) return refused;
      values.push({ type, value: tokens[i++].text });
      if (is('word', 'OR')) {
        i++;
        continue;
      }
      if (is('punct', ']')) break;
      return refused;
    }
    i++;
    if (i === tokens.length) return { ok: true, values };
    if (!is('word', 'OR')) return refused;
    i++;
  }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 timestamp (what STIX requires of valid_until) as epoch ms, or null: Date.parse reads "1", "-1" and
 * "December 17, 1995" as well, and rolls 2030-02-31 over into March. A leap second (:60) counts as the next second.
 */
export function rfc3339Time(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const ms = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return null;
  let offset = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, ms);
  return utc.getTime() - offset;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** A record's text for an item that is not what it should be (null, a number, an array). */
const shown = (v: unknown) => clip(JSON.stringify(v) ?? String(v), TEXT_MAX);
/** `1`, `true` and `"1"`: MISP writes its flags in all three forms. */
const flag = (v: unknown) => v === true || v === 1 || v === '1';

function* stix(doc: Record<string, unknown>): Generator<FeedLine> {
  const objects = doc.objects as unknown[];
  for (let i = 0; i < objects.length; i++) {
    const o = (objects[i] ?? {}) as Record<string, unknown>;
    const n = i + 1;
    const id = typeof o.id === 'string' ? o.id : `object ${n}`;
    if (o.type !== 'indicator') {
      yield line(n, id, { type: 'comment' });
      continue;
    }
    const pattern = typeof o.pattern === 'string' ? o.pattern : '';
    const text = `${id} ${pattern}`;
    if (o.revoked === true) {
      yield line(n, text, skip('the indicator is revoked'));
      continue;
    }
    if (o.pattern_type !== undefined && o.pattern_type !== 'stix') {
      yield line(n, text, skip(`pattern_type ${String(o.pattern_type)} is not read (only stix)`));
      continue;
    }
    const parsed = stixPatternValues(pattern);
    if (!parsed.ok) {
      yield line(n, text, skip(`pattern ${pattern.slice(0, 100)}: ${parsed.reason}`));
      continue;
    }
    const domains = parsed.values.filter((v) => v.type === 'domain-name');
    if (domains.length === parsed.values.length) {
      yield line(n, text, skip('domain-name indicators belong in a domain list'));
      continue;
    }
    let expiresAt: number | undefined;
    if (o.valid_until !== undefined) {
      const t = typeof o.valid_until === 'string' ? rfc3339Time(o.valid_until) : null;
      if (t === null) {
        const given = typeof o.valid_until === 'string' ? `"${o.valid_until.slice(0, 40)}"` : shown(o.valid_until).slice(0, 40);
        yield line(n, text, skip(`valid_until ${given} is not an RFC 3339 timestamp`));
        continue;
      }
      expiresAt = t;
    }
    const name = typeof o.name === 'string' ? o.name : undefined;
    // Several addresses in one indicator: one record, its entries together; a bad one refuses the record.
    const cidrs = [];
    let normalized = false;
    let bad: FeedLineResult | null = null;
    for (const v of parsed.values) {
      if (v.type === 'domain-name') continue;
      const r = entry(v.value, undefined);
      if (r.type !== 'entry') {
        bad = r;
        break;
      }
      cidrs.push(...r.cidrs);
      normalized ||= r.normalized;
    }
    if (bad) yield line(n, text, bad);
    else
      yield line(n, text, {
        type: 'entry',
        cidrs,
        normalized,
        comment: clip([name, id].filter(Boolean).join(' '), 500),
        ...(expiresAt !== undefined ? { expiresAt } : {}),
      });
  }
}

const MISP_ADDRESS_TYPES = new Set(['ip-src', 'ip-dst', 'ip-src|port', 'ip-dst|port']);
const MISP_DOMAIN_TYPES = new Set(['domain', 'hostname']);

function* mispEvent(doc: Record<string, unknown>): Generator<FeedLine> {
  const event = (isObject(doc.Event) ? doc.Event : doc) as Record<string, unknown>;
  const info = typeof event.info === 'string' ? event.info : '';
  // Each record is an attribute, or an item that should have been one (or an object holding them) and is not.
  const records: Array<{ attribute: Record<string, unknown> } | { text: string; reason: string }> = [];
  (Array.isArray(event.Attribute) ? event.Attribute : []).forEach((a: unknown, i) =>
    records.push(isObject(a) ? { attribute: a } : { text: shown(a), reason: `Attribute ${i + 1} is not an object` }),
  );
  (Array.isArray(event.Object) ? event.Object : []).forEach((obj: unknown, i) => {
    if (!isObject(obj)) return records.push({ text: shown(obj), reason: `Object ${i + 1} is not an object` });
    (Array.isArray(obj.Attribute) ? obj.Attribute : []).forEach((a: unknown, j) =>
      records.push(isObject(a) ? { attribute: a } : { text: shown(a), reason: `Attribute ${j + 1} of Object ${i + 1} is not an object` }),
    );
  });
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const n = i + 1;
    if (!('attribute' in record)) {
      yield line(n, record.text, skip(record.reason));
      continue;
    }
    const a = record.attribute;
    // A type or value that is not a string (an array, an object) is not read as the text it would print as.
    if (typeof a.type !== 'string') {
      yield line(n, shown(a.type), skip('the attribute has no type (a string)'));
      continue;
    }
    const type = a.type;
    if (typeof a.value !== 'string') {
      yield line(n, `${type} ${shown(a.value)}`, skip('the attribute has no value (a string)'));
      continue;
    }
    const value = a.value;
    const text = `${type} ${value}`;
    if (flag(a.deleted)) {
      yield line(n, text, skip('the attribute is deleted'));
      continue;
    }
    if (!flag(a.to_ids)) {
      yield line(n, text, skip('to_ids is false: the attribute is not meant for detection'));
      continue;
    }
    if (MISP_DOMAIN_TYPES.has(type)) {
      yield line(n, text, skip(`${type} attributes belong in a domain list`));
      continue;
    }
    if (!MISP_ADDRESS_TYPES.has(type)) {
      yield line(n, text, skip(`attribute type ${type} is not read (only ip-src, ip-dst, ip-src|port, ip-dst|port)`));
      continue;
    }
    const address = type.endsWith('|port') ? value.split('|')[0] : value;
    const comment = [typeof a.comment === 'string' ? a.comment : '', info].filter((s) => s.length > 0).join(' - ');
    yield line(n, text, entry(address, clip(comment, 500) || undefined));
  }
}

function* warninglist(doc: Record<string, unknown>): Generator<FeedLine> {
  const list = doc.list as unknown[];
  const name = typeof doc.name === 'string' ? doc.name : undefined;
  if (doc.type !== 'cidr' && doc.type !== 'string') {
    for (let i = 0; i < list.length; i++)
      yield line(i + 1, typeof list[i] === 'string' ? String(list[i]) : shown(list[i]), skip(`warninglist type ${String(doc.type)} holds no addresses`));
    return;
  }
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (typeof item !== 'string') {
      yield line(i + 1, shown(item), skip('the item is not a string'));
      continue;
    }
    const value = item;
    const r = entry(value, name);
    // "string" warninglists mix addresses with names: only the addresses are read.
    yield line(i + 1, value, r.type === 'skip' && doc.type === 'string' ? skip('not an IP address or network') : r);
  }
}

/** The records of a structured document as feed lines. */
export function* structuredLines(doc: unknown, format: StructuredFormat): Generator<FeedLine> {
  const o = doc as Record<string, unknown>;
  if (format === 'STIX2') yield* stix(o);
  else if (format === 'MISP_EVENT') yield* mispEvent(o);
  else yield* warninglist(o);
}
