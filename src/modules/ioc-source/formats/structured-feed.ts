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

// One comparison `ipv4-addr:value = '...'` (quotes as STIX writes them), and the OR of several, in one or
// several observation brackets: `[a = 'x' OR a = 'y']`, `[a = 'x'] OR [b = 'y']`.
const COMPARISON = /^\s*(ipv4-addr|ipv6-addr|domain-name):value\s*=\s*'((?:[^'\\]|\\.)*)'\s*$/;

/** The values of a simple STIX pattern, or the reason it is not one. */
export function stixPatternValues(pattern: string): { ok: true; values: Array<{ type: string; value: string }> } | { ok: false; reason: string } {
  const observations = pattern.trim().split(/\]\s+OR\s+\[/);
  const values: Array<{ type: string; value: string }> = [];
  for (let i = 0; i < observations.length; i++) {
    let obs = observations[i];
    if (i === 0) obs = obs.replace(/^\s*\[/, '');
    if (i === observations.length - 1) obs = obs.replace(/\]\s*$/, '');
    if (/[[\]]/.test(obs) || /\b(AND|FOLLOWEDBY|WITHIN|REPEATS|START|STOP)\b/.test(obs)) {
      return { ok: false, reason: 'only [ipv4-addr|ipv6-addr|domain-name:value = ...] and OR of those are read' };
    }
    for (const part of obs.split(/\s+OR\s+/)) {
      const m = COMPARISON.exec(part);
      if (!m) return { ok: false, reason: 'only [ipv4-addr|ipv6-addr|domain-name:value = ...] and OR of those are read' };
      values.push({ type: m[1], value: m[2].replace(/\\(.)/g, '$1') });
    }
  }
  return { ok: true, values };
}

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
    if (typeof o.valid_until === 'string') {
      const t = Date.parse(o.valid_until);
      if (Number.isNaN(t)) {
        yield line(n, text, skip(`valid_until "${o.valid_until.slice(0, 40)}" is not a timestamp`));
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
  const event = (doc.Event && typeof doc.Event === 'object' ? doc.Event : doc) as Record<string, unknown>;
  const info = typeof event.info === 'string' ? event.info : '';
  const attributes: Array<Record<string, unknown>> = [];
  for (const a of Array.isArray(event.Attribute) ? event.Attribute : []) attributes.push(a as Record<string, unknown>);
  for (const obj of Array.isArray(event.Object) ? event.Object : []) {
    const inner = (obj as Record<string, unknown>).Attribute;
    for (const a of Array.isArray(inner) ? inner : []) attributes.push(a as Record<string, unknown>);
  }
  for (let i = 0; i < attributes.length; i++) {
    const a = attributes[i];
    const type = String(a.type ?? '');
    const value = String(a.value ?? '');
    const text = `${type} ${value}`;
    const n = i + 1;
    if (a.deleted === true || a.deleted === '1') {
      yield line(n, text, skip('the attribute is deleted'));
      continue;
    }
    if (!(a.to_ids === true || a.to_ids === '1' || a.to_ids === 1)) {
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
    for (let i = 0; i < list.length; i++) yield line(i + 1, String(list[i]), skip(`warninglist type ${String(doc.type)} holds no addresses`));
    return;
  }
  for (let i = 0; i < list.length; i++) {
    const value = String(list[i]);
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
