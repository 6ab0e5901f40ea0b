import fc from 'fast-check';
import { tsvValue } from '../../../src/modules/analytics/analytics-hits';
import { tsvField } from '../../../src/modules/report/export/export-format';

/** The hit writer's TabSeparated fields (analytics-export.test.ts sends awkward text through chDB itself). */
describe('tsvValue', () => {
  it('writes none as \\N, integers as digits, text with its separators escaped', () => {
    expect(tsvValue(null)).toBe('\\N');
    expect(tsvValue(undefined)).toBe('\\N');
    expect(tsvValue(0)).toBe('0');
    expect(tsvValue(-42)).toBe('-42');
    // Past 2^53 the double's digits, as JSON.stringify wrote them for JSONEachRow.
    expect(tsvValue(Number.MAX_SAFE_INTEGER + 2)).toBe(JSON.stringify(Number.MAX_SAFE_INTEGER + 2));
    expect(tsvValue('10.0.0.1')).toBe('10.0.0.1');
    expect(tsvValue('a\tb\nc\rd\\e\0f')).toBe('a\\tb\\nc\\rd\\\\e\\0f');
    expect(tsvValue('quote\' "x" zürich')).toBe('quote\' "x" zürich');
  });

  it('refuses what no integer column can take', () => {
    for (const v of [1.5, NaN, Infinity, 1e21]) expect(() => tsvValue(v)).toThrow(/integers/);
  });

  it("writes every text as one field that ClickHouse's unescaping (tsvField) reads back unchanged", () => {
    fc.assert(
      fc.property(
        // Escape sequences are what can go wrong: an alphabet dense in them, and any text beside it.
        fc.oneof(
          fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '\0', 't', 'n', 'r', '0', 'N', 'b', "'", 'x'), maxLength: 12 }),
          fc.string({ unit: 'binary', maxLength: 40 }),
        ),
        (text) => {
          const field = tsvValue(text);
          expect(field).not.toMatch(/[\t\n\r\0]/);
          expect(tsvField(field, 0, field.length)).toBe(text);
        },
      ),
      { numRuns: 500 },
    );
  });
});
