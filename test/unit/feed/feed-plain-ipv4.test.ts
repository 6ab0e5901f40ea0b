import fc from 'fast-check';
import { FeedImportTally } from '../../../src/modules/ioc/feed/feed-import-tally';
import { FeedReadOptions, plainIpv4, readFeedLines } from '../../../src/modules/ioc/feed/feed-reader';
import { FeedEntrySet } from '../../../src/modules/ioc/feed/feed-entry-set';

// The reader's plain-IPv4 fast path (FeedReadOptions.onPlainIpv4, what a bulk import uses) must gather exactly what
// the general path does: the same tally (lines, normalized, skips with their line numbers) and the same entries.

async function gather(chunks: Buffer[], fast: boolean, limits: Pick<FeedReadOptions, 'minPrefixV4'> = {}) {
  const tally = new FeedImportTally({ dedupe: false });
  const entries = new FeedEntrySet();
  let plain = 0;
  const options: FeedReadOptions = {
    ...limits,
    ...(fast
      ? {
          onPlainIpv4: (network: number, prefix: number, normalized: boolean) => {
            plain++;
            tally.recordPlainEntry(normalized);
            entries.addV4(network, prefix);
          },
        }
      : {}),
  };
  for await (const line of readFeedLines(chunks, options)) {
    for (const e of tally.record(line)) entries.add(e.cidr, e.comment ?? null, e.expiresAt ?? null);
  }
  await entries.sort();
  return { summary: tally.summary(), entries: [...entries.ordered()], plain, distinct: entries.distinct, duplicates: entries.duplicates };
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
const line = fc.oneof(
  { weight: 6, arbitrary: ipv4Line },
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
});

describe('plain IPv4 lines taken by the reader', () => {
  test('gather the same tally and entries as the general path, across chunk cuts, line endings and prefix limits', async () => {
    await fc.assert(
      fc.asyncProperty(feed, async (f) => {
        const eol = f.crlf ? '\r\n' : '\n';
        const text = `${f.bom ? '\ufeff' : ''}${f.lines.join(eol)}${f.finalNewline ? eol : ''}`;
        const chunks = chunked(Buffer.from(text), f.cuts);
        const limits = f.minPrefixV4 === undefined ? {} : { minPrefixV4: f.minPrefixV4 };
        const slow = await gather(chunks, false, limits);
        const fast = await gather(chunks, true, limits);
        expect({ ...fast, plain: 0 }).toEqual({ ...slow, plain: 0 });
      }),
      { numRuns: 400, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
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
});
