/**
 * DNS text of tcpdump 4.99.3 at verbosity 0 (print-domain.c), read from a packet line the streaming parser has
 * already accepted (rules: ../shared/corpus/dns/RULES.md; every corpus capture reproduces dns/expected/).
 *
 * - Query: `ID[ OPCODE][+][%][ [b2&3=0xN]][ [Na]][ [Nq]][ [Nn]][ [Nau]]` then questions ` TYPE[ CLASS][ (QU|QM)]? NAME`;
 *   one row per question whose name is complete (ends with `.`, carries no `<...>` marker of fqdn_print).
 * - Response: `ID[ OPCODE][ RCODE][*][-][|][$][ [Nq]][,...] AN/NS/AR` then records ` REC, REC, ...`; one row per line.
 * - The text ends with ` (LEN)`, or ` [|domain]` when tcpdump ran out of captured bytes (trunc).
 * Pure: no I/O, never throws; a line that does not parse is counted under a DnsSkipReason.
 */

export type DnsVia = 'udp53' | 'tcp53' | 'udp5353';
export type DnsKind = 'query' | 'response';

export interface DnsRow {
  /** Line of the packet (the `-v` header's line for a two-line packet). */
  lineNo: number;
  /** Index of the packet row in the batch filled by the push()/end() call that produced this row. */
  packet: number;
  id: number;
  kind: DnsKind;
  /** Queries: the type as printed (`A`, `AAAA`, `Type65`); responses: ''. */
  qtype: string;
  /** Queries: the name, ASCII-lowercased, one trailing dot removed (the root stays `.`); responses: ''. */
  qname: string;
  /** Responses: the answer records printed, each `TYPE` or `TYPE DATA` (names normalised like qname). */
  answers: string[];
  via: DnsVia;
  /** Responses: the rcode word, `NoError` when none is printed; queries: ''. */
  rcode: string;
  /** Responses: `an/ns/ar` as printed; queries: ''. */
  counts: string;
  /** The text ended with ` [|domain]`. */
  truncated: boolean;
}

/** Why a DNS line (or one question of it) produced no row. */
export enum DnsSkipReason {
  /** tcpdump printed no DNS summary: `domain [length 0 < 12] (invalid)`, `UDP, length N`, `-q` output. */
  NOT_DNS_TEXT = 'NOT_DNS_TEXT',
  /** Neither a query nor a response header (cut before the counts, unknown shape). */
  MALFORMED = 'MALFORMED',
  /** A query without one complete question. */
  NO_COMPLETE_QUESTION = 'NO_COMPLETE_QUESTION',
  /** One question's name: cut, fqdn_print marker, label over 63 or name over 253 characters. */
  QNAME_MALFORMED = 'QNAME_MALFORMED',
  /** One question's name has bytes outside ASCII (tcpdump escapes them; this text did not come from it). */
  QNAME_NON_ASCII = 'QNAME_NON_ASCII',
}

export const DNS_SKIP_REASONS: readonly DnsSkipReason[] = Object.values(DnsSkipReason);

export interface DnsStats {
  /** Packet lines on port 53/5353 looked at. */
  lines: number;
  queries: number;
  responses: number;
  skipped: Record<DnsSkipReason, number>;
}

export function emptyDnsStats(): DnsStats {
  return { lines: 0, queries: 0, responses: 0, skipped: Object.fromEntries(DNS_SKIP_REASONS.map((r) => [r, 0])) as Record<DnsSkipReason, number> };
}

/** tcpdump's ns_type2str names (print-domain.c, 4.99.3); anything else prints as `TypeN`. */
const TYPE_NAMES =
  'A NS MD MF CNAME SOA MB MG MR NULL WKS PTR HINFO MINFO MX TXT RP AFSDB X25 ISDN RT NSAP NSAP_PTR SIG KEY PX GPOS AAAA LOC NXT EID ' +
  'NIMLOC SRV ATMA NAPTR KX CERT A6 DNAME SINK OPT APL DS SSHFP IPSECKEY RRSIG NSEC DHCID NSEC3 NSEC3PARAM TLSA SMIMEA HIP NINFO RKEY ' +
  'TALINK CDS CDNSKEY OPENPGPKEY CSYNC ZONEMD SVCB HTTPS SPF UINFO UID GID UNSPEC NID L32 L64 LP EUI48 EUI64 TKEY TSIG IXFR AXFR MAILB ' +
  'MAILA ANY URI CAA AVC DOA AMTRELAY TA DLV DNSKEY';
