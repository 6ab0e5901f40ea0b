import fc from 'fast-check';
import { FeedImportTally } from '../../../src/modules/ioc/feed/feed-import-tally';
import { FeedReadOptions, plainIpv4, plainIpv6, readFeedLines } from '../../../src/modules/ioc/feed/feed-reader';
import { parseIpv6Words } from '../../../src/common/net/ip';
import { FeedEntrySet } from '../../../src/modules/ioc/feed/feed-entry-set';

// The reader's fast paths for plain address lines (FeedReadOptions.onPlainIpv4 and onPlainIpv6, what a bulk import
// uses) must gather exactly what the general path does: the same tally (lines, normalized, skips with their line
// numbers) and the same entries.

async function gather(chunks: Buffer[], fast: boolean, limits: Pick<FeedReadOptions, 'minPrefixV4' | 'minPrefixV6'> = {}) {
  const tally = new FeedImportTally({ dedupe: false });
  const entries = new FeedEntrySet();
  let plain = 0;
  let plain6 = 0;
  const options: FeedReadOptions = {
    ...limits,
    ...(fast
      ? {
          onPlainIpv4: (network: number, prefix: number, normalized: boolean) => {
            plain++;
            tally.recordPlainEntry(normalized);
            entries.addV4(network, prefix);
          },
          onPlainIpv6: (network: Uint32Array, prefix: number, normalized: boolean) => {
            plain6++;
            tally.recordPlainEntry(normalized);
            entries.addV6(network, prefix);
          },
        }
      : {}),
  };
  for await (const line of readFeedLines(chunks, options)) {
    for (const e of tally.record(line)) entries.add(e.cidr, e.comment ?? null, e.expiresAt ?? null);
  }
  await entries.sort();
  return { summary: tally.summary(), entries: [...entries.ordered()], plain, plain6, distinct: entries.distinct, duplicates: entries.duplicates };
}

function chunked(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out.filter((b) => b.length > 0);
}

