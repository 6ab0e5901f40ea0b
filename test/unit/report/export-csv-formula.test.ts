import { csvCell, EXPORT_COLUMNS, EXPORT_SQL_COLUMNS, exportLineFormatter, ExportNames } from '../../../src/modules/report/export/export-format';

// Names (devices, lists) are typed by users; a spreadsheet runs a cell that starts with = + - @ as a formula,
// including one that starts with a minus and a digit ("-2+3+cmd|..." is the classic DDE payload). Only a cell that
// is a number as a whole is written as it is.
const FORMULAS = ["-2+3+cmd|' /C calc'!A0", '-1+1', '-1)*cmd', '=1+1', '+1', '@SUM(A1)', '-x'];
const NUMBERS = ['-5', '-1.5', '0', '42'];

describe('CSV formula prefix', () => {
  it.each(FORMULAS)('prefixes %j', (s) => {
    expect(csvCell(s).replace(/^"/, '')).toMatch(/^'/);
  });

  it.each(NUMBERS)('leaves the number %j as it is', (s) => {
    expect(csvCell(s)).toBe(s);
  });

  it('prefixes a device or list name in the export lines, from rows and from TabSeparated text', () => {
    const names: ExportNames = { Device: new Map([[1, FORMULAS[0]]]), IocList: new Map([[1, '-1+1']]) };
    const columns = [...EXPORT_SQL_COLUMNS];
    const row = columns.map((c) => (c.endsWith('_ip') || c === 'matched_cidr' ? '10.0.0.1' : c === 'retro_hunt_id' ? null : 1));
    const expectCells = (line: string) => {
      const cells = new Map(EXPORT_COLUMNS.map((c, i) => [c, line.split(',')[i]]));
      expect(cells.get('device')).toBe(`'${FORMULAS[0]}`);
      expect(cells.get('ioc_list')).toBe("'-1+1");
    };
    expectCells(exportLineFormatter('csv', names, columns).lines([row]).toString());
    expectCells(
      exportLineFormatter('csv', names, columns)
        .tsv(`${row.map((v) => (v === null ? '\\N' : String(v))).join('\t')}\n`)
        .toString(),
    );
  });
});
