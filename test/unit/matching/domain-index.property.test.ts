import fc from 'fast-check';
import { IocListInfo } from '../../../src/modules/ioc/matching/ioc-index';
import { buildDomainIndex, DomainEntryInput, NO_DOMAIN_MATCH } from '../../../src/modules/ioc/matching/domain-index';

// Brute-force reference: scan every entry. An entry contains the name itself and every name under it (a suffix
// starting at a label boundary). Order: most specific (longest) first, then ALLOW first, severity descending,
// list id, entry id; BLOCK entries are suppressed when any containing entry is ALLOW.

const BUILD_NOW = 1_000_000;

function contains(entry: string, name: string): boolean {
  return name === entry || name.endsWith(`.${entry}`);
}

function reference(lists: IocListInfo[], entries: DomainEntryInput[], query: string): string[] {
  const name = query.toLowerCase().replace(/(.)\.$/, '$1');
  const listOf = new Map(lists.map((l) => [l.id, l]));
  const live = entries.filter((e) => (e.expiresAt == null || e.expiresAt > BUILD_NOW) && contains(e.name, name));
  live.sort((a, b) => {
    const la = listOf.get(a.listId)!;
    const lb = listOf.get(b.listId)!;
    return (
      b.name.length - a.name.length || Number(lb.kind === 'ALLOW') - Number(la.kind === 'ALLOW') || lb.severity - la.severity || la.id - lb.id || a.id - b.id
    );
  });
  const suppressed = live.some((e) => listOf.get(e.listId)!.kind === 'ALLOW');
  return live.map((e) => `${e.id}@${e.listId}${suppressed && listOf.get(e.listId)!.kind === 'BLOCK' ? '!' : ''}`);
}

// A tiny alphabet of labels so that generated names nest and collide often. The index keeps a label's first 12
// bytes in its hash slot and reads the rest from its pool: labels of 12 and 13 bytes, and two of 13 that differ only
// in the 13th, take both paths. Its hash folds case with `| 0x20`, which maps '_' onto DEL: names with either.
const label = fc.constantFrom(
  'a',
  'b',
  'ab',
  'ba',
  'x-y',
  'evil',
  'com',
  'example',
  'xn--d-fga',
  'abcdefghijkl',
  'abcdefghijklm',
  'abcdefghijklz',
  'long-label-of-twenty-six-b',
  'a_b',
  'a\x7fb',
);
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const listArb = fc.record({ kind: fc.constantFrom<'BLOCK' | 'ALLOW'>('BLOCK', 'BLOCK', 'ALLOW'), severity: fc.integer({ min: 0, max: 5 }) });

const scenario = fc.record({
  lists: fc.array(listArb, { minLength: 1, maxLength: 4 }),
  entries: fc.array(
    fc.record({
      list: fc.nat(),
      name: domain,
      expiresAt: fc.option(fc.constantFrom(BUILD_NOW - 1, BUILD_NOW, BUILD_NOW + 1), { nil: undefined }),
    }),
    { maxLength: 40 },
  ),
  queries: fc.array(
    fc
      .tuple(domain, fc.constantFrom('', '.', 'Upper', 'prefix'))
      .map(([d, how]) => (how === '.' ? `${d}.` : how === 'Upper' ? d.toUpperCase() : how === 'prefix' ? `z${d}` : d)),
    { minLength: 1, maxLength: 20 },
  ),
});

