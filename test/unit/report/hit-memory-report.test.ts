import fc from 'fast-check';
import { PairTable, topBy } from '../../../src/modules/report/hit-memory.report';

describe('PairTable', () => {
  it('counts every key as a Map does while it grows from 16 slots, keys past 2^32 included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat(50), fc.nat(1 << 20), fc.integer({ min: 2 ** 31, max: 2 ** 53 - 1 }), fc.constantFrom(7, 7 + 2 ** 32, 7 + 2 ** 33)), {
          maxLength: 400,
        }),
        (keys) => {
          const table = new PairTable(1);
          const expected = new Map<number, number>();
          for (const k of keys) {
            const slot = table.count(k);
            expected.set(k, (expected.get(k) ?? 0) + 1);
            // The slot returned holds the key and its count so far.
            expect(table.keys[slot]).toBe(k);
            expect(table.counts[slot]).toBe(expected.get(k));
          }
          expect(table.size).toBe(expected.size);
          // At most half full.
          expect(table.size * 2).toBeLessThanOrEqual(table.keys.length);
          const got = new Map(table.used().map((s) => [table.keys[s], table.counts[s]]));
          expect(got).toEqual(expected);
        },
      ),
    );
  });
});

describe('topBy', () => {
  it('gives the first keys of the order, as sorting every key does, ties and repeated counts included', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.array(fc.nat(12), { maxLength: 300 }), fc.array(fc.nat(1_000_000), { maxLength: 300 })),
        fc.integer({ min: 1, max: 40 }),
        (counts, first) => {
          const keys = counts.map((_, k) => k);
          const hits = (k: number) => counts[k];
          // More hits first, then the key: the executors' orders put hits first and break ties on a key.
          const order = (a: number, b: number) => hits(b) - hits(a) || a - b;
          expect(topBy([...keys], hits, first, order)).toEqual([...keys].sort(order).slice(0, first));
        },
      ),
    );
  });
});
