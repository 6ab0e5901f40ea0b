import fs from 'node:fs';
import path from 'node:path';
import { FeedImportTally } from '../../../src/modules/ioc/feed/feed-import-tally';
import { detectStructured, stixPatternValues, structuredLines } from '../../../src/modules/ioc-source/formats/structured-feed';

const FIXTURES = path.resolve(__dirname, '../../fixtures/intel');
const load = (file: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));

function importOf(doc: unknown) {
  const format = detectStructured(doc);
  if (!format) throw new Error('not structured');
  const tally = new FeedImportTally();
  const entries: Array<{ cidr: string; comment?: string; expiresAt?: number; line: number }> = [];
  for (const line of structuredLines(doc, format)) {
    for (const e of tally.record(line)) entries.push({ cidr: e.cidr.text, comment: e.comment, expiresAt: e.expiresAt, line: e.lineNumber });
  }
  const s = tally.summary();
  return {
    format,
    records: s.lines,
    comments: s.comments,
    added: s.added,
    duplicates: s.duplicates,
    skipped: s.skippedLines.map((l) => [l.lineNumber, l.code, l.reason]),
    entries,
  };
}

describe('structured feeds: the real samples in test/fixtures/intel (README there) import exactly', () => {
  it('STIX 2.1 indicator-for-c2-ip-address.json (OASIS): one IPv4 indicator', () => {
    expect(importOf(load('stix21_indicator_for_c2_ip_address.json'))).toEqual({
      format: 'STIX2',
      records: 1,
      comments: 0,
      added: 1,
      duplicates: 0,
      skipped: [],
      entries: [
        { cidr: '10.0.0.0/32', comment: 'IP Address for known C2 channel indicator--33fe3b22-0201-47cf-85d0-97c02164528d', expiresAt: undefined, line: 1 },
      ],
    });
  });

  it('STIX 2.0 indicators-for-C2-with-COA.json (OASIS): the IPv4 indicator; the file-hash pattern skipped; other objects are not indicators', () => {
    const r = importOf(load('stix20_indicators_for_c2_with_coa.json'));
    expect(r).toMatchObject({ format: 'STIX2', records: 8, comments: 6, added: 1, duplicates: 0 });
    expect(r.entries.map((e) => [e.line, e.cidr])).toEqual([[3, '10.0.0.0/32']]);
    expect(r.skipped).toEqual([
      [
        4,
        'UNSUPPORTED_RECORD',
        expect.stringMatching(/^pattern \[file:hashes:sha256 = 'ef53.*only \[ipv4-addr\|ipv6-addr\|domain-name:value = \.\.\.\] and OR/),
      ],
    ]);
  });

  it('MISP warninglist circl-ssh-scanning (cidr): one IPv4 and one IPv6 address', () => {
    expect(importOf(load('misp_warninglist_circl_ssh_scanning.json'))).toMatchObject({
      format: 'MISP_WARNINGLIST',
      records: 2,
      added: 2,
      skipped: [],
      entries: [
        { cidr: '185.194.93.130/32', comment: 'CIRCL IP address used for SSH scanning', line: 1 },
        { cidr: '2a00:5980:93::130/128', comment: 'CIRCL IP address used for SSH scanning', line: 2 },
      ],
    });
  });

  it('MISP event (Decian custom-malicious-ips.json, an event without the Event wrapper): 18 ip-dst attributes with to_ids', () => {
    const r = importOf(load('misp_event_decian_custom_malicious_ips.json'));
    expect(r).toMatchObject({ format: 'MISP_EVENT', records: 18, added: 18, duplicates: 0, skipped: [] });
    expect(r.entries[0]).toEqual({
      cidr: '107.178.251.4/32',
      comment: 'Observed malicious IP - C2 infrastructure - Custom Malicious IP Feed - Observed Malicious Infrastructure',
      expiresAt: undefined,
      line: 1,
    });
    expect(r.entries.map((e) => e.cidr)).toContain('94.130.138.230/32');
  });
});

describe('structured feeds: the rules, on constructed documents', () => {
  it('reads simple STIX patterns and OR of them; skips the rest with its reason; valid_until is the expiry', () => {
    const ind = (n: number, pattern: string, extra: object = {}) => ({ type: 'indicator', id: `indicator--${n}`, pattern, pattern_type: 'stix', ...extra });
    const r = importOf({
      type: 'bundle',
      id: 'bundle--1',
      objects: [
        ind(1, "[ipv4-addr:value = '198.51.100.7']", { valid_until: '2030-01-02T03:04:05Z' }),
        ind(2, "[ipv6-addr:value = '2001:db8::/32' OR ipv4-addr:value = '203.0.113.0/24']"),
        ind(3, "[ipv4-addr:value = '192.0.2.1'] OR [ipv4-addr:value = '192.0.2.2']"),
        ind(4, "[domain-name:value = 'evil.example']"),
        ind(5, "[ipv4-addr:value = '192.0.2.3' AND network-traffic:dst_port = 443]"),
        ind(6, "[ipv4-addr:value = '198.51.100.7']"),
        ind(7, '[ipv4-addr:value = 5]'),
        ind(8, 'alert tcp any any', { pattern_type: 'snort' }),
        ind(9, "[ipv4-addr:value = '192.0.2.9']", { revoked: true }),
        ind(10, "[ipv4-addr:value = '0.0.0.0/1']"),
      ],
    });
    expect(r.entries.map((e) => [e.line, e.cidr, e.expiresAt])).toEqual([
      [1, '198.51.100.7/32', Date.parse('2030-01-02T03:04:05Z')],
      [2, '2001:db8::/32', undefined],
      [2, '203.0.113.0/24', undefined],
      [3, '192.0.2.1/32', undefined],
      [3, '192.0.2.2/32', undefined],
    ]);
    expect(r.duplicates).toBe(1);
    expect(r.skipped.map(([n, code]) => [n, code])).toEqual([
      [4, 'UNSUPPORTED_RECORD'],
      [5, 'UNSUPPORTED_RECORD'],
      [7, 'UNSUPPORTED_RECORD'],
      [8, 'UNSUPPORTED_RECORD'],
      [9, 'UNSUPPORTED_RECORD'],
      [10, 'TOO_BROAD'],
    ]);
    expect(r.skipped[0][2]).toBe('domain-name indicators belong in a domain list');
  });

  it('MISP events: to_ids honoured, |port types read, objects included, domains and other types skipped', () => {
    const a = (type: string, value: string, to_ids = true) => ({ type, value, to_ids });
    const r = importOf({
      Event: {
        info: 'ev',
        uuid: 'u',
        Attribute: [
          a('ip-dst', '198.51.100.1'),
          a('ip-src', '198.51.100.2', false),
          a('ip-dst|port', '198.51.100.3|443'),
          a('domain', 'evil.example'),
          a('md5', 'abc'),
        ],
        Object: [{ Attribute: [a('ip-src|port', '2001:db8::5|22')] }],
      },
    });
    expect(r.entries.map((e) => e.cidr)).toEqual(['198.51.100.1/32', '198.51.100.3/32', '2001:db8::5/128']);
    expect(r.skipped.map(([n, , reason]) => [n, reason])).toEqual([
      [2, 'to_ids is false: the attribute is not meant for detection'],
      [4, 'domain attributes belong in a domain list'],
      [5, 'attribute type md5 is not read (only ip-src, ip-dst, ip-src|port, ip-dst|port)'],
    ]);
  });

  it('cuts a long comment at 500 without splitting a character (MISP and STIX)', () => {
    const long = `${'L'.repeat(499)}🦀${'x'.repeat(50)}`;
    const misp = importOf({ Event: { info: '', uuid: 'u', Attribute: [{ type: 'ip-dst', value: '198.51.100.9', to_ids: true, comment: long }] } });
    expect(misp.entries[0].comment).toBe('L'.repeat(499));
    const stix = importOf({
      type: 'bundle',
      id: 'bundle--1',
      objects: [
        {
          type: 'indicator',
          id: 'indicator--1',
          name: long,
          pattern: "[ipv4-addr:value = '198.51.100.10']",
          pattern_type: 'stix',
          valid_from: '2020-01-01T00:00:00Z',
        },
      ],
    });
    expect(stix.entries[0].comment).toBe('L'.repeat(499));
  });

  it('tells the formats apart', () => {
    expect(detectStructured({ type: 'bundle', objects: [] })).toBe('STIX2');
    expect(detectStructured({ Event: {} })).toBe('MISP_EVENT');
    expect(detectStructured({ name: 'x', type: 'cidr', list: [] })).toBe('MISP_WARNINGLIST');
    expect(detectStructured({ hello: 'world' })).toBeNull();
    expect(detectStructured([1, 2])).toBeNull();
    expect(stixPatternValues("[ipv4-addr:value = 'a\\'b']")).toEqual({ ok: true, values: [{ type: 'ipv4-addr', value: "a'b" }] });
  });
});
