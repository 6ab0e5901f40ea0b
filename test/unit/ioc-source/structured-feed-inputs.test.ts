import { FeedImportTally } from '../../../src/modules/ioc/feed/feed-import-tally';
import { rfc3339Time, stixPatternValues, structuredLines } from '../../../src/modules/ioc-source/formats/structured-feed';

// Inputs found to break or fool the structured readers: each record that cannot be read is skipped with a
// reason, never a crash that fails the whole fetch, and never read as something it does not say.

function read(doc: unknown, format: 'STIX2' | 'MISP_EVENT' | 'MISP_WARNINGLIST') {
  const tally = new FeedImportTally();
  const entries: Array<[number, string, number | undefined]> = [];
  for (const line of structuredLines(doc, format)) for (const e of tally.record(line)) entries.push([e.lineNumber, e.cidr.text, e.expiresAt]);
  return { entries, skipped: tally.summary().skippedLines.map((l) => [l.lineNumber, l.reason]) };
}

const STIX_ONLY = 'only [ipv4-addr|ipv6-addr|domain-name:value = ...] and OR of those are read';

describe('STIX patterns: read in one pass', () => {
  it('a pattern of 250,000 spaces is read in well under a second (the split by regular expression took 38 s)', () => {
    const spaces = ' '.repeat(250_000);
    const started = performance.now();
    const results = [
      stixPatternValues(`[ipv4-addr:value = '198.51.100.1'${spaces}]`),
      stixPatternValues(`[ipv4-addr:value = '198.51.100.1'${spaces}OR${spaces}ipv4-addr:value = '198.51.100.2']`),
      stixPatternValues(`[ipv4-addr:value = '198.51.100.1'${spaces}x]`),
      stixPatternValues(`[${spaces}`),
      stixPatternValues(`${spaces}]${spaces}OR${spaces}[`),
    ];
    // A generous bound: a linear reader takes milliseconds, the quadratic one took seconds per pattern.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(results).toEqual([
      { ok: true, values: [{ type: 'ipv4-addr', value: '198.51.100.1' }] },
      {
        ok: true,
        values: [
          { type: 'ipv4-addr', value: '198.51.100.1' },
          { type: 'ipv4-addr', value: '198.51.100.2' },
        ],
      },
      { ok: false, reason: STIX_ONLY },
      { ok: false, reason: STIX_ONLY },
      { ok: false, reason: STIX_ONLY },
    ]);
  });

  it('reads what it read before, and refuses the rest with the same reason', () => {
    const values = (p: string) => {
      const r = stixPatternValues(p);
      return r.ok ? r.values.map((v) => `${v.type}=${v.value}`) : r.reason;
    };
    expect(values("[ipv4-addr:value = '192.0.2.1']")).toEqual(['ipv4-addr=192.0.2.1']);
    expect(values(" [ipv4-addr:value='192.0.2.1' OR ipv6-addr:value = '2001:db8::1'] OR [domain-name:value = 'x.example'] ")).toEqual([
      'ipv4-addr=192.0.2.1',
      'ipv6-addr=2001:db8::1',
      'domain-name=x.example',
    ]);
    expect(values("[ipv4-addr:value = 'a\\'b\\\\c']")).toEqual(["ipv4-addr=a'b\\c"]);
    expect(values("[ipv4-addr:value = '[x]']")).toEqual(['ipv4-addr=[x]']);
    for (const p of [
      "[ipv4-addr:value = '192.0.2.3' AND network-traffic:dst_port = 443]",
      "[ipv4-addr:value = '192.0.2.1'] FOLLOWEDBY [ipv4-addr:value = '192.0.2.2']",
      "[ipv4-addr:value = '192.0.2.1'] WITHIN 5 SECONDS",
      "([ipv4-addr:value = '192.0.2.1'])",
      "[ipv4-addr:value != '192.0.2.1']",
      "[ipv4-addr:value = '192.0.2.1' OR]",
      "[ipv4-addr:value = '192.0.2.1'] OR",
      "[ipv4-addr:value = '192.0.2.1'][ipv4-addr:value = '192.0.2.2']",
      "[ipv4-addr:value = '192.0.2.1]",
      "[file:name = 'a']",
      "[ipv4-addr:value = t'2020-01-01T00:00:00Z']",
      '[ipv4-addr:value = 5]',
      '',
      '[]',
    ]) {
      expect([p, values(p)]).toEqual([p, STIX_ONLY]);
    }
  });

  it('refuses a pattern over the length limit with its own reason', () => {
    const long = `[${Array.from({ length: 40_000 }, (_, i) => `ipv4-addr:value = '10.${i >> 8}.${i & 255}.1'`).join(' OR ')}]`;
    expect(long.length).toBeGreaterThan(1_000_000);
    expect(stixPatternValues(long)).toEqual({ ok: false, reason: `the pattern is ${long.length} characters long; at most 1000000 are read` });
  });
});