// A type is 16 bits: `TypeN` has at most 5 digits (a longer one is no tcpdump text, and no hit's qtype holds it).
const TYPE = `(?:${TYPE_NAMES.split(' ').join('|')}|Type\\d{1,5})`;
const CLASS = '(?:IN|CHAOS|HS|ANY|\\(Class \\d+\\))';
const OPCODE = '(?:inv_q|stat|op3|notify|update|op6|op7|op8|updateA|updateD|updateDA|updateM|updateMA|zoneInit|zoneRef)';

const RESPONSE_HEAD = new RegExp(`^(\\d+)(?: ${OPCODE})?(?: ([A-Za-z][A-Za-z0-9]*))?\\*?-?\\|?\\$?(?: \\[\\d+q\\])?,* (\\d+/\\d+/\\d+)(?= |$)`);
const QUERY_HEAD = new RegExp(
  `^(\\d+)(?: ${OPCODE})?\\+?%?(?: \\[b2&3=0x[0-9a-f]+\\])?(?: \\[\\d+[aq]\\])?(?: \\[\\d+[aq]\\])?(?: \\[\\d+n\\])?(?: \\[\\d+au\\])?(?= )`,
);
/** One question's start: ` TYPE[ CLASS][ (QU|QM)]? ` (the name follows). */
const QUESTION = new RegExp(` (${TYPE})(?: ${CLASS})?(?: \\((?:QU|QM)\\))?\\? `, 'g');
/** A `,` that starts the next record: followed by ` [CLASS ][(Cache flush) ]TYPE` then a space, `,` or the end. */
const RECORD_SPLIT = new RegExp(`,(?= (?:\\S+\\. )?(?:${CLASS} )?(?:\\(Cache flush\\) )?${TYPE}(?: |,|$))`);
const RECORD = new RegExp(`^(?:${CLASS} )?(?:\\(Cache flush\\) )?(${TYPE})(?: (.*))?$`, 's');
/** `-v` prints the owner name before the type: `www.example.com. A 192.0.2.1`. */
const OWNED_RECORD = new RegExp(`^\\S+\\. ((?:${CLASS} )?(?:\\(Cache flush\\) )?${TYPE}(?: .*)?)$`, 's');
const NAME_DATA_TYPES = new Set(['CNAME', 'NS', 'PTR', 'DNAME', 'MB', 'MD', 'MF', 'MG', 'MR']);

const TRUNC_MARK = ' [|domain]';

/** A printed name, ASCII-lowercased, one trailing `.` removed; null when incomplete or not a name. */
export function normaliseDnsName(text: string): string | null {
  const n = text.length;
  if (n === 0 || text.charCodeAt(n - 1) !== 0x2e) return null;
  if (text === '.') return '.';
  if (text.includes('<') || text.includes(' ')) return null;
  const name = text.slice(0, n - 1);
  return /[A-Z]/.test(name) ? name.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : name;
}

function nameLimitsOk(name: string): boolean {
  if (name === '.') return true;
  if (name.length > 253) return false;
  let start = 0;
  for (;;) {
    const dot = name.indexOf('.', start);
    const end = dot < 0 ? name.length : dot;
    if (end - start > 63 || end === start) return false;
    if (dot < 0) return true;
    start = dot + 1;
  }
}

function recordText(raw: string): string | null {
  let m = RECORD.exec(raw);
  if (m === null) {
    const owned = OWNED_RECORD.exec(raw);
    if (owned === null) return null;
    m = RECORD.exec(owned[1]);
    if (m === null) return null;
  }
  const type = m[1];
  const data = m[2];
  if (data === undefined || data === '') return type;
  if (NAME_DATA_TYPES.has(type)) {
    // A name beyond DNS's limits is no record data (answer-name-malformed): the type alone, as for a cut name.
    const name = normaliseDnsName(data);
    return name === null || !nameLimitsOk(name) ? type : `${type} ${name}`;
  }
  if (type === 'MX') {
    // `MX mail.example.com. 10` -> `mail.example.com 10`
    const sp = data.lastIndexOf(' ');
    const name = sp > 0 ? normaliseDnsName(data.slice(0, sp)) : null;
    return name === null ? type : `${type} ${name}${data.slice(sp)}`;
  }
  if (type === 'SRV') {
    // `SRV target.example.com.:5060 0 5` -> `target.example.com:5060 0 5`
    const colon = data.indexOf(':');
    const name = colon > 0 ? normaliseDnsName(data.slice(0, colon)) : null;
    return name === null ? type : `${type} ${name}${data.slice(colon)}`;
  }
  return `${type} ${data}`;
}

