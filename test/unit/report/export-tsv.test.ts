import fc from 'fast-check';
import { EXPORTED_COLUMNS } from '../../../src/modules/flow-hit/flow-hit.columns';
import { EXPORT_SQL_COLUMNS, ExportFormat, exportLineFormatter, ExportNames, ExportRow, tsvField } from '../../../src/modules/report/export/export-format';

// The export from ClickHouse formats TabSeparated text (ExportLines.tsv) without decoding most fields. Its bytes must
// be exactly those of the rows path (ExportLines.lines) given the same rows as JSONCompactEachRow decoded them:
// integers as JS numbers (rounded past 2^53, as JSON.parse does), text as strings, NULL as null.

/** ClickHouse's TabSeparated escaping of a String (WriteHelpers writeEscapedString), NULL as \N. */
function escapeTsv(v: string | null): string {
  if (v === null) return '\\N';
  const map: Record<string, string> = { '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0', "'": "\\'", '\\': '\\\\' };
  return v.replace(/[\b\f\n\r\t\0'\\]/g, (c) => map[c]);
}

const names: ExportNames = {
  Device: new Map([
    [1, 'hq'],
    [2, '=cmd|" /c calc"!A1'],
    [3, 'zürich, "lab"'],
  ]),
  IocList: new Map([
    [1, 'bad'],
    [2, '-list'],
  ]),
};

/** An Int64 as ClickHouse prints it: digits, any size, maybe negative. */
const int64 = fc
  .oneof(
    fc.integer({ min: 0, max: 5 }),
    fc.integer({ min: -1_000_000, max: 2 ** 31 }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.constantFrom(2n ** 53n, 2n ** 53n + 1n, 999_999_999_999_999n, 1_000_000_000_000_000n, 1_700_000_000_123n, -1n),
  )
  .map(String);

const text = fc.oneof(
  fc.constantFrom(
    '',
    'OUTBOUND',
    '198.51.100.7',
    '10.0.0.0/8',
    '=1+1',
    '-5',
    '+x',
    '@a',
    'a,b',
    'say "hi"',
    'a\\b',
    "it's",
    'tab\there',
    'l1\nl2',
    'cr\r',
    'nul\0',
    'é',
    '日本',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ maxLength: 12 }),
);

/** A column's value as ClickHouse's text of it: an integer, a string, or NULL where the column allows it. */
function fieldOf(column: (typeof EXPORTED_COLUMNS)[number]): fc.Arbitrary<string | null> {
  const nullable = column.nullable ? (a: fc.Arbitrary<string>) => fc.option(a, { freq: 4 }) : (a: fc.Arbitrary<string>) => a;
  if (column.export.as === 'text') return nullable(text);
  if (typeof column.export.as === 'object' && column.export.as.name) return nullable(fc.constantFrom('1', '2', '3', '4', '77'));
  // Instants a Date holds (either path throws past them), the years before 1970 and from 10000 on included.
  if (column.export.as === 'instant')
    return nullable(
      fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.constantFrom(0, -1, 1_700_000_000_123, 253_402_300_799_999, 253_402_300_800_000)).map(String),
    );
  return nullable(int64);
}

const rowsArb = fc.array(fc.tuple(...EXPORTED_COLUMNS.map(fieldOf)), { minLength: 0, maxLength: 20 });

/** The query's columns in some order (the formatter maps them by name). */
const orderArb = fc.shuffledSubarray([...EXPORT_SQL_COLUMNS], { minLength: EXPORT_SQL_COLUMNS.length, maxLength: EXPORT_SQL_COLUMNS.length });

describe('export from TabSeparated text', () => {
  it.each<ExportFormat>(['csv', 'ndjson'])('writes the bytes the rows path writes for the same rows (%s)', (format) => {
    fc.assert(
      fc.property(rowsArb, orderArb, (rows, order) => {
        const position = order.map((c) => EXPORT_SQL_COLUMNS.indexOf(c));
        const tsv = rows.map((r) => `${position.map((i) => escapeTsv(r[i])).join('\t')}\n`).join('');
        const decoded: ExportRow[] = rows.map((r) =>
          position.map((i) => {
            const v = r[i];
            // JSONCompactEachRow: integers bare (JSON.parse rounds them as Number() does), strings as they are.
            return v === null ? null : EXPORTED_COLUMNS[i].export.as === 'text' ? v : Number(v);
          }),
        );
        const viaRows = exportLineFormatter(format, names, order).lines(decoded);
        const viaTsv = exportLineFormatter(format, names, order).tsv(tsv);
        expect(viaTsv.toString('utf8')).toBe(viaRows.toString('utf8'));
      }),
      { numRuns: 400 },
    );
  });

  it('decodes exactly the escapes ClickHouse writes, and \\N alone as NULL', () => {
    fc.assert(
      fc.property(fc.option(text, { freq: 5 }), (v) => {
        const field = escapeTsv(v);
        expect(tsvField(`x\t${field}\ty`, 2, 2 + field.length)).toBe(v);
      }),
    );
    expect(tsvField('\\\\N', 0, 3)).toBe('\\N');
  });

  it('refuses a row with fewer or more fields than the columns asked for, or without its line end', () => {
    const columns = [...EXPORT_SQL_COLUMNS];
    const row = columns.map((c) => (c.endsWith('_ip') ? '10.0.0.1' : '1'));
    const lines = exportLineFormatter('csv', names, columns);
    expect(() => lines.tsv(`${row.slice(1).join('\t')}\n`)).toThrow(/1 of the|columns asked for/);
    expect(() => lines.tsv(`${[...row, '1'].join('\t')}\n`)).toThrow(/more than the/);
    expect(() => lines.tsv(row.join('\t'))).toThrow(/no line end/);
    expect(lines.tsv(`${row.join('\t')}\n`).toString()).toMatch(/^[^\n]+\n$/);
  });
});