const octet = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.constantFrom('256', '999', '00', '01', '007', '1000', '', 'a'));
const prefix = fc.oneof(
  fc.constant(''),
  fc.integer({ min: 0, max: 32 }).map((p) => `/${p}`),
  fc.constantFrom('/33', '/08', '/', '/1a', '/000', '/100'),
);
const ipv4Line = fc.tuple(octet, octet, octet, octet, prefix).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}${p}`);
// IPv6: eight groups (some zero, some with leading zeros or capitals, an odd bad one), a run of them dropped for "::"
// or not, a prefix or not; the first group small at times, so that networks fall inside ::/64 (the general path's).
const group = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((g) => g.toString(16)) },
  { weight: 3, arbitrary: fc.constant('0') },
  { weight: 1, arbitrary: fc.constantFrom('0db8', 'FFFF', 'aBc', '0000', '00001', 'g', '', '1.2.3.4') },
);
const prefix6 = fc.oneof(
  fc.constant(''),
  fc.integer({ min: 0, max: 128 }).map((p) => `/${p}`),
  fc.constantFrom('/129', '/064', '/', '/6a', '/1000', '/-1'),
);
const ipv6Line = fc
  .tuple(fc.array(group, { minLength: 8, maxLength: 8 }), fc.nat({ max: 9 }), fc.nat({ max: 8 }), prefix6, fc.boolean())
  .map(([groups, from, length, p, low]) => {
    const g = low ? ['0', '0', '0', ...groups.slice(3)] : groups;
    const text = from > 8 ? g.join(':') : `${g.slice(0, from).join(':')}::${g.slice(Math.min(8, from + length)).join(':')}`;
    return `${text}${p}`;
  });
const line = fc.oneof(
  { weight: 6, arbitrary: ipv4Line },
  { weight: 4, arbitrary: ipv6Line },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '::',
      '::1',
      '::/0',
      '::ffff:1.2.3.4',
      '::ffff:0:0/96',
      ':::1',
      '1::2::3',
      '2001:db8::1%eth0',
      '[2001:db8::1]',
      '2001:db8::1 # c',
      '2001:db8::/32;x',
      '2001:db8::\t7',
      '2001:db8::1-2001:db8::9',
      ':2001:db8::1',
      '2001:db8::1:',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom('1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\t7', '1.2.3.4 # c', '1.2.3.4;x', '1.2.3', '1.2.3.4.5', '1.2.3.4-1.2.3.9') },
  { weight: 1, arbitrary: fc.constantFrom('', '# comment', '2001:db8::/32', '::ffff:1.2.3.4', 'garbage', '\ufeff1.2.3.4', '1.2.3.4\r') },
);
const feed = fc.record({
  lines: fc.array(line, { minLength: 1, maxLength: 60 }),
  crlf: fc.boolean(),
  finalNewline: fc.boolean(),
  bom: fc.boolean(),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
  minPrefixV4: fc.constantFrom(undefined, 0, 8, 24),
  minPrefixV6: fc.constantFrom(undefined, 0, 16, 48, 64),
});

describe('plain address lines taken by the reader', () => {
  test('gather the same tally and entries as the general path, across chunk cuts, line endings and prefix limits', async () => {
    await fc.assert(
      fc.asyncProperty(feed, async (f) => {
        const eol = f.crlf ? '\r\n' : '\n';
        const text = `${f.bom ? '\ufeff' : ''}${f.lines.join(eol)}${f.finalNewline ? eol : ''}`;
        const chunks = chunked(Buffer.from(text), f.cuts);
        const limits = {
          ...(f.minPrefixV4 === undefined ? {} : { minPrefixV4: f.minPrefixV4 }),
          ...(f.minPrefixV6 === undefined ? {} : { minPrefixV6: f.minPrefixV6 }),
        };
        const slow = await gather(chunks, false, limits);
        const fast = await gather(chunks, true, limits);
        expect({ ...fast, plain: 0, plain6: 0 }).toEqual({ ...slow, plain: 0, plain6: 0 });
      }),
      { numRuns: 600, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
    );
  });

  test('the fast path takes the plain lines of a feed and leaves the rest', async () => {
    const text = ['\ufeff9.9.9.9', '1.2.3.4', '10.1.2.3/8', '1.2.3.0/24', '01.2.3.4', '1.2.3.4 # c', '2001:db8::/32', '1.2.3.4/7', '5.6.7.8\r', ''].join('\n');
    const fast = await gather([Buffer.from(text)], true);
    // Not the first line (a BOM may lead it), not a leading zero, a comment, IPv6 or a network broader than /8.
    expect(fast.plain).toBe(4);
    expect(fast.summary).toMatchObject({ lines: 9, normalized: 1, skipped: 2 });
    expect(fast.entries.map((e) => e.cidr)).toEqual(['1.2.3.0/24', '1.2.3.4/32', '5.6.7.8/32', '9.9.9.9/32', '10.0.0.0/8', '2001:db8::/32']);
  });

  test('plainIpv4 reads only canonical a.b.c.d[/n]', () => {
    const read = (s: string) => plainIpv4(Buffer.from(s), 0, Buffer.byteLength(s));
    expect(read('1.2.3.4')).toBe(((1 * 256 + 2) * 256 * 256 + 3 * 256 + 4) * 64 + 32);
    expect(read('255.255.255.255/32')).toBe(0xffffffff * 64 + 32);
    expect(read('0.0.0.0/0')).toBe(0);
    expect(read('1.2.3.4\r')).toBe(read('1.2.3.4'));
    for (const bad of ['1.2.3', '1.2.3.4.', '1.2.3.04', '256.1.1.1', '1.2.3.4/33', '1.2.3.4/08', '1.2.3.4/', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\r\r', ''])
      expect(read(bad)).toBe(-1);
  });

  test('the IPv6 fast path takes plain lines outside ::/64 and leaves the rest', async () => {
    const text = [
      '2001:db8::/32',
      '2001:DB8:0:0:0:0:0:1',
      '2001:db8::1/32',
      '2a12:2640::',
      '::ffff:1.2.3.4',
      '::ffff:0:0/96',
      '::1',
      '2001:db8::1 # c',
      '2001:db8::/15',
      '2001:db8::1/129',
      '2001:db8::1\r',
      '',
    ].join('\n');
    const fast = await gather([Buffer.from(text)], true);
    // Not the first line (a BOM may lead it), nor what lies in ::/64, a comment, a network broader than /16 or /129.
    expect(fast.plain6).toBe(4);
    expect(fast.summary).toMatchObject({ lines: 11, normalized: 1, skipped: 3 });
    expect(fast.entries.map((e) => e.cidr)).toEqual(['::1/128', '::ffff:1.2.3.4/128', '2001:db8::/32', '2001:db8::1/128', '2a12:2640::/128']);
    expect(fast.duplicates).toBe(3);
  });

  test('plainIpv6 reads only hex-group forms, as parseCidr does', () => {
    const words = new Uint32Array(4);
    const read = (s: string) => {
      const prefix = plainIpv6(Buffer.from(s), 0, Buffer.byteLength(s), words);
      return prefix < 0 ? null : { prefix, words: [...words] };
    };
    for (const good of [
      '2001:db8::1',
      '2001:db8::/32',
      '::',
      '::1/128',
      '1::',
      '1::/0',
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128',
      '0:0:0:0:0:0:0:0',
      'ABCD::ef\r',
    ]) {
      const [address, prefix] = good.replace('\r', '').split('/');
      const want = new Uint32Array(4);
      expect(parseIpv6Words(address, want)).toBe(true);
      expect(read(good)).toEqual({ prefix: prefix === undefined ? 128 : Number(prefix), words: [...want] });
    }
    for (const bad of [
      '',
      ':',
      ':::',
      '1:2',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '12345::',
      ':1::',
      '1::2:',
      '::ffff:1.2.3.4',
      'fe80::1%eth0',
      '2001:db8::/',
      '2001:db8::/129',
      '2001:db8::/064',
      '2001:db8::/1000',
      '2001:db8:: ',
      ' 2001:db8::',
      '2001:db8::\r\r',
      'g::1',
    ])
      expect([bad, read(bad)]).toEqual([bad, null]);
  });
});