describe('STIX valid_until: RFC 3339 timestamps only', () => {
  it.each([
    ['2030-01-02T03:04:05Z', Date.UTC(2030, 0, 2, 3, 4, 5)],
    ['2030-01-02t03:04:05z', Date.UTC(2030, 0, 2, 3, 4, 5)],
    ['2030-01-02T03:04:05.123456Z', Date.UTC(2030, 0, 2, 3, 4, 5, 123)],
    ['2030-01-02T03:04:05+01:30', Date.UTC(2030, 0, 2, 1, 34, 5)],
    ['2030-01-02T03:04:05-00:00', Date.UTC(2030, 0, 2, 3, 4, 5)],
    ['2028-02-29T00:00:00Z', Date.UTC(2028, 1, 29)],
    ['2030-12-31T23:59:60Z', Date.UTC(2031, 0, 1)],
  ])('reads %s', (text, time) => {
    expect(rfc3339Time(text)).toBe(time);
  });

  it.each([
    '1',
    '-1',
    '0',
    'December 17, 1995 03:24:00',
    '2030-01-02',
    '2030-01-02 03:04:05Z',
    '2030-01-02T03:04:05',
    '2030-02-31T00:00:00Z',
    '2029-02-29T00:00:00Z',
    '2030-13-01T00:00:00Z',
    '2030-01-02T24:00:00Z',
    '2030-01-02T03:60:00Z',
    '2030-01-02T03:04:05+24:00',
    ' 2030-01-02T03:04:05Z',
    '+002030-01-02T03:04:05Z',
  ])('refuses %j', (text) => {
    expect(rfc3339Time(text)).toBeNull();
  });

  it('skips an indicator whose valid_until is not one, with the reason', () => {
    const ind = (n: number, valid_until: unknown) => ({ type: 'indicator', id: `indicator--${n}`, pattern: `[ipv4-addr:value = '192.0.2.${n}']`, valid_until });
    const r = read(
      { type: 'bundle', objects: [ind(1, '1'), ind(2, 'December 17, 1995 03:24:00'), ind(3, 1893553445000), ind(4, '2030-01-02T03:04:05Z')] },
      'STIX2',
    );
    expect(r.entries).toEqual([[4, '192.0.2.4/32', Date.UTC(2030, 0, 2, 3, 4, 5)]]);
    expect(r.skipped).toEqual([
      [1, 'valid_until "1" is not an RFC 3339 timestamp'],
      [2, 'valid_until "December 17, 1995 03:24:00" is not an RFC 3339 timestamp'],
      [3, 'valid_until 1893553445000 is not an RFC 3339 timestamp'],
    ]);
  });
});

describe('MISP events: items that are not attributes', () => {
  it('skips null and non-object items of Attribute and Object with a reason, and reads the rest', () => {
    const good = (value: string) => ({ type: 'ip-dst', value, to_ids: true });
    const r = read(
      {
        Event: {
          info: 'ev',
          Attribute: [null, 5, 'ip-dst 192.0.2.9', [good('192.0.2.8')], good('192.0.2.1')],
          Object: [null, 7, { Attribute: [null, good('192.0.2.2')] }, { Attribute: 'x' }, { name: 'no attributes' }],
        },
      },
      'MISP_EVENT',
    );
    expect(r.entries.map(([n, cidr]) => [n, cidr])).toEqual([
      [5, '192.0.2.1/32'],
      [9, '192.0.2.2/32'],
    ]);
    expect(r.skipped).toEqual([
      [1, 'Attribute 1 is not an object'],
      [2, 'Attribute 2 is not an object'],
      [3, 'Attribute 3 is not an object'],
      [4, 'Attribute 4 is not an object'],
      [6, 'Object 1 is not an object'],
      [7, 'Object 2 is not an object'],
      [8, 'Attribute 1 of Object 3 is not an object'],
    ]);
  });

  it('deleted as the number 1 is deleted, as to_ids 1 is honoured', () => {
    const r = read(
      {
        Event: {
          info: 'ev',
          Attribute: [
            { type: 'ip-dst', value: '192.0.2.1', to_ids: 1, deleted: 1 },
            { type: 'ip-dst', value: '192.0.2.2', to_ids: 1, deleted: 0 },
            { type: 'ip-dst', value: '192.0.2.3', to_ids: 1, deleted: '0' },
            { type: 'ip-dst', value: '192.0.2.4', to_ids: 1, deleted: false },
          ],
        },
      },
      'MISP_EVENT',
    );
    expect(r.entries.map(([, cidr]) => cidr)).toEqual(['192.0.2.2/32', '192.0.2.3/32', '192.0.2.4/32']);
    expect(r.skipped).toEqual([[1, 'the attribute is deleted']]);
  });

  it('a type or value that is not a string is skipped, not stringified', () => {
    const r = read(
      {
        Event: {
          info: 'ev',
          Attribute: [
            { type: ['ip-dst'], value: '192.0.2.1', to_ids: true },
            { type: 'ip-dst', value: ['192.0.2.2'], to_ids: true },
            { type: 'ip-dst', value: { v: '192.0.2.3' }, to_ids: true },
            { type: 'ip-dst', to_ids: true },
            { type: 'ip-dst', value: '192.0.2.5', to_ids: true },
          ],
        },
      },
      'MISP_EVENT',
    );
    expect(r.entries.map(([n, cidr]) => [n, cidr])).toEqual([[5, '192.0.2.5/32']]);
    expect(r.skipped).toEqual([
      [1, 'the attribute has no type (a string)'],
      [2, 'the attribute has no value (a string)'],
      [3, 'the attribute has no value (a string)'],
      [4, 'the attribute has no value (a string)'],
    ]);
  });

  it('warninglist items that are not strings are skipped, not stringified', () => {
    const r = read({ name: 'wl', type: 'cidr', list: ['192.0.2.0/24', ['198.51.100.1'], null, 5] }, 'MISP_WARNINGLIST');
    expect(r.entries.map(([n, cidr]) => [n, cidr])).toEqual([[1, '192.0.2.0/24']]);
    expect(r.skipped).toEqual([
      [2, 'the item is not a string'],
      [3, 'the item is not a string'],
      [4, 'the item is not a string'],
    ]);
  });
});
