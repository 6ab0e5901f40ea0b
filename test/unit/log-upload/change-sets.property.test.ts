import fc from 'fast-check';
import { AddressSet, decodeAddressSet, encodeAddressSet, intersects, KeyRange, rangeSetOf } from '../../../src/modules/log-upload/address-set';
import { DomainChanges } from '../../../src/modules/log-upload/name-set';
import { BuildThreads } from '../../../src/modules/ioc/matching/build-thread';

// What a retro-hunt asks of a change: does an upload's address set (or name set) meet the changed entries? Checked
// against brute force: rangeSetOf packs, sorts and merges ranges in typed arrays (a whole 1M-entry list took 3 s of
// the event loop as pairs sorted with a comparator), and skips the sort when the ranges come sorted.

const V4 = '00000000000000000000ffff';
const hex32 = (v: bigint) => v.toString(16).padStart(32, '0');
const key4 = (a: number) => V4 + (a >>> 0).toString(16).padStart(8, '0');

/** Addresses as 128-bit keys, near the edges that matter: IPv4 space, its ends, and IPv6 on both sides of it. */
const address = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }).map((a) => BigInt(`0x${key4(a)}`)),
  fc.constantFrom(0xffff00000000n, 0xffffffffffffn, 0xfffeffffffffn, 0x1000000000000n, 0n, (1n << 128n) - 1n),
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.integer({ min: 0, max: 64 }).map((a) => BigInt(`0x${key4(0x0a000000 + a)}`)),
);
const range = fc.tuple(address, fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 40n }), fc.bigInt({ min: 0n, max: 1n << 40n }))).map(([s, w]) => {
  const e = s + w > (1n << 128n) - 1n ? (1n << 128n) - 1n : s + w;
  return { start: s, end: e };
});

function addressSet(keys: bigint[]): AddressSet {
  const lo = 0xffff00000000n;
  const hi = 0xffffffffffffn;
  const v4 = [...new Set(keys.filter((k) => k >= lo && k <= hi).map((k) => Number(k - lo)))].sort((a, b) => a - b);
  const v6 = [...new Set(keys.filter((k) => k < lo || k > hi))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { v4: Uint32Array.from(v4), v6: Buffer.concat(v6.map((k) => Buffer.from(hex32(k), 'hex'))) };
}

/** A set as stored before mapped ends were kept as IPv4: every key in the IPv6 part, ::ffff:0:0/96 included. */
function legacySet(keys: bigint[]): AddressSet {
  const v6 = [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { v4: new Uint32Array(0), v6: Buffer.concat(v6.map((k) => Buffer.from(hex32(k), 'hex'))) };
}

describe('what a retro-hunt intersects', () => {
  it('a set stored with IPv4-mapped ends as IPv6 (::ffff:a.b.c.d, matched as IPv4) decodes with them as IPv4', () => {
    fc.assert(
      fc.property(fc.array(range, { maxLength: 20 }), fc.array(address, { maxLength: 30 }), (ranges, keys) => {
        const stored = encodeAddressSet(legacySet(keys));
        const decoded = decodeAddressSet(stored.v4, stored.v6);
        expect(decoded).toEqual(addressSet(keys));
        const asKeys = ranges.map((r) => ({ start: hex32(r.start), end: hex32(r.end) }));
        expect(intersects(decoded, rangeSetOf(asKeys))).toBe(keys.some((k) => ranges.some((r) => r.start <= k && k <= r.end)));
      }),
      { numRuns: 300 },
    );
  });

  it('rangeSetOf + intersects agree with brute force, sorted or not, upper or lower case', () => {
    fc.assert(
      fc.property(fc.array(range, { maxLength: 40 }), fc.array(address, { maxLength: 40 }), fc.boolean(), fc.boolean(), (ranges, keys, sort, upper) => {
        const list = sort ? [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)) : ranges;
        const asKeys: KeyRange[] = list.map((r) => {
          const k = { start: hex32(r.start), end: hex32(r.end) };
          return upper ? { start: k.start.toUpperCase(), end: k.end.toUpperCase() } : k;
        });
        const expected = keys.some((k) => ranges.some((r) => r.start <= k && k <= r.end));
        expect(intersects(addressSet(keys), rangeSetOf(asKeys))).toBe(expected);
        // Each address alone, too (the set's smaller side is searched either way round).
        for (const k of keys.slice(0, 5)) {
          expect(intersects(addressSet([k]), rangeSetOf(asKeys))).toBe(ranges.some((r) => r.start <= k && k <= r.end));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('merges IPv4 ranges that overlap or touch, and keeps apart those that do not', () => {
    const set = rangeSetOf([
      { start: key4(10), end: key4(20) },
      { start: key4(21), end: key4(30) },
      { start: key4(5), end: key4(12) },
      { start: key4(40), end: key4(40) },
      { start: key4(0xfffffff0), end: key4(0xffffffff) },
      { start: key4(0xffffffff), end: key4(0xffffffff) },
    ]);
    expect([...set.v4Start]).toEqual([5, 40, 0xfffffff0]);
    expect([...set.v4End]).toEqual([30, 40, 0xffffffff]);
  });

  it('a large list (the packed sort) gives the same answers as brute force', () => {
    const ranges: Array<[number, number]> = [];
    let seed = 1;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed);
    for (let i = 0; i < 200_000; i++) {
      const s = rnd() >>> 8;
      ranges.push([s, s + (rnd() % 4)]);
    }
    const set = rangeSetOf(ranges.map(([s, e]) => ({ start: key4(s), end: key4(e) })));
    const probes = Array.from({ length: 2000 }, () => rnd() >>> 8);
    const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
    for (const p of probes) {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid][0] <= p) lo = mid + 1;
        else hi = mid;
      }
      // Ranges are at most 4 wide: one starting up to 3 before p contains it if any does.
      let hit = false;
      for (let j = lo - 1; j >= 0 && sorted[j][0] >= p - 3; j--) if (sorted[j][1] >= p) hit = true;
      expect(intersects({ v4: Uint32Array.of(p), v6: Buffer.alloc(0) }, set)).toBe(hit);
    }
  });
});

describe('DomainChanges', () => {
  const label = fc.constantFrom('a', 'b', 'evil', 'com', 'example', 'x-y');
  const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.'));

  it('meets a name set exactly when a changed name is one of its names or a parent of one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(domain, { minLength: 1, maxLength: 10 }), fc.array(domain, { maxLength: 10 }), async (changed, asked) => {
        const changes = await DomainChanges.of(changed);
        const expected = asked.some((n) => changed.some((c) => n === c || n.endsWith(`.${c}`)));
        expect(changes.meets(asked)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('builds a large change on a thread with the same answers', async () => {
    const names = Array.from({ length: 60_000 }, (_, i) => `host${i}.example${i % 7}.com`);
    const threads = new BuildThreads({ minEntries: 50_000 });
    const onThread = await DomainChanges.of(names, threads);
    expect(threads.threadBuilds).toBe(1);
    expect(onThread.size).toBe(60_000);
    expect(onThread.meets(['a.host59999.example2.com'])).toBe(true);
    expect(onThread.meets(['host59999.example6.com', 'example2.com'])).toBe(false);
  });
});