/** The answer records of a response's text after its counts. Stops at the first record that does not parse. */
function answerRecords(text: string): string[] {
  let body = text;
  // An empty record: tcpdump printed `, ` and nothing, the record header was not captured.
  while (body.endsWith(',')) body = body.slice(0, -1);
  if (body.trim() === '') return [];
  const out: string[] = [];
  for (const part of body.split(RECORD_SPLIT)) {
    const raw = part.startsWith(' ') ? part.slice(1) : part;
    const rec = recordText(raw);
    if (rec === null) break;
    out.push(rec);
  }
  return out;
}

/**
 * Reads the DNS text buf[start, end) of one packet line and appends its rows to `out`.
 * Returns the number of rows added.
 */
export function readDnsText(buf: Buffer, start: number, end: number, via: DnsVia, lineNo: number, packet: number, out: DnsRow[], stats: DnsStats): number {
  stats.lines++;
  let bodyEnd: number;
  let truncated = false;
  if (end - start > TRUNC_MARK.length && buf[end - 1] === 0x5d && buf.toString('latin1', end - TRUNC_MARK.length, end) === TRUNC_MARK) {
    truncated = true;
    bodyEnd = end - TRUNC_MARK.length;
  } else {
    // ` (LEN)`
    if (buf[end - 1] !== 0x29) return skip(stats, DnsSkipReason.NOT_DNS_TEXT);
    let k = end - 2;
    while (k > start && buf[k] >= 0x30 && buf[k] <= 0x39) k--;
    if (k === end - 2 || buf[k] !== 0x28 || buf[k - 1] !== 0x20) return skip(stats, DnsSkipReason.NOT_DNS_TEXT);
    bodyEnd = k - 1;
  }
  const c0 = buf[start];
  if (bodyEnd <= start || c0 < 0x30 || c0 > 0x39) return skip(stats, DnsSkipReason.NOT_DNS_TEXT);
  const text = buf.toString('latin1', start, bodyEnd);

  const r = RESPONSE_HEAD.exec(text);
  if (r !== null) {
    const id = Number(r[1]);
    if (id > 0xffff) return skip(stats, DnsSkipReason.MALFORMED);
    stats.responses++;
    out.push({
      lineNo,
      packet,
      id,
      kind: 'response',
      qtype: '',
      qname: '',
      answers: answerRecords(text.slice(r[0].length)),
      via,
      rcode: r[2] ?? 'NoError',
      counts: r[3],
      truncated,
    });
    return 1;
  }
  const q = QUERY_HEAD.exec(text);
  if (q === null) return skip(stats, DnsSkipReason.MALFORMED);
  const id = Number(q[1]);
  if (id > 0xffff) return skip(stats, DnsSkipReason.MALFORMED);
  const rest = text.slice(q[0].length);
  QUESTION.lastIndex = 0;
  let m = QUESTION.exec(rest);
  if (m === null || m.index !== 0) return skip(stats, DnsSkipReason.NO_COMPLETE_QUESTION);
  let rows = 0;
  while (m !== null) {
    const qtype = m[1];
    const nameStart = QUESTION.lastIndex;
    const next = QUESTION.exec(rest);
    const nameText = rest.slice(nameStart, next === null ? rest.length : next.index);
    m = next;
    if (/[^\x20-\x7e]/.test(nameText)) {
      stats.skipped[DnsSkipReason.QNAME_NON_ASCII]++;
      continue;
    }
    const qname = normaliseDnsName(nameText);
    if (qname === null || !nameLimitsOk(qname)) {
      stats.skipped[DnsSkipReason.QNAME_MALFORMED]++;
      continue;
    }
    out.push({ lineNo, packet, id, kind: 'query', qtype, qname, answers: [], via, rcode: '', counts: '', truncated });
    rows++;
  }
  if (rows === 0) return skip(stats, DnsSkipReason.NO_COMPLETE_QUESTION);
  stats.queries++;
  return rows;
}

function skip(stats: DnsStats, reason: DnsSkipReason): number {
  stats.skipped[reason]++;
  return 0;
}