describe('domain index against brute force', () => {
  test('every containing entry, in order, with ALLOW suppression; best BLOCK row', () => {
    fc.assert(
      fc.property(scenario, ({ lists: ls, entries: es, queries }) => {
        const lists: IocListInfo[] = ls.map((l, i) => ({ id: i + 1, kind: l.kind, severity: l.severity, category: 'OTHER' }));
        const entries: DomainEntryInput[] = es.map((e, i) => ({ id: 100 + i, listId: (e.list % lists.length) + 1, name: e.name, expiresAt: e.expiresAt }));
        const index = buildDomainIndex(lists, entries, { now: BUILD_NOW });
        for (const q of queries) {
          const want = reference(lists, entries, q);
          const got = index.lookup(q).map((m) => `${m.entryId}@${m.list.id}${m.suppressed ? '!' : ''}`);
          expect(got).toEqual(want);
          const firstBlock = want.find((w) => !w.endsWith('!') && lists[Number(w.split('@')[1]) - 1].kind === 'BLOCK');
          const row = index.bestBlockRow(q);
          expect(row === NO_DOMAIN_MATCH ? undefined : `${index.rowEntryId(row)}@${index.rowList(row).id}`).toEqual(firstBlock);
          // A suppressed BLOCK entry reads `id@list!`: its list id without the mark.
          expect(index.isAllowed(q)).toBe(want.some((w) => lists[parseInt(w.split('@')[1], 10) - 1].kind === 'ALLOW'));
        }
        // The batched lookup gives each name's bestBlockRow, across batch boundaries (the queries repeated past 32).
        const many = Array.from({ length: 5 }, () => queries).flat();
        const out = new Int32Array(many.length).fill(-2);
        index.bestBlockRows(many, out);
        expect([...out]).toEqual(many.map((q) => index.bestBlockRow(q)));
      }),
      { numRuns: 500, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
    );
  });
});

describe('domain index', () => {
  const lists: IocListInfo[] = [
    { id: 1, kind: 'BLOCK', severity: 4, category: 'PHISHING' },
    { id: 2, kind: 'ALLOW', severity: 0, category: 'ALLOWLIST' },
  ];

  test('grows its table when the suffixes to mark outnumber the names, and answers as brute force after', () => {
    // 24 names of six labels each, none shared but the TLD: 5 suffixes each to mark in a table sized for 48.
    const entries: DomainEntryInput[] = Array.from({ length: 24 }, (_, i) => ({
      id: i + 1,
      listId: i % 5 === 0 ? 2 : 1,
      name: `h${i}.g${i}.f${i}.e${i}.d${i}.com`,
    }));
    const index = buildDomainIndex(lists, entries);
    expect(index.stats.names).toBe(24);
    for (const e of entries) {
      for (const q of [e.name, `www.${e.name}`, e.name.slice(e.name.indexOf('.') + 1)]) {
        const want = reference(lists, entries, q);
        expect(index.lookup(q).map((m) => `${m.entryId}@${m.list.id}${m.suppressed ? '!' : ''}`)).toEqual(want);
      }
    }
  });

  test('a name and its subdomains, never a name that only ends alike or has the entry as a prefix', () => {
    const index = buildDomainIndex(lists, [{ id: 1, listId: 1, name: 'intel.com' }]);
    expect(index.bestBlock('intel.com')?.entryId).toBe(1);
    expect(index.bestBlock('proxy-chain.Intel.COM.')?.name).toBe('intel.com');
    expect(index.bestBlock('notintel.com')).toBeNull();
    expect(index.bestBlock('proxy-chain.intel.com.network2')).toBeNull();
    expect(index.bestBlock('com')).toBeNull();
    expect(index.bestBlock('.')).toBeNull();
    expect(index.bestBlock('')).toBeNull();
  });

  test('ALLOW wins: an allowed parent exempts a listed subdomain; an allowed child does not exempt its parent', () => {
    const index = buildDomainIndex(lists, [
      { id: 1, listId: 1, name: 'cdn.good.example' },
      { id: 2, listId: 2, name: 'good.example' },
      { id: 3, listId: 1, name: 'evil.example' },
      { id: 4, listId: 2, name: 'safe.evil.example' },
    ]);
    expect(index.bestBlock('x.cdn.good.example')).toBeNull();
    expect(index.lookup('x.cdn.good.example').map((m) => [m.entryId, m.suppressed])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(index.bestBlock('evil.example')?.entryId).toBe(3);
    expect(index.bestBlock('safe.evil.example')).toBeNull();
    expect(index.bestBlock('a.safe.evil.example')).toBeNull();
  });

  test('labels past the 12 bytes kept in the slot are compared in full, in any case; a hash that folds alike is not a match', () => {
    const index = buildDomainIndex(lists, [
      { id: 1, listId: 1, name: 'abcdefghijklm.example' },
      { id: 2, listId: 1, name: 'x.a-label-of-more-than-twelve-bytes.example' },
      { id: 3, listId: 1, name: 'a_b.example' },
    ]);
    expect(index.bestBlock('ABCDEFGHIJKLM.example')?.entryId).toBe(1);
    expect(index.bestBlock('abcdefghijklz.example')).toBeNull();
    expect(index.bestBlock('abcdefghijkl.example')).toBeNull();
    expect(index.bestBlock('w.x.A-LABEL-OF-MORE-THAN-TWELVE-BYTES.example')?.entryId).toBe(2);
    expect(index.bestBlock('x.a-label-of-more-than-twelve-bytez.example')).toBeNull();
    expect(index.bestBlock('a_b.example')?.entryId).toBe(3);
    // DEL hashes as '_' does (both are 0x7f once folded); the bytes differ.
    expect(index.bestBlock('a\x7fb.example')).toBeNull();
  });

  test('bestBlockRows: a name with more listed suffixes than the batch keeps per name, an empty batch, an empty name', () => {
    const deep = `${'a.'.repeat(40)}com`;
    const index = buildDomainIndex(lists, [
      { id: 1, listId: 1, name: deep },
      { id: 2, listId: 1, name: 'evil.com' },
    ]);
    const names = [`b.${deep}`, `${deep}.`, 'x.evil.com', 'nothing.org', '', '.', 'EVIL.COM.'];
    const out = new Int32Array(names.length);
    index.bestBlockRows(names, out);
    expect([...out].map((r) => (r === NO_DOMAIN_MATCH ? null : index.rowEntryId(r)))).toEqual([1, 1, 2, null, null, null, 2]);
    index.bestBlockRows([], new Int32Array(0));
  });

  test('expired entries are dropped at build; validUntil is the earliest remaining expiry', () => {
    const index = buildDomainIndex(
      lists,
      [
        { id: 1, listId: 1, name: 'old.example', expiresAt: 5 },
        { id: 2, listId: 1, name: 'new.example', expiresAt: 50 },
        { id: 3, listId: 9, name: 'unknown.example' },
      ],
      { now: 10 },
    );
    expect(index.bestBlock('old.example')).toBeNull();
    expect(index.bestBlock('new.example')?.expiresAt).toBe(50);
    expect(index.validUntil).toBe(50);
    expect(index.stats).toMatchObject({ entries: 1, names: 1, droppedExpired: 1, droppedUnknownList: 1 });
  });
});
